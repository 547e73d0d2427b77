//! Postal addresses.
//!
//! Validation only rules out what cannot be an address: blank values, control characters and
//! anything longer than 200 characters. Structure (province, city, district) is the scanner's
//! business, not the validator's.
//!
//! Normal form: full-width letters and digits folded, trimmed, white space (including line
//! breaks) collapsed to one space.

use crate::normalize::tidy_text;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// Longest accepted address, in characters.
pub const MAX_CHARS: usize = 200;

/// Validates an address; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::Address, parse(input))
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    let address = tidy_text(input);
    if address.is_empty() {
        return Err(Reason::Empty);
    }
    let length = address.chars().count();
    if length > MAX_CHARS {
        return Err(Reason::WrongLength {
            expected: "at most 200 characters",
            found: length,
        });
    }
    if address.chars().any(char::is_control) {
        return Err(Reason::BadCharacter);
    }
    Ok((address, Details::None))
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
    fn validates_addresses() {
        let long = "路".repeat(201);
        let limit = "路".repeat(200);
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("北京市东城区东长安街１号", Ok("北京市东城区东长安街1号")),
            (
                "  上海市浦东新区\n世纪大道100号 ",
                Ok("上海市浦东新区 世纪大道100号"),
            ),
            (
                "Flat 3, 12 Nathan Road, Kowloon",
                Ok("Flat 3, 12 Nathan Road, Kowloon"),
            ),
            (&limit, Ok(&limit)),
            (&long, Err("wrong_length")),
            ("北京\u{7}市", Err("bad_character")),
            ("", Err("empty")),
            ("\u{3000}", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }
}
