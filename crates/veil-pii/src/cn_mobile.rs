//! Mainland China mobile numbers (11 digits starting with 1).
//!
//! Only network segments (the first three digits) that MIIT has allocated for public 11-digit
//! mobile service are accepted. Sources: the MIIT 《电信网编码计划》 (2017 edition) and its later
//! allocations — 190/196/197/192 (5G licences, 2019: 192 to China Broadnet), 162/165/167 and
//! 170/171 (mobile virtual network operators) — as summarised in the MIIT code-number tables of
//! 2023-03. Allocated: 130–139; 145–149; 150–153, 155–159; 162, 165–167; 170–178; 180–189;
//! 190–193, 195–199. Not allocated for 11-digit numbers: 10x–12x (short codes), 140–144 (13-digit
//! IoT numbers), 154, 160, 161, 163, 164, 168, 169, 179, 194.
//!
//! Accepted spellings: plain digits, groups separated by spaces/dashes/dots, full-width digits,
//! and a country prefix `+86`, `(+86)`, `0086`, `86-`, `86 ` (or `86` directly before the eleven
//! digits). Any other country code is rejected.
//!
//! Normal form: the 11 digits.

use crate::normalize::compact;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// The operator a mobile prefix was allocated to (before number portability).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Carrier {
    ChinaMobile,
    ChinaUnicom,
    ChinaTelecom,
    ChinaBroadnet,
}

impl Carrier {
    /// `"china_mobile"`, `"china_unicom"`, `"china_telecom"` or `"china_broadnet"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Carrier::ChinaMobile => "china_mobile",
            Carrier::ChinaUnicom => "china_unicom",
            Carrier::ChinaTelecom => "china_telecom",
            Carrier::ChinaBroadnet => "china_broadnet",
        }
    }
}

/// Whether a three-digit segment (`"138"`) is allocated for 11-digit mobile numbers.
pub fn is_allocated_prefix(first3: &str) -> bool {
    is_allocated(first3.as_bytes())
}

fn is_allocated(first3: &[u8]) -> bool {
    let &[b'1', second, third] = first3 else {
        return false;
    };
    if !second.is_ascii_digit() || !third.is_ascii_digit() {
        return false;
    }
    match second {
        b'3' | b'8' => true,
        b'4' => (b'5'..=b'9').contains(&third),
        b'5' => third != b'4',
        b'6' => matches!(third, b'2' | b'5' | b'6' | b'7'),
        b'7' => third != b'9',
        b'9' => third != b'4',
        _ => false,
    }
}

/// The operator an 11-digit number's segment was allocated to; `None` for segments shared by
/// several operators at the fourth digit (170, 174 partly) or not allocated.
pub fn carrier(number: &str) -> Option<Carrier> {
    use Carrier::*;
    let bytes = number.as_bytes();
    let segment = bytes.get(..3)?;
    if !is_allocated(segment) {
        return None;
    }
    let fourth = bytes.get(3).copied();
    let carrier = match segment {
        b"134" if fourth == Some(b'9') => ChinaTelecom, // 1349: former satellite segment
        b"134" | b"135" | b"136" | b"137" | b"138" | b"139" | b"147" | b"148" | b"150" | b"151"
        | b"152" | b"157" | b"158" | b"159" | b"165" | b"172" | b"178" | b"182" | b"183"
        | b"184" | b"187" | b"188" | b"195" | b"197" | b"198" => ChinaMobile,
        b"130" | b"131" | b"132" | b"145" | b"146" | b"155" | b"156" | b"166" | b"167" | b"171"
        | b"175" | b"176" | b"185" | b"186" | b"196" => ChinaUnicom,
        b"133" | b"149" | b"153" | b"162" | b"173" | b"177" | b"180" | b"181" | b"189" | b"190"
        | b"191" | b"193" | b"199" => ChinaTelecom,
        b"192" => ChinaBroadnet,
        b"170" => match fourth? {
            b'0' | b'1' | b'2' => ChinaTelecom,
            b'3' | b'5' | b'6' => ChinaMobile,
            _ => ChinaUnicom,
        },
        b"174" if fourth == Some(b'0') => ChinaTelecom,
        _ => return None,
    };
    Some(carrier)
}

/// Validates a mainland mobile number; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::CnMobile, parse(input))
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    let compacted = compact(input, b"+()")?;
    let text = compacted.as_str();
    if text.is_empty() {
        // Longer than any phone number.
        return Err(Reason::WrongLength {
            expected: "11 digits",
            found: compacted.len(),
        });
    }
    let digits = strip_country_prefix(text)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::BadCharacter);
    }
    if digits.len() != 11 {
        return Err(Reason::WrongLength {
            expected: "11 digits",
            found: digits.len(),
        });
    }
    if !digits.starts_with('1') {
        return Err(Reason::Malformed("a mobile number starts with 1"));
    }
    if !is_allocated(&digits.as_bytes()[..3]) {
        return Err(Reason::UnallocatedPrefix);
    }
    Ok((
        digits.to_owned(),
        Details::CnMobile {
            carrier: carrier(digits),
        },
    ))
}

/// The national number after a `+86`-style prefix. `compact` has already removed separators, so
/// `86-138…` arrives as `86138…`; a bare `86` counts only when exactly 11 digits follow.
fn strip_country_prefix(text: &str) -> Result<&str, Reason> {
    for prefix in ["+86", "(+86)", "(86)", "+(86)", "0086"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return Ok(rest);
        }
    }
    if text.starts_with('+') || text.starts_with("00") {
        return Err(Reason::Malformed(
            "only the +86 country code is a mainland mobile number",
        ));
    }
    match text.strip_prefix("86") {
        Some(rest) if rest.len() == 11 => Ok(rest),
        _ => Ok(text),
    }
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
    fn validates_mobiles() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("13812345678", Ok("13812345678")),
            ("138 1234 5678", Ok("13812345678")),
            ("138-1234-5678", Ok("13812345678")),
            ("１３８１２３４５６７８", Ok("13812345678")),
            ("+8613812345678", Ok("13812345678")),
            ("+86 138 1234 5678", Ok("13812345678")),
            ("+86-138-1234-5678", Ok("13812345678")),
            ("＋８６ １３８１２３４５６７８", Ok("13812345678")),
            ("(+86) 13812345678", Ok("13812345678")),
            ("008613812345678", Ok("13812345678")),
            ("86-13812345678", Ok("13812345678")),
            ("86 13812345678", Ok("13812345678")),
            ("8613812345678", Ok("13812345678")),
            ("19212345678", Ok("19212345678")),
            ("14620334963", Ok("14620334963")),
            ("12087281353", Err("unallocated_prefix")),
            ("15455686524", Err("unallocated_prefix")),
            ("14012859200", Err("unallocated_prefix")),
            ("17956413175", Err("unallocated_prefix")),
            ("19441634718", Err("unallocated_prefix")),
            ("23260272829", Err("malformed")),
            ("1326027282", Err("wrong_length")),
            ("132602728295", Err("wrong_length")),
            ("+86 1326027282", Err("wrong_length")),
            ("+852 13260272829", Err("malformed")),
            ("001 13812345678", Err("malformed")),
            ("132****2829", Err("bad_character")),
            ("138１２３４５６７８x", Err("bad_character")),
            (
                "13812345678901234567890123456789012345",
                Err("wrong_length"),
            ),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn allocated_prefixes() {
        let allocated: Vec<u32> = (100..200)
            .filter(|n| is_allocated_prefix(&n.to_string()))
            .collect();
        let expected: Vec<u32> = [
            130..=139,
            145..=149,
            150..=153,
            155..=159,
            162..=162,
            165..=167,
            170..=178,
            180..=189,
            190..=193,
            195..=199,
        ]
        .into_iter()
        .flatten()
        .collect();
        assert_eq!(allocated, expected);
        assert!(!is_allocated_prefix("13"));
        assert!(!is_allocated_prefix("1380"));
        assert!(!is_allocated_prefix("1 3"));
        assert!(!is_allocated_prefix("１３８"));
    }

    #[test]
    fn every_allocated_prefix_but_shared_ones_has_a_carrier() {
        for prefix in (100..200)
            .map(|n| n.to_string())
            .filter(|p| is_allocated_prefix(p))
        {
            let number = format!("{prefix}00000000");
            assert!(carrier(&number).is_some(), "{prefix}");
        }
        assert_eq!(carrier("13912345678"), Some(Carrier::ChinaMobile));
        assert_eq!(carrier("18612345678"), Some(Carrier::ChinaUnicom));
        assert_eq!(carrier("18912345678"), Some(Carrier::ChinaTelecom));
        assert_eq!(carrier("19212345678"), Some(Carrier::ChinaBroadnet));
        assert_eq!(carrier("17051234567"), Some(Carrier::ChinaMobile));
        assert_eq!(carrier("17401234567"), Some(Carrier::ChinaTelecom));
        assert_eq!(carrier("17491234567"), None);
        assert_eq!(carrier("12"), None);
    }
}
