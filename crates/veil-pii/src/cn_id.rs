//! Resident identity card numbers (居民身份证号码), GB 11643-1999, and the 15-digit legacy form of
//! GB 11643-1989.
//!
//! An 18-character number is `RRRRRR YYYYMMDD SSS C`: a six-digit administrative division code
//! (GB/T 2260), the birth date, a three-digit sequence whose last digit is odd for men and even
//! for women, and an ISO 7064 MOD 11-2 check character (`0`–`9` or `X`). The legacy form is
//! `RRRRRR YYMMDD SSS` with the century 19 implied and no check character.
//!
//! Rules enforced, beyond the check character:
//! - the first two digits are a province-level code: 11–15, 21–23, 31–37, 41–46, 50–54, 61–65,
//!   71 (Taiwan), 81 (Hong Kong), 82 (Macau), and 83, which the residence permits for Taiwan
//!   residents (港澳台居民居住证, 2018) use alongside 81/82 with the same GB 11643 structure;
//!   the remaining four digits of the division code are not checked against GB/T 2260, whose
//!   list changes every year;
//! - the birth date exists, is not after `today` and not before 1900-01-01.
//!
//! Foreigners' permanent residence ID cards (18 digits starting with 9) are not resident IDs and
//! are rejected as an unknown region.
//!
//! Normal form: 18 characters with an upper-case `X`; a valid legacy number is upgraded.

use crate::normalize::compact;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Date, Invalid, PiiKind};

/// Sex as encoded in the ID sequence number (odd: male, even: female).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    /// `"male"` or `"female"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }
}

/// What a valid resident ID number says about its holder. This is personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnIdInfo {
    /// The six-digit administrative division code of the issuing place.
    pub region_code: String,
    /// Name of the province-level division (`"北京市"`).
    pub province: &'static str,
    pub birth_date: Date,
    pub sex: Sex,
    /// The input was a 15-digit legacy number (normalised to 18).
    pub legacy_15: bool,
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARACTERS: &[u8; 11] = b"10X98765432";

fn check_byte(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(&digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    CHECK_CHARACTERS[(sum % 11) as usize]
}

/// The ISO 7064 MOD 11-2 check character (`'0'`–`'9'` or `'X'`) for the first 17 digits, or
/// `None` if `first17` is not exactly 17 ASCII digits.
pub fn check_digit(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    (bytes.len() == 17 && bytes.iter().all(u8::is_ascii_digit))
        .then(|| char::from(check_byte(bytes)))
}

/// The 18-digit form of a 15-digit legacy number: `19` inserted before the two-digit year and
/// the check character appended. `None` unless `legacy` is exactly 15 ASCII digits; the date and
/// region are not checked here (use [`validate`] for that).
pub fn upgrade_15_to_18(legacy: &str) -> Option<String> {
    let bytes = legacy.as_bytes();
    if bytes.len() != 15 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut upgraded = [0u8; 18];
    upgraded[..6].copy_from_slice(&bytes[..6]);
    upgraded[6..8].copy_from_slice(b"19");
    upgraded[8..17].copy_from_slice(&bytes[6..]);
    upgraded[17] = check_byte(&upgraded[..17]);
    Some(upgraded.iter().map(|&b| char::from(b)).collect())
}

/// Name of the province-level division for the first two digits of a division code
/// (`"11"` → `"北京市"`), or `None` if none is allocated.
pub fn province_name(code: &str) -> Option<&'static str> {
    let name = match code {
        "11" => "北京市",
        "12" => "天津市",
        "13" => "河北省",
        "14" => "山西省",
        "15" => "内蒙古自治区",
        "21" => "辽宁省",
        "22" => "吉林省",
        "23" => "黑龙江省",
        "31" => "上海市",
        "32" => "江苏省",
        "33" => "浙江省",
        "34" => "安徽省",
        "35" => "福建省",
        "36" => "江西省",
        "37" => "山东省",
        "41" => "河南省",
        "42" => "湖北省",
        "43" => "湖南省",
        "44" => "广东省",
        "45" => "广西壮族自治区",
        "46" => "海南省",
        "50" => "重庆市",
        "51" => "四川省",
        "52" => "贵州省",
        "53" => "云南省",
        "54" => "西藏自治区",
        "61" => "陕西省",
        "62" => "甘肃省",
        "63" => "青海省",
        "64" => "宁夏回族自治区",
        "65" => "新疆维吾尔自治区",
        "71" | "83" => "台湾省",
        "81" => "香港特别行政区",
        "82" => "澳门特别行政区",
        _ => return None,
    };
    Some(name)
}

/// Validates a resident ID number (18 characters, or 15 digits in the legacy form); see the
/// module documentation for the rules and the normal form.
pub fn validate(input: &str, today: Date) -> Result<Validated, Invalid> {
    finish(
        PiiKind::CnId,
        parse(input, today).map(|(normalized, info)| (normalized, Details::CnId(info))),
    )
}

fn parse(input: &str, today: Date) -> Result<(String, CnIdInfo), Reason> {
    let compacted = compact(input, b"")?;
    let legacy_15 = match compacted.len() {
        18 => false,
        15 => true,
        found => {
            return Err(Reason::WrongLength {
                expected: "18 (or 15 for the legacy form) characters",
                found,
            })
        }
    };
    let bytes = compacted.bytes();
    let mut full = [0u8; 18];
    if legacy_15 {
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(Reason::BadCharacter);
        }
        full[..6].copy_from_slice(&bytes[..6]);
        full[6..8].copy_from_slice(b"19");
        full[8..17].copy_from_slice(&bytes[6..]);
        full[17] = check_byte(&full[..17]);
    } else {
        full.copy_from_slice(bytes);
        let check_is_well_formed = full[17].is_ascii_digit() || full[17] == b'X';
        if !full[..17].iter().all(u8::is_ascii_digit) || !check_is_well_formed {
            return Err(Reason::BadCharacter);
        }
        if check_byte(&full[..17]) != full[17] {
            return Err(Reason::BadChecksum);
        }
    }
    // Every byte is now an ASCII digit or 'X'.
    let text = std::str::from_utf8(&full).map_err(|_| Reason::BadCharacter)?;
    let province = province_name(&text[..2]).ok_or(Reason::UnknownRegion)?;
    let birth_date = Date::parse_compact(&full[6..14]).ok_or(Reason::ImpossibleDate)?;
    if birth_date > today {
        return Err(Reason::FutureDate);
    }
    if birth_date.year < 1900 {
        return Err(Reason::DateTooEarly);
    }
    let sex = if (full[16] - b'0') % 2 == 1 {
        Sex::Male
    } else {
        Sex::Female
    };
    let info = CnIdInfo {
        region_code: text[..6].to_owned(),
        province,
        birth_date,
        sex,
        legacy_15,
    };
    Ok((text.to_owned(), info))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = Date {
        year: 2026,
        month: 11,
        day: 29,
    };

    /// `Ok((normalized, birth date, sex, legacy))` or the reason code.
    type Expected = Result<(&'static str, &'static str, Sex, bool), &'static str>;

    fn check(input: &str, expected: Expected) {
        let actual = validate(input, TODAY)
            .map_err(|invalid| invalid.reason.code())
            .map(|valid| {
                let Details::CnId(info) = valid.details else {
                    panic!("cn_id details")
                };
                (
                    valid.normalized,
                    info.birth_date.to_string(),
                    info.sex,
                    info.legacy_15,
                )
            });
        let expected = expected.map(|(normalized, birth, sex, legacy)| {
            (normalized.to_owned(), birth.to_owned(), sex, legacy)
        });
        assert_eq!(actual, expected, "{input:?}");
    }

    #[test]
    fn validates_resident_ids() {
        use Sex::{Female, Male};
        let cases: &[(&str, Expected)] = &[
            (
                "110101198402276151",
                Ok(("110101198402276151", "1984-02-27", Male, false)),
            ),
            (
                "440305195802234881",
                Ok(("440305195802234881", "1958-02-23", Female, false)),
            ),
            (
                "32010219870115984x",
                Ok(("32010219870115984X", "1987-01-15", Female, false)),
            ),
            (
                "３２０１０２１９８７０１１５９８４ｘ",
                Ok(("32010219870115984X", "1987-01-15", Female, false)),
            ),
            (
                "110101 19840227 6151",
                Ok(("110101198402276151", "1984-02-27", Male, false)),
            ),
            (
                "110101-19840227-6151",
                Ok(("110101198402276151", "1984-02-27", Male, false)),
            ),
            (
                "  110101198402276151\n",
                Ok(("110101198402276151", "1984-02-27", Male, false)),
            ),
            (
                "110101200002297711",
                Ok(("110101200002297711", "2000-02-29", Male, false)),
            ),
            (
                "810000197803299302",
                Ok(("810000197803299302", "1978-03-29", Female, false)),
            ),
            (
                "310104730108739",
                Ok(("310104197301087396", "1973-01-08", Male, true)),
            ),
            (
                "330106390906887",
                Ok(("33010619390906887X", "1939-09-06", Male, true)),
            ),
            // wrong check digit, transposition, wrong X
            ("110101198402276152", Err("bad_checksum")),
            ("61011319560909229X", Err("bad_checksum")),
            ("330106195907250163", Err("bad_checksum")),
            // checksum right, date wrong
            ("330106199902294126", Err("impossible_date")),
            ("440305190002298630", Err("impossible_date")),
            ("420106199002301150", Err("impossible_date")),
            ("330106209905202350", Err("future_date")),
            ("330106990229119", Err("impossible_date")),
            // STRICT province prefixes
            ("990101195310311212", Err("unknown_region")),
            ("000000196008311266", Err("unknown_region")),
            // shape
            ("42010619800226860", Err("wrong_length")),
            ("4201061980022686084", Err("wrong_length")),
            ("610113200508255X", Err("wrong_length")),
            ("42010619800226860Y", Err("bad_character")),
            ("42010619A002268608", Err("bad_character")),
            ("31010473010873X", Err("bad_character")),
            ("110101********123X", Err("bad_character")),
            ("", Err("empty")),
            ("   ", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn birth_date_bounds() {
        // Born today is fine; tomorrow is not; 1899 is too early.
        let today_id = with_check("11010120261129001");
        let tomorrow_id = with_check("11010120261130001");
        let old_id = with_check("11010118991231001");
        assert!(validate(&today_id, TODAY).is_ok());
        assert_eq!(
            validate(&tomorrow_id, TODAY).unwrap_err().reason,
            Reason::FutureDate
        );
        assert_eq!(
            validate(&old_id, TODAY).unwrap_err().reason,
            Reason::DateTooEarly
        );
    }

    #[test]
    fn check_digit_and_upgrade() {
        assert_eq!(check_digit("11010119840227615"), Some('1'));
        assert_eq!(check_digit("33010619390906887"), Some('X'));
        assert_eq!(check_digit("1101011984022761"), None);
        assert_eq!(check_digit("1101011984022761a"), None);
        assert_eq!(check_digit("１１０１０１１９８４０２２７６"), None);
        assert_eq!(
            upgrade_15_to_18("310104730108739").as_deref(),
            Some("310104197301087396")
        );
        assert_eq!(
            upgrade_15_to_18("510107511217049").as_deref(),
            Some("510107195112170497")
        );
        assert_eq!(upgrade_15_to_18("31010473010873"), None);
        assert_eq!(upgrade_15_to_18("31010473010873é"), None);
    }

    fn with_check(first17: &str) -> String {
        let check = check_digit(first17).unwrap_or_else(|| panic!("17 digits"));
        format!("{first17}{check}")
    }

    /// Property: for generated IDs with a real region and date, the computed check character
    /// validates, and every single-character substitution is caught.
    #[test]
    fn property_check_digit_round_trip_and_single_errors() {
        const PROVINCES: [&str; 35] = [
            "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
            "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
            "63", "64", "65", "71", "81", "82", "83",
        ];
        let mut state: u64 = 42;
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % bound
        };
        let first = Date::new(1900, 1, 1).unwrap().days_since_unix_epoch();
        let span = TODAY.days_since_unix_epoch() - first + 1;
        for _ in 0..10_000 {
            let province = PROVINCES[next(PROVINCES.len() as u64) as usize];
            let birth = Date::from_days_since_unix_epoch(first + next(span as u64) as i64);
            let first17 = format!(
                "{province}{:04}{:04}{:02}{:02}{:03}",
                next(10_000),
                birth.year,
                birth.month,
                birth.day,
                next(1000)
            );
            let id = with_check(&first17);
            let valid = validate(&id, TODAY).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(valid.normalized, id);
            let position = next(18) as usize;
            let original = id.as_bytes()[position];
            for replacement in b"0123456789X" {
                if *replacement == original || (position < 17 && *replacement == b'X') {
                    continue;
                }
                let mut mutated = id.clone().into_bytes();
                mutated[position] = *replacement;
                let mutated = String::from_utf8(mutated).unwrap_or_default();
                assert!(
                    validate(&mutated, TODAY).is_err(),
                    "single change at {position} accepted"
                );
            }
        }
    }
}
