//! Hong Kong and Macau travel permits.
//!
//! Two documents share the kind `hk_macau_permit` (alias `hkmo_permit`):
//! - the Mainland Travel Permit for Hong Kong and Macao Residents (港澳居民来往内地通行证, 回乡证):
//!   `H` (Hong Kong) or `M` (Macau) + an 8-digit lifelong number, optionally followed by the
//!   2-digit renewal count that MPS prints on the card (`H1234567801`);
//! - the Exit-Entry Permit for Travelling to and from Hong Kong and Macao (往来港澳通行证) held by
//!   mainland residents: the card form since 2014, `C` + 8 characters (8 digits, or a letter other
//!   than I/O + 7 digits), and the older booklet form `W` + 8 digits.
//!
//! None of these numbers carries a check digit; sources are MPS notices and secondary
//! references, not a published standard.
//!
//! Normal form: upper case without separators.

use crate::normalize::compact;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// Which permit a number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permit {
    /// 回乡证 of a Hong Kong resident (`H…`).
    HomeReturnHongKong,
    /// 回乡证 of a Macau resident (`M…`).
    HomeReturnMacau,
    /// 往来港澳通行证 of a mainland resident (`C…` card or `W…` booklet).
    ExitEntry,
}

impl Permit {
    /// `"home_return_hong_kong"`, `"home_return_macau"` or `"exit_entry"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permit::HomeReturnHongKong => "home_return_hong_kong",
            Permit::HomeReturnMacau => "home_return_macau",
            Permit::ExitEntry => "exit_entry",
        }
    }
}

/// Validates a Hong Kong/Macau permit number; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::HkMacauPermit, parse(input))
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    let compacted = compact(input, b"")?;
    let text = compacted.as_str();
    let Some((&prefix, rest)) = text.as_bytes().split_first() else {
        return Err(Reason::WrongLength {
            expected: "9 or 11 characters",
            found: compacted.len(),
        });
    };
    let digits = |bytes: &[u8]| bytes.iter().all(u8::is_ascii_digit);
    let (permit, expected, length_ok, shape_ok) = match prefix {
        b'H' | b'M' => {
            let permit = if prefix == b'H' {
                Permit::HomeReturnHongKong
            } else {
                Permit::HomeReturnMacau
            };
            let length_ok = matches!(rest.len(), 8 | 10);
            (permit, "9 or 11 characters", length_ok, digits(rest))
        }
        b'C' => {
            let shape_ok = match rest.split_first() {
                Some((b'I' | b'O', _)) => false,
                Some((first, tail)) => {
                    (first.is_ascii_digit() || first.is_ascii_uppercase()) && digits(tail)
                }
                None => false,
            };
            (Permit::ExitEntry, "9 characters", rest.len() == 8, shape_ok)
        }
        b'W' => (
            Permit::ExitEntry,
            "9 characters",
            rest.len() == 8,
            digits(rest),
        ),
        _ => {
            return Err(Reason::Malformed(
                "a permit number starts with H, M, C or W",
            ))
        }
    };
    if !length_ok {
        return Err(Reason::WrongLength {
            expected,
            found: compacted.len(),
        });
    }
    if !shape_ok {
        return Err(Reason::BadCharacter);
    }
    Ok((text.to_owned(), Details::HkMacauPermit { permit }))
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
            ("H1384072201", Ok("H1384072201")),
            ("h13840722 01", Ok("H1384072201")),
            ("M6752810200", Ok("M6752810200")),
            ("M94489834", Ok("M94489834")),
            ("Ｈ１２３４５６７８", Ok("H12345678")),
            ("C12345678", Ok("C12345678")),
            ("CA1234567", Ok("CA1234567")),
            ("W12345678", Ok("W12345678")),
            ("K1234567801", Err("malformed")),
            ("H1234567", Err("wrong_length")),
            ("H123456789", Err("wrong_length")),
            ("H12345678901", Err("wrong_length")),
            ("H1234567A", Err("bad_character")),
            ("CI1234567", Err("bad_character")),
            ("CA123456B", Err("bad_character")),
            ("12345678", Err("malformed")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }
}
