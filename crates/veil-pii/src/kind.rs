//! The kinds of personal data Veil knows, with the stable names used by the API, CLI and policies.

use std::fmt;
use std::str::FromStr;

/// A kind of personal data. The snake_case names from [`PiiKind::as_str`] are part of the public
/// interface (API, CLI, policies) and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// Resident identity card number (居民身份证号码), GB 11643.
    CnId,
    /// Mainland mobile number (手机号).
    CnMobile,
    /// Mainland fixed-line number (座机) with area code.
    CnLandline,
    /// E-mail address.
    Email,
    /// Bank card number (PAN), Luhn-checked.
    BankCard,
    /// Unified social credit code (统一社会信用代码), GB 32100.
    Uscc,
    /// PRC passport number.
    CnPassport,
    /// Hong Kong / Macau travel permits (回乡证, 往来港澳通行证).
    HkMacauPermit,
    /// Taiwan residents' mainland travel permit (台胞证).
    TwPermit,
    /// Hong Kong identity card number.
    HkId,
    /// A person's name.
    PersonName,
    /// A postal address.
    Address,
    /// A date of birth.
    BirthDate,
}

impl PiiKind {
    /// Every kind, in declaration order.
    pub const ALL: [PiiKind; 13] = [
        PiiKind::CnId,
        PiiKind::CnMobile,
        PiiKind::CnLandline,
        PiiKind::Email,
        PiiKind::BankCard,
        PiiKind::Uscc,
        PiiKind::CnPassport,
        PiiKind::HkMacauPermit,
        PiiKind::TwPermit,
        PiiKind::HkId,
        PiiKind::PersonName,
        PiiKind::Address,
        PiiKind::BirthDate,
    ];

    /// The stable snake_case name (`"cn_id"`, `"hk_macau_permit"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            PiiKind::CnId => "cn_id",
            PiiKind::CnMobile => "cn_mobile",
            PiiKind::CnLandline => "cn_landline",
            PiiKind::Email => "email",
            PiiKind::BankCard => "bank_card",
            PiiKind::Uscc => "uscc",
            PiiKind::CnPassport => "cn_passport",
            PiiKind::HkMacauPermit => "hk_macau_permit",
            PiiKind::TwPermit => "tw_permit",
            PiiKind::HkId => "hk_id",
            PiiKind::PersonName => "person_name",
            PiiKind::Address => "address",
            PiiKind::BirthDate => "birth_date",
        }
    }

    /// A short English noun phrase for messages ("resident ID number").
    pub const fn description(self) -> &'static str {
        match self {
            PiiKind::CnId => "resident ID number",
            PiiKind::CnMobile => "mobile number",
            PiiKind::CnLandline => "landline number",
            PiiKind::Email => "e-mail address",
            PiiKind::BankCard => "bank card number",
            PiiKind::Uscc => "unified social credit code",
            PiiKind::CnPassport => "passport number",
            PiiKind::HkMacauPermit => "Hong Kong/Macau travel permit number",
            PiiKind::TwPermit => "Taiwan travel permit number",
            PiiKind::HkId => "Hong Kong identity card number",
            PiiKind::PersonName => "person name",
            PiiKind::Address => "address",
            PiiKind::BirthDate => "birth date",
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name given to [`PiiKind::from_str`] is not a known kind. The message lists the accepted
/// names but does not repeat the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownKind;

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown personal data kind; expected one of: ")?;
        for (index, kind) in PiiKind::ALL.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(kind.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownKind {}

impl FromStr for PiiKind {
    type Err = UnknownKind;

    /// Parses a stable name, ASCII case-insensitively. `hkmo_permit` (the test-data name) is
    /// accepted as an alias of `hk_macau_permit`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name.eq_ignore_ascii_case("hkmo_permit") {
            return Ok(PiiKind::HkMacauPermit);
        }
        PiiKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(name))
            .ok_or(UnknownKind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: Option<PiiKind>) {
        assert_eq!(name.parse::<PiiKind>().ok(), expected, "{name}");
    }

    #[test]
    fn parses_names_and_alias() {
        let cases = [
            ("cn_id", Some(PiiKind::CnId)),
            ("CN_ID", Some(PiiKind::CnId)),
            ("hk_macau_permit", Some(PiiKind::HkMacauPermit)),
            ("hkmo_permit", Some(PiiKind::HkMacauPermit)),
            ("birth_date", Some(PiiKind::BirthDate)),
            ("", None),
            ("cnid", None),
            ("free_text", None),
        ];
        for (name, expected) in cases {
            check(name, expected);
        }
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        for kind in PiiKind::ALL {
            assert_eq!(kind.as_str().parse::<PiiKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        let mut names: Vec<_> = PiiKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PiiKind::ALL.len());
    }

    #[test]
    fn unknown_kind_message_does_not_echo_input() {
        let error = "13812345678".parse::<PiiKind>().unwrap_err();
        let message = error.to_string();
        assert!(!message.contains("13812345678"));
        assert!(message.contains("hk_macau_permit"));
    }
}
