//! The common result types of validation and the [`validate`] entry point for every kind.

use std::fmt;

use crate::{
    address, bank_card, birth_date, cn_id, cn_landline, cn_mobile, cn_passport, email, hk_id,
    hk_macau_permit, person_name, tw_permit, uscc, Date, PiiKind,
};

/// A value that passed validation, in canonical form.
///
/// `normalized` and `details` are personal data: `Debug` redacts them so that a stray `{:?}` in
/// a log line cannot leak them.
#[derive(Clone, PartialEq, Eq)]
pub struct Validated {
    pub kind: PiiKind,
    /// The canonical spelling (see each kind's module for its form).
    pub normalized: String,
    /// What the value itself says (region and birth date of an ID, carrier of a mobile, …).
    pub details: Details,
}

impl fmt::Debug for Validated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validated")
            .field("kind", &self.kind)
            .field(
                "normalized",
                &format_args!("<redacted {} chars>", self.normalized.chars().count()),
            )
            .field("details", &format_args!("<redacted>"))
            .finish()
    }
}

/// Kind-specific facts read from a valid value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Details {
    /// Nothing beyond the normalised value.
    None,
    /// Region, birth date and sex encoded in a resident ID number.
    CnId(cn_id::CnIdInfo),
    /// The network the number's prefix was allocated to (`None` where the 3-digit prefix is
    /// shared, e.g. 170/174). Number portability means the current carrier may differ.
    CnMobile { carrier: Option<cn_mobile::Carrier> },
    /// Area code with its leading 0 (`"0755"`) and the extension, if one was written.
    CnLandline {
        area_code: String,
        extension: Option<String>,
    },
    /// Number of digits and the card network read from the issuer identification number.
    BankCard {
        length: u8,
        network: Option<bank_card::CardNetwork>,
    },
    /// The parts of a unified social credit code.
    Uscc(uscc::UsccInfo),
    /// Which passport a number belongs to.
    CnPassport {
        passport_type: cn_passport::PassportType,
    },
    /// Which permit a Hong Kong/Macau permit number belongs to.
    HkMacauPermit { permit: hk_macau_permit::Permit },
    /// The parsed birth date.
    BirthDate(Date),
}

/// Why a value was rejected. Messages describe the rule that failed, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Blank after trimming.
    Empty,
    /// Wrong number of significant characters (after removing separators).
    WrongLength {
        expected: &'static str,
        found: usize,
    },
    /// A character that cannot appear in this kind of value.
    BadCharacter,
    /// The check digit or character does not match.
    BadChecksum,
    /// An embedded or given date that does not exist (February 30, month 13, …).
    ImpossibleDate,
    /// A birth date after today.
    FutureDate,
    /// A birth date before 1900-01-01.
    DateTooEarly,
    /// A region (province) code that is not allocated.
    UnknownRegion,
    /// A number prefix (mobile network segment) that is not allocated.
    UnallocatedPrefix,
    /// A USCC registration-authority code that GB 32100 does not define.
    UnknownAuthority,
    /// The organisation code embedded in a USCC fails its GB 11714 check.
    BadOrganizationCode,
    /// Any other structural problem, described by the message.
    Malformed(&'static str),
}

impl Reason {
    /// A stable machine-readable code (`"bad_checksum"`, …) for API error bodies.
    pub const fn code(self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::WrongLength { .. } => "wrong_length",
            Reason::BadCharacter => "bad_character",
            Reason::BadChecksum => "bad_checksum",
            Reason::ImpossibleDate => "impossible_date",
            Reason::FutureDate => "future_date",
            Reason::DateTooEarly => "date_too_early",
            Reason::UnknownRegion => "unknown_region",
            Reason::UnallocatedPrefix => "unallocated_prefix",
            Reason::UnknownAuthority => "unknown_authority",
            Reason::BadOrganizationCode => "bad_organization_code",
            Reason::Malformed(_) => "malformed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Empty => f.write_str("the value is empty"),
            Reason::WrongLength { expected, found } => {
                write!(f, "wrong length: expected {expected}, found {found}")
            }
            Reason::BadCharacter => f.write_str("contains a character that is not allowed"),
            Reason::BadChecksum => f.write_str("check digit does not match"),
            Reason::ImpossibleDate => f.write_str("the date does not exist"),
            Reason::FutureDate => f.write_str("the birth date is in the future"),
            Reason::DateTooEarly => f.write_str("the birth date is before 1900-01-01"),
            Reason::UnknownRegion => f.write_str("unknown region code"),
            Reason::UnallocatedPrefix => f.write_str("the number prefix is not allocated"),
            Reason::UnknownAuthority => f.write_str("unknown registration authority code"),
            Reason::BadOrganizationCode => {
                f.write_str("the embedded organisation code's check digit does not match")
            }
            Reason::Malformed(message) => f.write_str(message),
        }
    }
}

/// A rejected value: which kind was expected and why it did not fit.
///
/// `Display` reads e.g. "not a valid resident ID number: check digit does not match" and never
/// contains the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Invalid {
    pub kind: PiiKind,
    pub reason: Reason,
}

impl Invalid {
    pub const fn new(kind: PiiKind, reason: Reason) -> Invalid {
        Invalid { kind, reason }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a valid {}: {}",
            self.kind.description(),
            self.reason
        )
    }
}

impl std::error::Error for Invalid {}

/// Validates and normalises `input` as a value of `kind`. `today` bounds birth dates (in IDs and
/// `birth_date`) from above.
pub fn validate(kind: PiiKind, input: &str, today: Date) -> Result<Validated, Invalid> {
    match kind {
        PiiKind::CnId => cn_id::validate(input, today),
        PiiKind::CnMobile => cn_mobile::validate(input),
        PiiKind::CnLandline => cn_landline::validate(input),
        PiiKind::Email => email::validate(input),
        PiiKind::BankCard => bank_card::validate(input),
        PiiKind::Uscc => uscc::validate(input),
        PiiKind::CnPassport => cn_passport::validate(input),
        PiiKind::HkMacauPermit => hk_macau_permit::validate(input),
        PiiKind::TwPermit => tw_permit::validate(input),
        PiiKind::HkId => hk_id::validate(input),
        PiiKind::PersonName => person_name::validate(input),
        PiiKind::Address => address::validate(input),
        PiiKind::BirthDate => birth_date::validate(input, today),
    }
}

/// Wraps a kind-specific check that yields `(normalized, details)` into the public result.
pub(crate) fn finish(
    kind: PiiKind,
    result: Result<(String, Details), Reason>,
) -> Result<Validated, Invalid> {
    result
        .map(|(normalized, details)| Validated {
            kind,
            normalized,
            details,
        })
        .map_err(|reason| Invalid::new(kind, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = Date {
        year: 2026,
        month: 11,
        day: 29,
    };

    /// A deterministic stream of awkward inputs: random bytes decoded lossily, random chars from
    /// several scripts, and long runs.
    fn awkward_inputs() -> Vec<String> {
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u32
        };
        let alphabet: Vec<char> =
            "0123456789Xx+-() .@#转分机ext１２３４５６７８９０ＸＡ（）＠\u{a0}\u{3000}\u{0}\u{200b}张王é𝔘\u{fffd}*/\\"
                .chars()
                .collect();
        let mut inputs = vec![
            String::new(),
            " ".repeat(10_000),
            "1".repeat(1_000_000),
            "@".repeat(1000),
            format!("{}@{}.com", "a".repeat(100_000), "b".repeat(100_000)),
            "(".repeat(50),
            "+86".repeat(20),
            "转".repeat(10),
            "\u{0}".into(),
        ];
        for _ in 0..20_000 {
            let length = next() % 24;
            let text: String = (0..length)
                .map(|_| alphabet[next() as usize % alphabet.len()])
                .collect();
            inputs.push(text);
            let bytes: Vec<u8> = (0..length).map(|_| next() as u8).collect();
            inputs.push(String::from_utf8_lossy(&bytes).into_owned());
        }
        inputs
    }

    #[test]
    fn no_kind_panics_on_awkward_input() {
        for input in awkward_inputs() {
            for kind in PiiKind::ALL {
                if let Err(invalid) = validate(kind, &input, TODAY) {
                    let message = invalid.to_string();
                    assert!(message.starts_with("not a valid "));
                    let trimmed = input.trim();
                    if trimmed.chars().count() >= 8 {
                        assert!(!message.contains(trimmed), "{kind}: message echoes input");
                    }
                }
            }
        }
    }

    #[test]
    fn messages_name_the_rule_not_the_value() {
        let cases = [
            (PiiKind::CnId, "110101198402276152", "not a valid resident ID number: check digit does not match"),
            (PiiKind::CnMobile, "15455686524", "not a valid mobile number: the number prefix is not allocated"),
            (PiiKind::BankCard, "6297611665402746", "not a valid bank card number: check digit does not match"),
            (PiiKind::CnId, "", "not a valid resident ID number: the value is empty"),
            (
                PiiKind::CnId,
                "42010619800226860",
                "not a valid resident ID number: wrong length: expected 18 (or 15 for the legacy form) characters, found 17",
            ),
        ];
        for (kind, input, expected) in cases {
            let error = validate(kind, input, TODAY).unwrap_err();
            assert_eq!(error.to_string(), expected);
            assert!(!expected.contains(input) || input.is_empty());
        }
    }

    #[test]
    fn debug_of_validated_is_redacted() {
        let valid = validate(PiiKind::CnId, "110101198402276151", TODAY).unwrap();
        let debug = format!("{valid:?}");
        assert!(!debug.contains("110101198402276151"), "{debug}");
        assert!(!debug.contains("1984"), "{debug}");
        assert!(debug.contains("CnId"));
    }

    #[test]
    fn reason_codes_are_snake_case() {
        let reasons = [
            Reason::Empty,
            Reason::WrongLength {
                expected: "1",
                found: 2,
            },
            Reason::BadCharacter,
            Reason::BadChecksum,
            Reason::ImpossibleDate,
            Reason::FutureDate,
            Reason::DateTooEarly,
            Reason::UnknownRegion,
            Reason::UnallocatedPrefix,
            Reason::UnknownAuthority,
            Reason::BadOrganizationCode,
            Reason::Malformed("x"),
        ];
        for reason in reasons {
            assert!(reason
                .code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }
}
