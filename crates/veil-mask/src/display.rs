//! Default masked displays: the 掩码 (mask) operator and the conventions for each kind of personal data.
//!
//! What an ordinary reader sees of a field — `138****5678`, `张*`, `z***@example.com` — is computed here when a
//! value is written, and stored beside its ciphertext, so that listing and searching never need a key
//! (principle 2). The display is reversible only *by policy*: the original is kept encrypted and a grant shows it.
//!
//! Two layers:
//! - [`mask`] is the generic operator driven by a [`MaskSpec`] (keep N leading and M trailing characters, mask the
//!   rest, optionally leave separators in place).
//! - [`default_display`] applies the default convention for a [`PiiKind`] to an already-normalised value. Each
//!   convention is a named constant below so that a masking policy can override it. GB/T 35273-2020 §7.2 asks
//!   for de-identified displays without fixing digit counts; PCI DSS 4.0 req. 3.4.1 caps card displays at the
//!   first 6 and last 4 digits. Each constant says why its counts were chosen.
//!
//! Fail safe: a value that does not have its kind's expected shape is masked *entirely* as [`FULL_MASK`] (a fixed
//! length, so not even the length leaks) — never passed through. As a last guard, a display that would equal its
//! input is replaced by [`FULL_MASK`] too.

use veil_pii::PiiKind;

/// The generic mask operator: keep `keep_leading` and `keep_trailing` characters (Unicode scalars), replace the rest
/// with `mask_char`; when `keep_separators` is true, characters in " -()/@." stay in place and are not counted.
///
/// When the kept characters would cover the whole value, every counted character is masked instead, so the
/// operator never reveals a value by being given too short an input.
///
/// In a policy document it reads `{"op": "mask", "keep_leading": 3, "keep_trailing": 4}`; `mask_char` defaults to
/// `*` and `keep_separators` to false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    #[serde(default)]
    pub keep_leading: usize,
    #[serde(default)]
    pub keep_trailing: usize,
    #[serde(default = "default_mask_char")]
    pub mask_char: char,
    #[serde(default)]
    pub keep_separators: bool,
}

fn default_mask_char() -> char {
    DEFAULT_MASK_CHAR
}

/// The character every default display masks with.
pub const DEFAULT_MASK_CHAR: char = '*';

/// What a value that does not fit its kind's shape becomes. Fixed length: the input's length does not leak.
pub const FULL_MASK: &str = "******";

/// The separators that [`MaskSpec::keep_separators`] leaves in place.
pub const SEPARATORS: &str = " -()/@.";

const fn spec(keep_leading: usize, keep_trailing: usize, keep_separators: bool) -> MaskSpec {
    MaskSpec {
        keep_leading,
        keep_trailing,
        mask_char: DEFAULT_MASK_CHAR,
        keep_separators,
    }
}

/// `cn_mobile`, `13812345678` → `138****5678`. The first 3 digits name the carrier's number block and the last 4
/// are what people quote to confirm a number; the 4 masked digits are the ones that identify the subscriber within
/// the block. This is the display Chinese apps, banks and couriers already use, so customers recognise it.
pub const CN_MOBILE: MaskSpec = spec(3, 4, false);

/// `cn_id` (18 characters), `11010119840227615X` → `110101********615X`. The region code (6) is coarse (a county)
/// and needed to route work; the last 4 (sequence + check) let staff confirm a card in hand. The 8-digit birth
/// date is masked because, with the region, it narrows a person down most.
pub const CN_ID: MaskSpec = spec(6, 4, false);

/// Legacy 15-digit `cn_id` (region 6, `YYMMDD` 6, sequence 3, no check digit): keep the region and the 3-digit
/// sequence, mask the birth date — the same reasoning as [`CN_ID`].
pub const CN_ID_LEGACY: MaskSpec = spec(6, 3, false);

/// `bank_card`, `6222021234567890123` → `622202*********0123`: PCI DSS allows at most the first 6 (the BIN, which
/// names the bank and product) and the last 4; we show exactly that maximum because staff need the bank and the
/// tail to talk about a card.
pub const BANK_CARD: MaskSpec = spec(6, 4, false);

/// `cn_landline`, applied to the subscriber number only: the area code (a city) is kept whole, then
/// `010-12345678` → `010-****5678`, mirroring [`CN_MOBILE`]'s "last 4 to confirm".
pub const CN_LANDLINE_SUBSCRIBER: MaskSpec = spec(0, 4, false);

/// `uscc` (统一社会信用代码, GB 32100), `91330106485086753C` → `91************753C`. The first 2 characters
/// (registration authority + entity category, e.g. `91` enterprise, `92` 个体工商户) tell staff what kind of
/// entity this is without identifying it; the last 4 let them confirm against a business licence. The region and
/// most of the subject code are masked because a 个体工商户's code points at one natural person. A company's
/// code is public (国家企业信用信息公示系统), so a policy may well show it whole; the default does not assume.
pub const USCC: MaskSpec = spec(2, 4, false);

/// `cn_passport`, `E12345678` → `E*****678`, `EA1234567` → `EA****567`: the letter prefix (1–2 letters) only
/// says which passport series it is and is kept whole, whatever `keep_leading` says; the last 3 digits confirm a
/// document in hand while 4–5 digits stay masked.
pub const CN_PASSPORT: MaskSpec = spec(0, 3, false);

/// `hk_macau_permit` (往来港澳通行证 `C12345678` / `CA1234567` / `W12345678`, 港澳居民来往内地通行证
/// `H12345678` / `H1234567801`): the letter prefix (which permit, and Hong Kong or Macau) is kept, then the last
/// 3 characters, as [`CN_PASSPORT`]. For the 11-character form the last 2 are the renewal count, so only one digit
/// of the lifelong number shows.
pub const HK_MACAU_PERMIT: MaskSpec = spec(0, 3, false);

/// `tw_permit` (台湾居民来往大陆通行证 `12345678`, 大陆居民往来台湾通行证 `L12345678`): a letter prefix, when
/// present, is kept, then the last 3 characters, as [`CN_PASSPORT`].
pub const TW_PERMIT: MaskSpec = spec(0, 3, false);

/// `hk_id`, `A123456(7)` → `A*****6(7)`: the letter prefix is kept, then the last 2 characters (the last digit and
/// the check digit, which is derived and carries little information). Only 2 because the number has just 6
/// digits: keeping 3 would leave too few masked. The brackets stay in place.
pub const HK_ID: MaskSpec = spec(0, 2, true);

/// `email`: the local part after its first character becomes exactly this, whatever its length, so that the
/// length of the local part does not leak: `zhang.san@example.com` → `z***@example.com`. The domain is kept: it
/// is usually a mail provider or an employer, needed to judge deliverability, and rarely identifying alone.
pub const EMAIL_LOCAL_MASK: &str = "***";

/// `address`: everything after the administrative prefix (province/city/district) becomes exactly this, so that
/// the length of the street address does not leak.
pub const ADDRESS_REST_MASK: &str = "****";

/// `birth_date`: the year is kept (age matters for service and suitability rules), month and day are masked:
/// `1984-02-27` → `1984-**-**`.
pub const BIRTH_DATE_MASK: &str = "-**-**";

/// The longest person name (in characters) given a name-shaped display; anything longer is fully masked.
const MAX_NAME_CHARS: usize = 64;

/// The longest single administrative level recognised in an address (e.g. `双江拉祜族佤族布朗族傣族自治县`, 15).
const MAX_ADMIN_LEVEL_CHARS: usize = 16;

/// How many administrative levels (province, city, district) an address display may keep.
pub(crate) const MAX_ADMIN_LEVELS: usize = 3;

fn is_separator(character: char) -> bool {
    matches!(character, ' ' | '-' | '(' | ')' | '/' | '@' | '.')
}

/// Applies `spec` to `value`. One allocation, sized for the output; no regex.
pub fn mask(value: &str, spec: &MaskSpec) -> String {
    let counts = |character: &char| !(spec.keep_separators && is_separator(*character));
    let counted = if value.is_ascii() {
        if spec.keep_separators {
            value
                .bytes()
                .filter(|byte| counts(&char::from(*byte)))
                .count()
        } else {
            value.len()
        }
    } else {
        value.chars().filter(counts).count()
    };
    let (keep_leading, keep_trailing) =
        if spec.keep_leading.saturating_add(spec.keep_trailing) >= counted {
            (0, 0)
        } else {
            (spec.keep_leading, spec.keep_trailing)
        };
    let trailing_from = counted - keep_trailing;

    let mut masked = String::with_capacity(value.len() + counted * (spec.mask_char.len_utf8() - 1));
    if value.is_ascii() && !spec.keep_separators {
        // Fast path (mobiles, IDs, cards): byte offsets are character offsets, so copy the kept ends as slices.
        masked.push_str(&value[..keep_leading]);
        masked.extend(std::iter::repeat_n(
            spec.mask_char,
            trailing_from - keep_leading,
        ));
        masked.push_str(&value[trailing_from..]);
        return masked;
    }
    let mut index = 0;
    for character in value.chars() {
        if !counts(&character) {
            masked.push(character);
            continue;
        }
        if index < keep_leading || index >= trailing_from {
            masked.push(character);
        } else {
            masked.push(spec.mask_char);
        }
        index += 1;
    }
    masked
}

/// Default display of an already-normalised value of `kind`. Fail safe: a value that does not fit the kind's
/// expected shape is masked ENTIRELY (returned as [`FULL_MASK`], so not even the length leaks) — never passed
/// through.
pub fn default_display(kind: PiiKind, normalized: &str) -> String {
    let display = match kind {
        PiiKind::CnMobile => display_cn_mobile(normalized),
        PiiKind::CnId => display_cn_id(normalized),
        PiiKind::BankCard => display_bank_card(normalized),
        PiiKind::CnLandline => display_cn_landline(normalized),
        PiiKind::Email => display_email(normalized),
        PiiKind::Uscc => display_uscc(normalized),
        PiiKind::CnPassport => display_letter_prefixed(normalized, &CN_PASSPORT, 1..=2, 7..=8),
        PiiKind::HkMacauPermit => {
            display_letter_prefixed(normalized, &HK_MACAU_PERMIT, 1..=2, 7..=10)
        }
        PiiKind::TwPermit => display_letter_prefixed(normalized, &TW_PERMIT, 0..=1, 8..=10),
        PiiKind::HkId => display_hk_id(normalized),
        PiiKind::PersonName => display_person_name(normalized),
        PiiKind::Address => display_address(normalized),
        PiiKind::BirthDate => display_birth_date(normalized),
    };
    match display {
        // Last guard: a display identical to its input reveals everything, whatever rule produced it.
        Some(display) if display != normalized => display,
        _ => FULL_MASK.to_owned(),
    }
}

fn all_ascii_digits(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit())
}

fn display_cn_mobile(value: &str) -> Option<String> {
    (value.len() == 11 && value.starts_with('1') && all_ascii_digits(value))
        .then(|| mask(value, &CN_MOBILE))
}

fn display_cn_id(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    match bytes.len() {
        // Bytes, not `&value[..17]`: 18 bytes of other scripts need not have a character boundary at 17 (a
        // property test found the panic).
        18 if bytes[..17].iter().all(u8::is_ascii_digit)
            && (bytes[17].is_ascii_digit() || bytes[17] == b'X' || bytes[17] == b'x') =>
        {
            Some(mask(value, &CN_ID))
        }
        15 if all_ascii_digits(value) => Some(mask(value, &CN_ID_LEGACY)),
        _ => None,
    }
}

fn display_bank_card(value: &str) -> Option<String> {
    ((16..=19).contains(&value.len()) && all_ascii_digits(value)).then(|| mask(value, &BANK_CARD))
}

/// Splits a landline into area code and subscriber number: `010-12345678` or `01012345678`. Area codes are
/// `010` and `02x` (3 digits) or `0xxx` (4 digits); subscriber numbers have 7 or 8 digits.
fn display_cn_landline(value: &str) -> Option<String> {
    let (area, subscriber) = match value.split_once('-') {
        Some((area, subscriber)) => (area, subscriber),
        None => {
            if !value.starts_with('0') || !value.is_ascii() || value.len() < 3 {
                return None;
            }
            let area_len = if value.starts_with("01") || value.starts_with("02") {
                3
            } else {
                4
            };
            value.split_at(area_len.min(value.len()))
        }
    };
    let area_ok = (3..=4).contains(&area.len()) && area.starts_with('0') && all_ascii_digits(area);
    let subscriber_ok = (7..=8).contains(&subscriber.len()) && all_ascii_digits(subscriber);
    if !(area_ok && subscriber_ok) {
        return None;
    }
    let mut display = String::with_capacity(area.len() + 1 + subscriber.len());
    display.push_str(area);
    display.push('-');
    display.push_str(&mask(subscriber, &CN_LANDLINE_SUBSCRIBER));
    Some(display)
}

fn display_email(value: &str) -> Option<String> {
    let (local, domain) = value.split_once('@')?;
    let first = local.chars().next()?;
    let local_ok = local.chars().count() <= 64
        && !local.contains(|character: char| character.is_whitespace() || character.is_control());
    let domain_ok = domain.len() <= 253
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|character| character.is_alphanumeric() || character == '-')
        });
    if !(local_ok && domain_ok) || first == '.' {
        return None;
    }
    let mut display =
        String::with_capacity(first.len_utf8() + EMAIL_LOCAL_MASK.len() + 1 + domain.len());
    display.push(first);
    display.push_str(EMAIL_LOCAL_MASK);
    display.push('@');
    display.push_str(domain);
    Some(display)
}

fn display_uscc(value: &str) -> Option<String> {
    // GB 32100 character set: digits and upper-case letters except I, O, S, V, Z.
    let allowed = |byte: u8| {
        byte.is_ascii_digit() || (byte.is_ascii_uppercase() && !b"IOSVZ".contains(&byte))
    };
    (value.len() == 18 && value.bytes().all(allowed)).then(|| mask(value, &USCC))
}

/// Letter prefix (`letters` upper-case ASCII letters) followed by `digits` ASCII digits; the prefix is kept whole.
fn display_letter_prefixed(
    value: &str,
    spec: &MaskSpec,
    letters: std::ops::RangeInclusive<usize>,
    digits: std::ops::RangeInclusive<usize>,
) -> Option<String> {
    let prefix_len = value.bytes().take_while(u8::is_ascii_uppercase).count();
    let rest = &value[prefix_len..];
    (letters.contains(&prefix_len) && digits.contains(&rest.len()) && all_ascii_digits(rest)).then(
        || {
            mask(
                value,
                &MaskSpec {
                    keep_leading: prefix_len,
                    ..*spec
                },
            )
        },
    )
}

/// `A123456(7)`, `AB123456(7)` or the same without brackets; the check character is a digit or `A`.
fn display_hk_id(value: &str) -> Option<String> {
    let prefix_len = value.bytes().take_while(u8::is_ascii_uppercase).count();
    let rest = &value[prefix_len..];
    let (digits, check) = if let Some(inner) = rest.strip_suffix(')') {
        let (digits, check) = inner.split_once('(')?;
        (digits, check)
    } else if rest.len() == 7 && rest.is_ascii() {
        // ASCII only: byte 6 must be a character boundary (a property test found a panic on 7 bytes such as `12345é`).
        rest.split_at(6)
    } else {
        return None;
    };
    let check_ok = check.len() == 1 && (all_ascii_digits(check) || check == "A");
    ((1..=2).contains(&prefix_len) && digits.len() == 6 && all_ascii_digits(digits) && check_ok)
        .then(|| {
            mask(
                value,
                &MaskSpec {
                    keep_leading: prefix_len,
                    ..HK_ID
                },
            )
        })
}

/// Two-character surnames: the display keeps both characters of these (`欧阳娜娜` → `欧阳**`).
pub const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "令狐", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "百里", "呼延", "赫连", "澹台", "公冶",
    "太史", "申屠", "闻人", "万俟", "钟离", "宗政", "濮阳", "淳于", "单于", "仲孙", "东郭", "拓跋",
    "司空", "司寇", "第五", "左丘", "子车", "谷梁", "梁丘", "羊舌", "微生", "公西", "公良", "乐正",
    "漆雕", "壤驷", "段干", "东门", "巫马", "公羊", "颛孙", "亓官", "鲜于", "闾丘", "完颜", "耶律",
    "即墨", "哥舒", "纳兰",
];

fn is_han(character: char) -> bool {
    matches!(character,
        '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{F900}'..='\u{FAFF}' | '\u{20000}'..='\u{2EBEF}')
}

/// Separators inside transliterated names of ethnic minorities (`买买提·艾力`); kept in place.
fn is_name_dot(character: char) -> bool {
    matches!(character, '·' | '•' | '・' | '．')
}

/// Name keeps its surname: `张三` → `张*`, `欧阳娜娜` → `欧阳**`, `张` → `*`; Latin-script names keep the first
/// letter of each word: `John Smith` → `J*** S****`. The surname is shared by millions and is how staff address
/// a customer; the given name is what identifies.
fn display_person_name(value: &str) -> Option<String> {
    let char_count = value.chars().count();
    if char_count == 0 || char_count > MAX_NAME_CHARS {
        return None;
    }
    let first = value.chars().next()?;
    if is_han(first) {
        if !value
            .chars()
            .all(|character| is_han(character) || is_name_dot(character))
        {
            return None;
        }
        let surname_chars = if char_count >= 3
            && COMPOUND_SURNAMES
                .iter()
                .any(|surname| value.starts_with(surname))
        {
            2
        } else {
            1
        };
        let mut display = String::with_capacity(value.len());
        for (index, character) in value.chars().enumerate() {
            if (index < surname_chars && char_count > 1) || is_name_dot(character) {
                display.push(character);
            } else {
                display.push(DEFAULT_MASK_CHAR);
            }
        }
        return Some(display);
    }
    display_latin_name(value)
}

fn display_latin_name(value: &str) -> Option<String> {
    let word_break = |character: char| matches!(character, ' ' | '-' | '.');
    let allowed = |character: char| {
        (character.is_alphabetic() && !is_han(character))
            || word_break(character)
            || character == '\''
    };
    if !value.chars().all(allowed) || !value.chars().any(char::is_alphabetic) {
        return None;
    }
    let mut display = String::with_capacity(value.len());
    let mut at_word_start = true;
    for character in value.chars() {
        if word_break(character) {
            display.push(character);
            at_word_start = true;
        } else if at_word_start && character.is_alphabetic() {
            display.push(character);
            at_word_start = false;
        } else {
            display.push(DEFAULT_MASK_CHAR);
        }
    }
    Some(display)
}

/// Characters that end an administrative level: 省, 市, 区 (incl. 自治区, 特别行政区), 县, 州 (incl. 自治州),
/// 盟, 旗.
fn is_admin_marker(character: char) -> bool {
    matches!(character, '省' | '市' | '区' | '县' | '州' | '盟' | '旗')
}

/// Characters that betray a street, a building or a township rather than an administrative division. A candidate
/// level containing one (other than as its first character: 路桥区, 道里区 and 小店区 are real districts) ends the
/// prefix, so doubtful text is masked rather than shown. 楼, 里 and 坊 are not listed because of 鼓楼区, 凯里市 and
/// 潍坊市.
fn is_below_district(character: char) -> bool {
    matches!(
        character,
        '路' | '街'
            | '道'
            | '巷'
            | '弄'
            | '胡'
            | '号'
            | '栋'
            | '幢'
            | '室'
            | '层'
            | '村'
            | '组'
            | '院'
            | '园'
            | '苑'
            | '庭'
            | '厦'
            | '镇'
            | '乡'
            | '小'
            | '社'
    )
}

/// The administrative prefix of an address: up to [`MAX_ADMIN_LEVELS`] levels, each a run of Han characters
/// ending in an [`is_admin_marker`] character (consecutive markers are one level: `杭州市` not `杭州` + `市`).
/// Returns its length in bytes, 0 when no level is recognised.
fn admin_prefix_len(value: &str) -> usize {
    let (ends, count) = admin_level_ends(value);
    if count == 0 {
        0
    } else {
        ends[count - 1]
    }
}

/// The byte offsets where each recognised administrative level of an address ends (province, city, district),
/// and how many were recognised: `北京市朝阳区建国路` → `([9, 18, _], 2)`. Shared by the display and by the
/// `generalize` operator (address → province or city).
pub(crate) fn admin_level_ends(value: &str) -> ([usize; MAX_ADMIN_LEVELS], usize) {
    let characters: Vec<(usize, char)> = value
        .char_indices()
        .take(MAX_ADMIN_LEVELS * (MAX_ADMIN_LEVEL_CHARS + 1))
        .collect();
    let mut ends = [0usize; MAX_ADMIN_LEVELS];
    let mut count = 0;
    let mut position = 0;
    for _ in 0..MAX_ADMIN_LEVELS {
        // A level needs at least one character before its marker (`市中区`, not `市`).
        let window_end = (position + MAX_ADMIN_LEVEL_CHARS).min(characters.len());
        let Some(marker) =
            (position + 1..window_end).find(|&index| is_admin_marker(characters[index].1))
        else {
            break;
        };
        let level = &characters[position..=marker];
        let plausible = level.iter().all(|&(_, character)| is_han(character))
            && !level[1..]
                .iter()
                .any(|&(_, character)| is_below_district(character));
        if !plausible {
            break;
        }
        let mut end = marker + 1;
        while end < characters.len() && is_admin_marker(characters[end].1) {
            end += 1;
        }
        position = end;
        ends[count] = characters
            .get(end)
            .map_or(value.len(), |&(byte_index, _)| byte_index);
        count += 1;
    }
    (ends, count)
}

/// Keeps the province/city/district prefix and masks the rest as [`ADDRESS_REST_MASK`]:
/// `北京市朝阳区建国路88号` → `北京市朝阳区****`. A province or city narrows a person down to millions; the
/// street and number to a household.
fn display_address(value: &str) -> Option<String> {
    let prefix_len = admin_prefix_len(value);
    if prefix_len == 0 {
        return None;
    }
    let mut display = String::with_capacity(prefix_len + ADDRESS_REST_MASK.len());
    display.push_str(&value[..prefix_len]);
    display.push_str(ADDRESS_REST_MASK);
    Some(display)
}

fn display_birth_date(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && all_ascii_digits(&value[..4])
        && all_ascii_digits(&value[5..7])
        && all_ascii_digits(&value[8..]);
    if !shape_ok {
        return None;
    }
    let year: i32 = value[..4].parse().ok()?;
    let month: u32 = value[5..7].parse().ok()?;
    let day: u32 = value[8..].parse().ok()?;
    veil_pii::Date::new(year, month, day)?;
    let mut display = String::with_capacity(10);
    display.push_str(&value[..4]);
    display.push_str(BIRTH_DATE_MASK);
    Some(display)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: PiiKind, input: &str, expected: &str) {
        let actual = default_display(kind, input);
        assert_eq!(actual, expected, "default_display({kind:?}, {input:?})");
        if !input.is_empty() {
            assert_ne!(actual, input, "{kind:?} display leaked its input");
        }
    }

    fn check_all(kind: PiiKind, cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            check(kind, input, expected);
        }
    }

    #[test]
    fn mask_operator() {
        let cases: &[(&str, MaskSpec, &str)] = &[
            ("13812345678", CN_MOBILE, "138****5678"),
            ("abc", spec(1, 1, false), "a*c"),
            ("abc", spec(2, 1, false), "***"),
            ("abc", spec(5, 0, false), "***"),
            ("", spec(1, 1, false), ""),
            ("张三丰", spec(1, 0, false), "张**"),
            ("a-b-c-d", spec(1, 1, true), "a-*-*-d"),
            ("a-b-c-d", spec(1, 1, false), "a*****d"),
            ("(12) 34/56", spec(1, 1, true), "(1*) **/*6"),
            (
                "12345",
                MaskSpec {
                    mask_char: '•',
                    ..spec(1, 1, false)
                },
                "1•••5",
            ),
            ("😀😀😀😀", spec(1, 1, false), "😀**😀"),
        ];
        for (input, mask_spec, expected) in cases {
            assert_eq!(
                mask(input, mask_spec),
                *expected,
                "mask({input:?}, {mask_spec:?})"
            );
        }
    }

    #[test]
    fn mobiles() {
        check_all(
            PiiKind::CnMobile,
            &[
                ("13812345678", "138****5678"),
                ("19912345678", "199****5678"),
                ("1381234567", FULL_MASK),
                ("138123456789", FULL_MASK),
                ("2381234567x", FULL_MASK),
                ("138 1234 5678", FULL_MASK),
                ("１３８１２３４５６７８", FULL_MASK),
            ],
        );
    }

    #[test]
    fn resident_ids() {
        check_all(
            PiiKind::CnId,
            &[
                ("11010119840227615X", "110101********615X"),
                ("110101198402276151", "110101********6151"),
                ("110101840227615", "110101******615"),
                ("11010119840227615", FULL_MASK),
                ("1101011984022761XX", FULL_MASK),
                ("11010119840227615Y", FULL_MASK),
                ("1234567890123456\u{e9}", FULL_MASK),
                ("\u{11217}\u{201b}$\u{fb3c}\u{113c2}\u{3193}", FULL_MASK),
            ],
        );
    }

    #[test]
    fn bank_cards() {
        check_all(
            PiiKind::BankCard,
            &[
                ("6222021234567890123", "622202*********0123"),
                ("6225881234567890", "622588******7890"),
                ("6222-0212-3456-7890", FULL_MASK),
                ("62220212345678901234", FULL_MASK),
                ("12345", FULL_MASK),
                ("622202123456", FULL_MASK),
            ],
        );
    }

    #[test]
    fn landlines() {
        check_all(
            PiiKind::CnLandline,
            &[
                ("010-12345678", "010-****5678"),
                ("0755-39330566", "0755-****0566"),
                ("0755-2345678", "0755-***5678"),
                ("02081783054", "020-****3054"),
                ("053236366404", "0532-****6404"),
                ("010-123", FULL_MASK),
                ("10-12345678", FULL_MASK),
                ("010-1234567a", FULL_MASK),
            ],
        );
    }

    #[test]
    fn emails() {
        check_all(
            PiiKind::Email,
            &[
                ("zhang.san@example.com", "z***@example.com"),
                ("a@example.cn", "a***@example.cn"),
                ("1234567@qq.com", "1***@qq.com"),
                ("张三@例子.中国", "张***@例子.中国"),
                ("no-at-sign.example.com", FULL_MASK),
                ("@example.com", FULL_MASK),
                ("zhang@localhost", FULL_MASK),
                ("zhang@exa mple.com", FULL_MASK),
                ("zhang@@example.com", FULL_MASK),
                (".zhang@example.com", FULL_MASK),
                ("_zhang@example.com", "_***@example.com"),
            ],
        );
    }

    #[test]
    fn person_names() {
        check_all(
            PiiKind::PersonName,
            &[
                ("张三", "张*"),
                ("张三丰", "张**"),
                ("欧阳娜娜", "欧阳**"),
                ("司马懿", "司马*"),
                ("诸葛亮", "诸葛*"),
                ("欧阳", "欧*"),
                ("张", "*"),
                ("买买提·艾力", "买**·**"),
                ("John Smith", "J*** S****"),
                ("Mary-Jane O'Neil", "M***-J*** O*****"),
                ("J", FULL_MASK),
                ("张San", FULL_MASK),
                ("Zhang3", FULL_MASK),
            ],
        );
    }

    #[test]
    fn addresses() {
        check_all(
            PiiKind::Address,
            &[
                (
                    "北京市朝阳区建国路88号SOHO现代城5号楼1203",
                    "北京市朝阳区****",
                ),
                ("浙江省杭州市西湖区文三路100号", "浙江省杭州市西湖区****"),
                ("广东省深圳市南山区科技园", "广东省深圳市南山区****"),
                ("上海市浦东新区世纪大道100号", "上海市浦东新区****"),
                ("广州市天河区体育西路1号", "广州市天河区****"),
                ("山东省青岛市市南区香港中路10号", "山东省青岛市市南区****"),
                (
                    "新疆维吾尔自治区乌鲁木齐市天山区解放南路",
                    "新疆维吾尔自治区乌鲁木齐市天山区****",
                ),
                (
                    "内蒙古自治区锡林郭勒盟正蓝旗上都镇",
                    "内蒙古自治区锡林郭勒盟正蓝旗****",
                ),
                (
                    "贵州省黔东南苗族侗族自治州凯里市北京西路",
                    "贵州省黔东南苗族侗族自治州凯里市****",
                ),
                ("浙江省台州市路桥区路桥街道", "浙江省台州市路桥区****"),
                ("江苏省南京市鼓楼区中山路1号", "江苏省南京市鼓楼区****"),
                ("山东省潍坊市奎文区东风东街", "山东省潍坊市奎文区****"),
                (
                    "四川省成都市武侯区人民南路四段1号",
                    "四川省成都市武侯区****",
                ),
                ("北京市朝阳区建国路东区3号", "北京市朝阳区****"),
                ("北京市朝阳区建国路88号院3区", "北京市朝阳区****"),
                ("北京市朝阳区", "北京市朝阳区****"),
                ("上海市浦东新区张江镇科苑小区", "上海市浦东新区****"),
                ("建国路88号", FULL_MASK),
                ("88号北京市", FULL_MASK),
                ("Room 1203, 88 Jianguo Road, Beijing", FULL_MASK),
                ("市", FULL_MASK),
            ],
        );
    }

    #[test]
    fn birth_dates() {
        check_all(
            PiiKind::BirthDate,
            &[
                ("1984-02-27", "1984-**-**"),
                ("2000-02-29", "2000-**-**"),
                ("1984-02-30", FULL_MASK),
                ("1984-13-01", FULL_MASK),
                ("19840227", FULL_MASK),
                ("1984/02/27", FULL_MASK),
            ],
        );
    }

    #[test]
    fn organisation_and_travel_documents() {
        check_all(
            PiiKind::Uscc,
            &[
                ("91330106485086753C", "91************753C"),
                ("N1310104MARDWP4140", "N1************4140"),
                ("91330106485086753I", FULL_MASK),
                ("9133010648508675", FULL_MASK),
            ],
        );
        check_all(
            PiiKind::CnPassport,
            &[
                ("E12345678", "E*****678"),
                ("EA1234567", "EA****567"),
                ("E1234", FULL_MASK),
                ("EAB123456", FULL_MASK),
            ],
        );
        check_all(
            PiiKind::HkMacauPermit,
            &[
                ("C12345678", "C*****678"),
                ("CA1234567", "CA****567"),
                ("W12345678", "W*****678"),
                ("H1384072201", "H*******201"),
                ("M94489834", "M*****834"),
                ("12345678", FULL_MASK),
            ],
        );
        check_all(
            PiiKind::TwPermit,
            &[
                ("12345678", "*****678"),
                ("L12345678", "L*****678"),
                ("1234", FULL_MASK),
            ],
        );
        check_all(
            PiiKind::HkId,
            &[
                ("A123456(7)", "A*****6(7)"),
                ("AB123456(A)", "AB*****6(A)"),
                ("A1234567", "A*****67"),
                ("XA1234560", "XA*****60"),
                ("A123456A", "A*****6A"),
                ("A123456(B)", FULL_MASK),
                ("123456(7)", FULL_MASK),
                (" \u{a01}\u{fe76}", FULL_MASK),
                ("A12345\u{e9}", FULL_MASK),
            ],
        );
    }

    /// Inputs that fit no kind: every kind must mask them entirely, without panicking.
    #[test]
    fn fail_safe_for_every_kind() {
        let long = "8".repeat(10_000);
        let long_han = "张".repeat(10_000);
        let hostile = [
            "",
            " ",
            "😀",
            "😀😀😀😀😀😀😀😀😀😀😀",
            "\u{0}",
            "\u{202E}13812345678",
            "-----",
            "()",
            "@",
            ".",
            long.as_str(),
            long_han.as_str(),
            "１３８１２３４５６７８",
        ];
        for kind in PiiKind::ALL {
            for input in hostile {
                check(kind, input, FULL_MASK);
            }
        }
    }

    /// No kind may return a realistic value of another kind unchanged.
    #[test]
    fn never_passes_other_kinds_through() {
        let values = [
            "13812345678",
            "11010119840227615X",
            "6222021234567890123",
            "zhang.san@example.com",
            "张三",
            "北京市朝阳区建国路88号",
            "1984-02-27",
            "010-12345678",
            "91330106485086753C",
            "E12345678",
            "A123456(7)",
            "John Smith",
        ];
        for kind in PiiKind::ALL {
            for value in values {
                assert_ne!(
                    default_display(kind, value),
                    value,
                    "{kind:?} passed {value:?} through"
                );
            }
        }
    }
}
