//! Passport numbers of the People's Republic of China.
//!
//! Accepted series (MPS numbering as described by secondary sources; no check digit exists):
//! - ordinary passports (普通护照): `G` + 8 digits (before 2012), `E` + 8 digits (e-passport,
//!   2012–2017), `E` + a letter other than I/O + 7 digits (e-passport since 2017-04);
//! - diplomatic (外交, `D`), service (公务, `S`) and public-affairs (因公普通, `P`) passports:
//!   the letter + 7 or 8 digits, or the letter + `E` + 7 digits for their e-passport forms;
//! - HKSAR passports `K` + 8 digits and MSAR passports `MA` + 7 digits.
//!
//! Normal form: upper case without separators.

use crate::normalize::compact;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// The kind of passport a number's series denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PassportType {
    Ordinary,
    Diplomatic,
    Service,
    PublicAffairs,
    HongKongSar,
    MacauSar,
}

impl PassportType {
    /// `"ordinary"`, `"diplomatic"`, `"service"`, `"public_affairs"`, `"hong_kong_sar"` or
    /// `"macau_sar"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PassportType::Ordinary => "ordinary",
            PassportType::Diplomatic => "diplomatic",
            PassportType::Service => "service",
            PassportType::PublicAffairs => "public_affairs",
            PassportType::HongKongSar => "hong_kong_sar",
            PassportType::MacauSar => "macau_sar",
        }
    }
}

/// Validates a PRC passport number; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::CnPassport, parse(input))
}

fn all_digits(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_digit)
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    let compacted = compact(input, b"")?;
    let text = compacted.as_str();
    let bytes = text.as_bytes();
    let Some((&series, rest)) = bytes.split_first() else {
        return Err(Reason::WrongLength {
            expected: "8 or 9 characters",
            found: compacted.len(),
        });
    };
    let second_is_letter = rest.first().is_some_and(u8::is_ascii_uppercase);
    const NINE: (&str, &[usize]) = ("9 characters", &[9]);
    const EIGHT_OR_NINE: (&str, &[usize]) = ("8 or 9 characters", &[8, 9]);
    let (passport_type, (expected, lengths), shape_ok) = match series {
        b'G' => (
            PassportType::Ordinary,
            NINE,
            rest.len() == 8 && all_digits(rest),
        ),
        b'E' if second_is_letter => {
            if matches!(rest[0], b'I' | b'O') {
                return Err(Reason::Malformed(
                    "the letters I and O are not used in passport series",
                ));
            }
            (
                PassportType::Ordinary,
                NINE,
                rest.len() == 8 && all_digits(&rest[1..]),
            )
        }
        b'E' => (
            PassportType::Ordinary,
            NINE,
            rest.len() == 8 && all_digits(rest),
        ),
        b'D' | b'S' | b'P' => {
            let passport_type = match series {
                b'D' => PassportType::Diplomatic,
                b'S' => PassportType::Service,
                _ => PassportType::PublicAffairs,
            };
            let shape_ok = match rest.split_first() {
                Some((b'E', digits)) => digits.len() == 7 && all_digits(digits),
                _ => matches!(rest.len(), 7 | 8) && all_digits(rest),
            };
            (passport_type, EIGHT_OR_NINE, shape_ok)
        }
        b'K' => (
            PassportType::HongKongSar,
            NINE,
            rest.len() == 8 && all_digits(rest),
        ),
        b'M' if rest.first() == Some(&b'A') => (
            PassportType::MacauSar,
            NINE,
            rest.len() == 8 && all_digits(&rest[1..]),
        ),
        _ => return Err(Reason::Malformed("unknown passport series letter")),
    };
    if !shape_ok {
        let length = compacted.len();
        return Err(if lengths.contains(&length) {
            Reason::BadCharacter
        } else {
            Reason::WrongLength {
                expected,
                found: length,
            }
        });
    }
    Ok((text.to_owned(), Details::CnPassport { passport_type }))
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
    fn validates_passports() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("E87118241", Ok("E87118241")),
            ("e87118241", Ok("E87118241")),
            ("ES1190402", Ok("ES1190402")),
            ("Ｅｓ１１９０４０２", Ok("ES1190402")),
            ("G14842685", Ok("G14842685")),
            ("DE7495039", Ok("DE7495039")),
            ("SE8787936", Ok("SE8787936")),
            ("PE1234567", Ok("PE1234567")),
            ("P1234567", Ok("P1234567")),
            ("S12345678", Ok("S12345678")),
            ("K12345678", Ok("K12345678")),
            ("MA1234567", Ok("MA1234567")),
            ("E1234567", Err("wrong_length")),
            ("E123456789", Err("wrong_length")),
            ("EI2345678", Err("malformed")),
            ("EO2345678", Err("malformed")),
            ("X23456789", Err("malformed")),
            ("12345678", Err("malformed")),
            ("E1234567A", Err("bad_character")),
            ("DA1234567", Err("bad_character")),
            ("M12345678", Err("malformed")),
            ("E", Err("wrong_length")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }
}
