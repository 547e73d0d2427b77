//! Hong Kong identity card numbers (香港身份證號碼).
//!
//! One or two letters, six digits and a check character (`0`–`9` or `A`), usually written with
//! the check character in parentheses: `A123456(3)`, `XA123456(0)`. The check: letters count
//! A=10 … Z=35, a single-letter prefix is padded on the left with a space worth 36; weights 9 to 2
//! over the eight positions; check = 11 − sum mod 11, where 10 is written `A` and 11 is `0`.
//!
//! Accepted spellings: with or without the parentheses (full-width too), any letter case.
//!
//! Normal form: letters, digits and check character upper-cased without parentheses
//! (`A1234563`).

use crate::normalize::compact;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// The check character (`'0'`–`'9'` or `'A'`) for a prefix of one or two upper-case letters
/// followed by six digits, or `None` if `body` is not of that shape.
pub fn check_character(body: &str) -> Option<char> {
    let bytes = body.as_bytes();
    let (letters, digits) = match bytes.len() {
        7 => bytes.split_at(1),
        8 => bytes.split_at(2),
        _ => return None,
    };
    if !letters.iter().all(u8::is_ascii_uppercase) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Weights 9..=2 over eight positions; a one-letter prefix leaves weight 9 to the padding.
    let padding = if letters.len() == 1 { 36 * 9 } else { 0 };
    let highest_weight = bytes.len() as u32 + 1;
    let sum: u32 = padding
        + bytes
            .iter()
            .zip((2..=highest_weight).rev())
            .map(|(&byte, weight)| {
                let value = if byte.is_ascii_digit() {
                    byte - b'0'
                } else {
                    byte - b'A' + 10
                };
                u32::from(value) * weight
            })
            .sum::<u32>();
    Some(match 11 - sum % 11 {
        10 => 'A',
        11 => '0',
        check => char::from(b'0' + check as u8),
    })
}

/// Validates a Hong Kong identity card number; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::HkId, parse(input))
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    let compacted = compact(input, b"()")?;
    let text = compacted.as_str();
    let (body, check) = match text.find('(') {
        Some(open) if text.ends_with(')') && open + 3 == text.len() => {
            (&text[..open], &text[open + 1..open + 2])
        }
        Some(_) => {
            return Err(Reason::Malformed(
                "the check character must be the only one in parentheses",
            ))
        }
        None if text.contains(')') => {
            return Err(Reason::Malformed(
                "the check character must be the only one in parentheses",
            ))
        }
        None => text.split_at(text.len().saturating_sub(1)),
    };
    let significant = body.len() + check.len();
    if !(8..=9).contains(&significant) || text.is_empty() {
        return Err(Reason::WrongLength {
            expected: "1 or 2 letters, 6 digits and a check character",
            found: if text.is_empty() {
                compacted.len()
            } else {
                significant
            },
        });
    }
    let letter_count = body.len() - 6;
    let (letters, digits) = body.split_at(letter_count);
    if !letters.bytes().all(|b| b.is_ascii_uppercase())
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Reason::Malformed(
            "expected 1 or 2 letters followed by 6 digits",
        ));
    }
    let check = check.as_bytes()[0];
    if !(check.is_ascii_digit() || check == b'A') {
        return Err(Reason::BadCharacter);
    }
    if check_character(body) != Some(char::from(check)) {
        return Err(Reason::BadChecksum);
    }
    Ok((format!("{body}{}", char::from(check)), Details::None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        let actual = validate(input)
            .map(|v| v.normalized)
            .map_err(|e| e.reason.code());
        assert_eq!(actual, expected.map(str::to_owned), "{input:?}");
    }

    #[test]
    fn validates_hk_ids() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("A123456(3)", Ok("A1234563")),
            ("a123456(3)", Ok("A1234563")),
            ("A1234563", Ok("A1234563")),
            ("A123456 (3)", Ok("A1234563")),
            ("Ａ１２３４５６（３）", Ok("A1234563")),
            ("C305312(A)", Ok("C305312A")),
            ("C305312(a)", Ok("C305312A")),
            ("WX728804(0)", Ok("WX7288040")),
            ("XD176550(2)", Ok("XD1765502")),
            ("K1317911", Ok("K1317911")),
            ("E208260(A)", Err("bad_checksum")),
            ("XA530601(7)", Err("bad_checksum")),
            ("A12345(6)", Err("wrong_length")),
            ("ABC123456(7)", Err("wrong_length")),
            ("K391426(B)", Err("bad_character")),
            ("K391426B", Err("bad_character")),
            ("1A23456(3)", Err("malformed")),
            ("A123456(3", Err("malformed")),
            ("A123456)3(", Err("malformed")),
            ("A12345(63)", Err("malformed")),
            ("()", Err("malformed")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn check_character_shapes() {
        assert_eq!(check_character("A123456"), Some('3'));
        assert_eq!(check_character("WX728804"), Some('0'));
        assert_eq!(check_character("a123456"), None);
        assert_eq!(check_character("A12345"), None);
        assert_eq!(check_character("ABC12345"), None);
    }
}
