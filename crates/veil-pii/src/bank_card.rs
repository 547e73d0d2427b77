//! Bank card numbers (primary account numbers): 16 to 19 digits with a Luhn (ISO/IEC 7812-1)
//! check digit. Chinese debit and credit cards are 16–19 digits; 15-digit American Express
//! numbers and 12–15-digit private-label cards are deliberately out of scope.
//!
//! Normal form: the digits only.

use crate::normalize::compact;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// Card scheme read from the issuer identification number (first digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardNetwork {
    /// IIN 62 (China UnionPay).
    UnionPay,
    /// IIN 4.
    Visa,
    /// IIN 51–55 and 2221–2720.
    Mastercard,
    /// IIN 3528–3589.
    Jcb,
}

impl CardNetwork {
    /// `"unionpay"`, `"visa"`, `"mastercard"` or `"jcb"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CardNetwork::UnionPay => "unionpay",
            CardNetwork::Visa => "visa",
            CardNetwork::Mastercard => "mastercard",
            CardNetwork::Jcb => "jcb",
        }
    }

    /// The network of a card number (ASCII digits), if recognised.
    pub fn of(number: &str) -> Option<CardNetwork> {
        let prefix = |n: usize| number.get(..n).and_then(|p| p.parse::<u32>().ok());
        match (prefix(1)?, prefix(2)?, prefix(4)?) {
            (_, 62, _) => Some(CardNetwork::UnionPay),
            (4, _, _) => Some(CardNetwork::Visa),
            (_, 51..=55, _) | (_, _, 2221..=2720) => Some(CardNetwork::Mastercard),
            (_, _, 3528..=3589) => Some(CardNetwork::Jcb),
            _ => None,
        }
    }
}

/// Luhn sum of ASCII digits, doubling every second digit from the right starting with the
/// rightmost when `double_rightmost` (i.e. when computing a check digit for a payload).
fn luhn_sum(digits: &[u8], double_rightmost: bool) -> u32 {
    digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &byte)| {
            let digit = u32::from(byte - b'0');
            if (index % 2 == 0) == double_rightmost {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum()
}

/// The digit to append to `payload` (ASCII digits) to make it Luhn-valid; `None` if `payload`
/// is empty or contains anything but ASCII digits.
pub fn luhn_check_digit(payload: &str) -> Option<u8> {
    let bytes = payload.as_bytes();
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(((10 - luhn_sum(bytes, true) % 10) % 10) as u8)
}

/// Whether `number` (ASCII digits only, at least two) passes the Luhn check. No normalisation:
/// use [`validate`] for user input.
pub fn luhn_valid(number: &str) -> bool {
    let bytes = number.as_bytes();
    bytes.len() >= 2
        && bytes.iter().all(u8::is_ascii_digit)
        && luhn_sum(bytes, false).is_multiple_of(10)
}

/// Validates a bank card number; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::BankCard, parse(input))
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    let compacted = compact(input, b"")?;
    let length = compacted.len();
    if !(16..=19).contains(&length) {
        return Err(Reason::WrongLength {
            expected: "16 to 19 digits",
            found: length,
        });
    }
    let digits = compacted.as_str();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::BadCharacter);
    }
    if !luhn_valid(digits) {
        return Err(Reason::BadChecksum);
    }
    let details = Details::BankCard {
        length: length as u8,
        network: CardNetwork::of(digits),
    };
    Ok((digits.to_owned(), details))
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
    fn validates_cards() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("6246840394252506", Ok("6246840394252506")),
            ("6267374111735443717", Ok("6267374111735443717")),
            ("6245 4928 6393 0765", Ok("6245492863930765")),
            ("6279-6171-0191-0646", Ok("6279617101910646")),
            ("６２４６８４０３９４２５２５０６", Ok("6246840394252506")),
            ("4028476546410681", Ok("4028476546410681")),
            ("6297611665402746", Err("bad_checksum")),
            ("6258914041250475", Err("bad_checksum")),
            ("626794380528622", Err("wrong_length")),
            ("62589280507902959651", Err("wrong_length")),
            ("621727******7131", Err("bad_character")),
            ("6217279383O87131", Err("bad_character")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn networks() {
        let cases = [
            ("6246840394252506", Some(CardNetwork::UnionPay)),
            ("4028476546410681", Some(CardNetwork::Visa)),
            ("5105105105105100", Some(CardNetwork::Mastercard)),
            ("2223000048400011", Some(CardNetwork::Mastercard)),
            ("3530111333300000", Some(CardNetwork::Jcb)),
            ("9999999999999995", None),
            ("6", None),
        ];
        for (number, expected) in cases {
            assert_eq!(CardNetwork::of(number), expected, "{number}");
        }
    }

    #[test]
    fn luhn_known_values() {
        assert_eq!(luhn_check_digit("7992739871"), Some(3));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert_eq!(luhn_check_digit(""), None);
        assert_eq!(luhn_check_digit("12a"), None);
        assert!(!luhn_valid("0"));
        assert!(luhn_valid("00"));
        assert!(!luhn_valid("7992 7398 713"));
    }

    /// Property: appending the computed check digit always validates, and every single-digit
    /// substitution is caught.
    #[test]
    fn property_luhn_round_trip_and_single_errors() {
        let mut state: u64 = 7;
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        for _ in 0..10_000 {
            let length = 15 + next(4) as usize;
            let payload: String = (0..length)
                .map(|_| char::from(b'0' + next(10) as u8))
                .collect();
            let check = luhn_check_digit(&payload).unwrap_or_else(|| panic!("digits"));
            let number = format!("{payload}{check}");
            assert!(luhn_valid(&number));
            assert!(validate(&number).is_ok());
            let position = next(number.len() as u64) as usize;
            let original = number.as_bytes()[position];
            for replacement in b'0'..=b'9' {
                if replacement == original {
                    continue;
                }
                let mut mutated = number.clone().into_bytes();
                mutated[position] = replacement;
                let mutated = String::from_utf8(mutated).unwrap_or_default();
                assert!(
                    !luhn_valid(&mutated),
                    "single change at {position} accepted"
                );
            }
        }
    }
}
