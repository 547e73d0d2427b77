//! Mainland Travel Permits for Taiwan Residents (台湾居民来往大陆通行证, 台胞证).
//!
//! The card issued since 2015 carries an 8-digit lifelong number; the older booklet printed 10
//! digits (the 8-digit number and a 2-digit issue count), sometimes followed by a letter in
//! parentheses for the issuing office, e.g. `1234567801(B)`, which is accepted and dropped.
//! One-off short-term permits (a letter + 9 digits) are not accepted. No check digit exists.
//!
//! Normal form: the 8 or 10 digits.

use crate::normalize::compact;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// Validates a Taiwan residents' travel permit number; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::TwPermit, parse(input))
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    let compacted = compact(input, b"()")?;
    let text = compacted.as_str();
    let digits = match text.strip_suffix(')') {
        Some(rest) => match rest.len().checked_sub(2).map(|open| rest.split_at(open)) {
            Some((digits, suffix))
                if digits.len() == 10
                    && suffix.starts_with('(')
                    && suffix.as_bytes()[1].is_ascii_uppercase() =>
            {
                digits
            }
            _ => {
                return Err(Reason::Malformed(
                    "only a single issuing-office letter may follow in parentheses",
                ))
            }
        },
        None => text,
    };
    if text.is_empty() || !matches!(digits.len(), 8 | 10) {
        let found = if text.is_empty() {
            compacted.len()
        } else {
            digits.len()
        };
        return Err(Reason::WrongLength {
            expected: "8 or 10 digits",
            found,
        });
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::BadCharacter);
    }
    Ok((digits.to_owned(), Details::None))
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
    fn validates_permits() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("12345678", Ok("12345678")),
            ("1234 5678", Ok("12345678")),
            ("１２３４５６７８", Ok("12345678")),
            ("1234567801", Ok("1234567801")),
            ("1234567801(B)", Ok("1234567801")),
            ("1234567801（b）", Ok("1234567801")),
            ("12345678(B)", Err("malformed")),
            ("1234567801(BB)", Err("malformed")),
            ("1234567801()", Err("malformed")),
            (")", Err("malformed")),
            ("1234567", Err("wrong_length")),
            ("123456789", Err("wrong_length")),
            ("F290299977", Err("bad_character")),
            ("1234567A", Err("bad_character")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }
}
