//! Mainland China fixed-line numbers (座机): area code and local number.
//!
//! Domestic form: trunk prefix `0` + area code + local number. The area codes are prefix-free,
//! so the digits alone say where the area code ends: `010` (Beijing) and `020`–`029` have three
//! digits and an 8-digit local number; every other code is `0` + three digits (`0755`, `0571`) with
//! a 7- or 8-digit local number. Local numbers never start with 0 or 1 (1 is reserved for special
//! services). International form: `+86`, `(+86)` or `0086`, then the area code *without* its
//! trunk `0` (`+86 10 …`, `+86 755 …`); writing the `0` after `+86` is rejected.
//!
//! Accepted punctuation: spaces, dashes and dots between groups, parentheses around the area code
//! (`(0755) 2345 6789`), full-width variants. Service numbers (400/800, 95xxx) are not landlines.
//!
//! Extensions are accepted and kept apart: after an explicit marker (`转`, `分机`, `ext`, `ext.`,
//! `x`, `#`, `,`) or as a last dash-separated group of 1–6 digits once the local number is
//! complete (`023-86104710-8016`). They are not part of the normal form but are reported in
//! [`Details::CnLandline`].
//!
//! Normal form: the digits of trunk prefix, area code and local number (`075523456789`).

use crate::normalize::{fold_char, is_separator};
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// Most digits a landline with its extension can have; anything longer is not a phone number.
const MAX_DIGITS: usize = 24;

const EXPECTED_LENGTH: &str =
    "an 8-digit local number after a 3-digit area code, 7 or 8 digits after a 4-digit one";

/// Validates a landline number; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::CnLandline, parse(input))
}

/// The length of the area code (with its trunk `0`) at the start of `digits`.
fn area_code_length(digits: &[u8]) -> Result<usize, Reason> {
    match digits {
        [b'0', b'1', b'0', ..] => Ok(3),
        [b'0', b'2', _, ..] => Ok(3),
        [b'0', b'3'..=b'9', _, _, ..] => Ok(4),
        [b'0', b'0', ..] => Err(Reason::Malformed("an international prefix other than 0086")),
        [b'0', b'1', ..] => Err(Reason::UnknownRegion),
        [b'0', ..] => Err(Reason::WrongLength {
            expected: EXPECTED_LENGTH,
            found: 0,
        }),
        _ => Err(Reason::Malformed(
            "a landline number starts with its area code",
        )),
    }
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    // Lower-cased so that extension markers match in any case; digits are unaffected.
    let folded: String = input
        .trim()
        .chars()
        .map(|c| fold_char(c).to_ascii_lowercase())
        .collect();
    if folded.is_empty() {
        return Err(Reason::Empty);
    }
    let (main, explicit_extension) = split_extension(&folded)?;
    let (national, international) = strip_country_prefix(main.trim());

    // Digits of the number (trunk 0 restored for international input) and where dashes fell.
    let mut digits = [0u8; MAX_DIGITS];
    let mut count = 0;
    let mut dash_positions = [0usize; 4];
    let mut dash_count = 0;
    let mut open_parenthesis = false;
    let mut parentheses_seen = false;
    if international {
        digits[0] = b'0';
        count = 1;
    }
    for c in national.chars() {
        match c {
            '0'..='9' => {
                let slot = digits.get_mut(count).ok_or(Reason::WrongLength {
                    expected: EXPECTED_LENGTH,
                    found: national.chars().filter(char::is_ascii_digit).count(),
                })?;
                *slot = c as u8;
                count += 1;
            }
            '(' if !parentheses_seen && count == usize::from(international) => {
                open_parenthesis = true;
                parentheses_seen = true;
            }
            ')' if open_parenthesis => open_parenthesis = false,
            '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' => {
                if let Some(slot) = dash_positions.get_mut(dash_count) {
                    *slot = count;
                    dash_count += 1;
                }
            }
            c if is_separator(c) => {}
            '(' | ')' => {
                return Err(Reason::Malformed(
                    "parentheses may only enclose the area code",
                ))
            }
            _ => return Err(Reason::BadCharacter),
        }
    }
    if open_parenthesis {
        return Err(Reason::Malformed(
            "parentheses may only enclose the area code",
        ));
    }
    let digits = &digits[..count];
    if digits.is_empty() {
        return Err(Reason::Malformed(
            "a landline number starts with its area code",
        ));
    }
    if international && digits.get(1) == Some(&b'0') {
        return Err(Reason::Malformed("the trunk prefix 0 is dropped after +86"));
    }
    let area_length = area_code_length(digits)?;
    let local_ok = |local: &[u8]| {
        if area_length == 3 {
            local.len() == 8
        } else {
            matches!(local.len(), 7 | 8)
        }
    };
    let (number, dash_extension) =
        if local_ok(&digits[area_length..]) || explicit_extension.is_some() {
            (digits, None)
        } else {
            // A final dash-separated group after a complete number is an extension.
            match dash_positions[..dash_count].last() {
                Some(&dash)
                    if dash > area_length
                        && local_ok(&digits[area_length..dash])
                        && (1..=6).contains(&(count - dash)) =>
                {
                    (&digits[..dash], Some(&digits[dash..]))
                }
                _ => (digits, None),
            }
        };
    let local = &number[area_length..];
    if !local_ok(local) {
        return Err(Reason::WrongLength {
            expected: EXPECTED_LENGTH,
            found: local.len(),
        });
    }
    if matches!(local.first(), Some(b'0' | b'1')) {
        return Err(Reason::Malformed(
            "a local number does not start with 0 or 1",
        ));
    }
    let to_string = |bytes: &[u8]| bytes.iter().map(|&b| char::from(b)).collect::<String>();
    let extension = explicit_extension
        .map(str::to_owned)
        .or_else(|| dash_extension.map(to_string));
    let details = Details::CnLandline {
        area_code: to_string(&number[..area_length]),
        extension,
    };
    Ok((to_string(number), details))
}

/// Splits off an extension written after an explicit marker; the extension is 1–6 digits.
fn split_extension(text: &str) -> Result<(&str, Option<&str>), Reason> {
    const MARKERS: [&str; 7] = ["分机", "转", "ext.", "ext", "x", "#", ","];
    // The earliest marker wins; at equal positions the longer one ("ext." over "ext").
    let found = MARKERS
        .iter()
        .filter_map(|marker| {
            text.find(marker)
                .map(|index| (index, usize::MAX - marker.len()))
        })
        .min()
        .map(|(index, inverted_length)| (index, usize::MAX - inverted_length));
    let Some((index, marker_length)) = found else {
        return Ok((text, None));
    };
    let extension =
        text[index + marker_length..].trim_matches(|c: char| is_separator(c) || c == ':');
    if !(1..=6).contains(&extension.len()) || !extension.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::Malformed("an extension is 1 to 6 digits"));
    }
    Ok((&text[..index], Some(extension)))
}

/// The number after a `+86`, `(+86)` or `0086` prefix, and whether there was one.
fn strip_country_prefix(text: &str) -> (&str, bool) {
    for prefix in ["+86", "(+86)", "0086"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return (rest, true);
        }
    }
    (text, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Ok((normalized, area code, extension))` or the reason code.
    type Expected = Result<(&'static str, &'static str, Option<&'static str>), &'static str>;

    fn check(input: &str, expected: Expected) {
        let actual = validate(input).map_err(|e| e.reason.code()).map(|valid| {
            let Details::CnLandline {
                area_code,
                extension,
            } = valid.details
            else {
                panic!("details")
            };
            (valid.normalized, area_code, extension)
        });
        let expected = expected.map(|(number, area, extension)| {
            (
                number.to_owned(),
                area.to_owned(),
                extension.map(str::to_owned),
            )
        });
        assert_eq!(actual, expected, "{input:?}");
    }

    #[test]
    fn validates_landlines() {
        let cases: &[(&str, Expected)] = &[
            ("010-23456789", Ok(("01023456789", "010", None))),
            ("02081783054", Ok(("02081783054", "020", None))),
            ("0755-39330566", Ok(("075539330566", "0755", None))),
            ("0755-2345678", Ok(("07552345678", "0755", None))),
            ("(0755) 2345 6789", Ok(("075523456789", "0755", None))),
            (
                "（０７５５）２３４５６７８９",
                Ok(("075523456789", "0755", None)),
            ),
            ("0755 2345 6789", Ok(("075523456789", "0755", None))),
            ("+86 532 3636 6404", Ok(("053236366404", "0532", None))),
            ("+86 22 6046 8321", Ok(("02260468321", "022", None))),
            ("+86-10-23456789", Ok(("01023456789", "010", None))),
            ("0086 10 23456789", Ok(("01023456789", "010", None))),
            ("(+86) 755 2345 6789", Ok(("075523456789", "0755", None))),
            (
                "023-86104710-8016",
                Ok(("02386104710", "023", Some("8016"))),
            ),
            (
                "0871-61488368 转 8021",
                Ok(("087161488368", "0871", Some("8021"))),
            ),
            (
                "0871-61488368分机8021",
                Ok(("087161488368", "0871", Some("8021"))),
            ),
            (
                "0871-61488368 ext. 8021",
                Ok(("087161488368", "0871", Some("8021"))),
            ),
            (
                "0871-61488368x8021",
                Ok(("087161488368", "0871", Some("8021"))),
            ),
            (
                "0871-61488368#8021",
                Ok(("087161488368", "0871", Some("8021"))),
            ),
            ("010-2345678", Err("wrong_length")),
            ("0571-23456", Err("wrong_length")),
            ("0755-234567890", Err("wrong_length")),
            ("023-86104710-1234567", Err("wrong_length")),
            ("+86 010 23456789", Err("malformed")),
            ("021-02345678", Err("malformed")),
            ("021-12345678", Err("malformed")),
            ("011-23456789", Err("unknown_region")),
            ("400-123-4567", Err("malformed")),
            ("13812345678", Err("malformed")),
            ("00852 2345 6789", Err("malformed")),
            ("0871-61488368 转", Err("malformed")),
            ("0871-61488368 转 80a", Err("malformed")),
            ("(0755 23456789", Err("malformed")),
            ("0755) 23456789", Err("malformed")),
            ("0755-(2345)6789", Err("malformed")),
            ("0755*23456789", Err("bad_character")),
            ("0", Err("wrong_length")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn huge_input_is_rejected_cheaply() {
        let huge = "0".repeat(100_000);
        assert!(validate(&huge).is_err());
        let huge_digits = format!("0755{}", "2".repeat(100_000));
        assert!(matches!(
            validate(&huge_digits).map_err(|e| e.reason),
            Err(Reason::WrongLength { .. })
        ));
    }
}
