//! Unified social credit codes (统一社会信用代码), GB 32100-2015.
//!
//! Eighteen characters from the 31-character alphabet `0-9 A-H J-N P-R T-U W-Y` (no I, O, S, V,
//! Z): registration-authority code (1), organisation category (1), administrative division code of
//! the registering office (6 digits), subject identification code — the GB 11714 organisation
//! code, 8 characters plus its own check character (9) — and the GB 32100 check character (1).
//!
//! Rules enforced:
//! - the GB 32100 check character (weights 3^i mod 31, check = 31 − sum mod 31);
//! - the registration authority is one GB 32100 and its later assignments define: 1 机构编制,
//!   2 外交, 3 司法行政, 4 文化, 5 民政, 6 旅游, 7 宗教, 8 工会, 9 工商 (market regulation),
//!   A 中央军委改革和编制办公室, N 农业, Y 其他;
//! - the division code part is six digits (its region is not checked: central-level bodies use
//!   `100000`);
//! - the embedded organisation code passes the GB 11714-1997 check (weights 3, 7, 9, 10, 5, 8, 4,
//!   2; check = 11 − sum mod 11, 10 → `X`, 11 → `0`).
//!
//! The category code is not checked against each authority's list, which has changed over time.
//!
//! Normal form: the 18 characters in upper case.

use crate::normalize::compact;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// The parts of a valid unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsccInfo {
    /// The registration-authority code (`'9'` for market regulation).
    pub authority_code: char,
    /// The authority's name (`"工商"`).
    pub authority: &'static str,
    /// The organisation category code within the authority.
    pub category_code: char,
    /// The six-digit division code of the registering office.
    pub division_code: String,
    /// The nine-character GB 11714 organisation code.
    pub organization_code: String,
}

/// The GB 32100 code alphabet; a character's value is its index.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
const ORGANIZATION_WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];

fn value(byte: u8) -> Option<u32> {
    ALPHABET
        .iter()
        .position(|&c| c == byte)
        .map(|index| index as u32)
}

/// The GB 32100 check character for the first 17 characters (upper-case, from the code
/// alphabet), or `None` if the input is not 17 such characters.
pub fn check_character(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (&byte, weight) in bytes.iter().zip(WEIGHTS) {
        sum += value(byte)? * weight;
    }
    Some(char::from(ALPHABET[((31 - sum % 31) % 31) as usize]))
}

/// The GB 11714 check character (`'0'`–`'9'` or `'X'`) for an 8-character organisation code body
/// (upper-case letters and digits), or `None` if the body is not 8 such characters.
pub fn organization_check_character(body: &str) -> Option<char> {
    let bytes = body.as_bytes();
    if bytes.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (&byte, weight) in bytes.iter().zip(ORGANIZATION_WEIGHTS) {
        let value = match byte {
            b'0'..=b'9' => u32::from(byte - b'0'),
            b'A'..=b'Z' => u32::from(byte - b'A') + 10,
            _ => return None,
        };
        sum += value * weight;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        check => char::from(b'0' + check as u8),
    })
}

/// Name of a registration-authority code, or `None` if GB 32100 does not define it.
pub fn authority_name(code: char) -> Option<&'static str> {
    let name = match code {
        '1' => "机构编制",
        '2' => "外交",
        '3' => "司法行政",
        '4' => "文化",
        '5' => "民政",
        '6' => "旅游",
        '7' => "宗教",
        '8' => "工会",
        '9' => "工商",
        'A' => "中央军委改革和编制办公室",
        'N' => "农业",
        'Y' => "其他",
        _ => return None,
    };
    Some(name)
}

/// Validates a unified social credit code; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(
        PiiKind::Uscc,
        parse(input).map(|(normalized, info)| (normalized, Details::Uscc(info))),
    )
}

fn parse(input: &str) -> Result<(String, UsccInfo), Reason> {
    let compacted = compact(input, b"")?;
    if compacted.len() != 18 {
        return Err(Reason::WrongLength {
            expected: "18 characters",
            found: compacted.len(),
        });
    }
    let code = compacted.as_str();
    let bytes = code.as_bytes();
    if !bytes.iter().all(|&b| value(b).is_some()) {
        return Err(Reason::BadCharacter);
    }
    if !bytes[2..8].iter().all(u8::is_ascii_digit) {
        return Err(Reason::Malformed(
            "the division code part (characters 3 to 8) must be digits",
        ));
    }
    if check_character(&code[..17]) != Some(char::from(bytes[17])) {
        return Err(Reason::BadChecksum);
    }
    let authority_code = char::from(bytes[0]);
    let authority = authority_name(authority_code).ok_or(Reason::UnknownAuthority)?;
    if organization_check_character(&code[8..16]) != Some(char::from(bytes[16])) {
        return Err(Reason::BadOrganizationCode);
    }
    let info = UsccInfo {
        authority_code,
        authority,
        category_code: char::from(bytes[1]),
        division_code: code[2..8].to_owned(),
        organization_code: code[8..17].to_owned(),
    };
    Ok((code.to_owned(), info))
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
    fn validates_codes() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("91350100M000100Y43", Ok("91350100M000100Y43")),
            ("91350100m000100y43", Ok("91350100M000100Y43")),
            (
                "９１３５０１００Ｍ０００１００Ｙ４３",
                Ok("91350100M000100Y43"),
            ),
            ("9135 0100 M000 100Y 43", Ok("91350100M000100Y43")),
            ("N1310104MARDWP4140", Ok("N1310104MARDWP4140")),
            ("1251010765427609XR", Ok("1251010765427609XR")),
            ("91350100M000100Y4Z", Err("bad_character")),
            ("91350100M000100Y42", Err("bad_checksum")),
            ("815101070914104I6T", Err("bad_character")),
            ("8151A107091410426T", Err("malformed")),
            ("81510107091410426", Err("wrong_length")),
            ("014201061234567883", Err("unknown_authority")),
            ("89440305559896484T", Err("bad_organization_code")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn organization_code_known_values() {
        // The organisation code inside the GB 32100 worked example 91350100M000100Y43.
        assert_eq!(organization_check_character("M000100Y"), Some('4'));
        assert_eq!(organization_check_character("M000100"), None);
        assert_eq!(organization_check_character("m000100y"), None);
    }

    /// Property: a generated code with its computed characters validates, and every
    /// single-character substitution of the GB 32100 check is caught.
    #[test]
    fn property_check_character_round_trip() {
        let authorities = b"123456789ANY";
        let mut state: u64 = 11;
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        for _ in 0..5_000 {
            let mut body = String::new();
            body.push(char::from(authorities[next(12) as usize]));
            body.push(char::from(ALPHABET[next(31) as usize]));
            for _ in 0..6 {
                body.push(char::from(b'0' + next(10) as u8));
            }
            let mut organization = String::new();
            for _ in 0..8 {
                organization.push(char::from(ALPHABET[next(31) as usize]));
            }
            let Some(organization_check) = organization_check_character(&organization) else {
                panic!()
            };
            body.push_str(&organization);
            body.push(organization_check);
            let Some(check) = check_character(&body) else {
                panic!("alphabet")
            };
            let code = format!("{body}{check}");
            assert!(validate(&code).is_ok(), "generated code rejected");
            let position = next(18) as usize;
            for &replacement in ALPHABET {
                if replacement == code.as_bytes()[position] {
                    continue;
                }
                let mut mutated = code.clone().into_bytes();
                mutated[position] = replacement;
                let mutated = String::from_utf8(mutated).unwrap_or_default();
                assert!(
                    validate(&mutated).is_err(),
                    "single change at {position} accepted"
                );
            }
        }
    }
}
