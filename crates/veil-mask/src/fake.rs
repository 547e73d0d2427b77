//! Realistic synthetic values: the generators behind the `replace_fake` operator (替换) and the demo data.
//!
//! Every value is invented but *well-formed*: names from common surnames and given-name characters, mobiles with
//! allocated prefixes, resident ID numbers with real county codes, consistent birth dates and sex digits and a
//! correct check character, bank cards on real BINs with a Luhn digit, e-mail addresses on the reserved
//! `example.*` domains (RFC 2606). So validation, masking, blind indexes and scanning behave on them as on
//! production data, without any real person in them.
//!
//! The functions are pure: all randomness comes from the `Rng` passed in, so a seeded generator gives a
//! reproducible stream (with this `rand` version: `StdRng` is stable only within a `rand` release). A fake is not
//! derived from the value it replaces, so it says nothing about it; the operator that seeds the generator from a
//! keyed hash of the value (same input, same fake) is in [`crate::operator`].

use rand::Rng;
use veil_pii::{Date, Sex};

/// Surnames with weights roughly proportional to their share of the population (per 10,000), after the
/// 2020 census ranking; a few compound surnames are included so that masking of `欧阳**` is exercised.
pub const SURNAMES: &[(&str, u32)] = &[
    ("王", 710),
    ("李", 700),
    ("张", 670),
    ("刘", 540),
    ("陈", 450),
    ("杨", 310),
    ("黄", 220),
    ("赵", 210),
    ("吴", 200),
    ("周", 190),
    ("徐", 130),
    ("孙", 120),
    ("马", 110),
    ("朱", 110),
    ("胡", 100),
    ("郭", 97),
    ("何", 93),
    ("林", 87),
    ("高", 86),
    ("罗", 85),
    ("郑", 80),
    ("梁", 73),
    ("谢", 65),
    ("宋", 61),
    ("唐", 60),
    ("许", 60),
    ("韩", 58),
    ("冯", 57),
    ("邓", 56),
    ("曹", 55),
    ("彭", 50),
    ("曾", 50),
    ("肖", 49),
    ("田", 47),
    ("董", 44),
    ("袁", 43),
    ("潘", 42),
    ("于", 41),
    ("蒋", 40),
    ("蔡", 39),
    ("余", 38),
    ("杜", 37),
    ("叶", 36),
    ("程", 35),
    ("苏", 33),
    ("魏", 32),
    ("吕", 31),
    ("丁", 30),
    ("任", 30),
    ("沈", 29),
    ("姚", 28),
    ("卢", 27),
    ("姜", 26),
    ("崔", 25),
    ("钟", 25),
    ("谭", 24),
    ("陆", 23),
    ("汪", 22),
    ("范", 21),
    ("金", 20),
    ("石", 20),
    ("廖", 20),
    ("贾", 19),
    ("夏", 19),
    ("韦", 18),
    ("方", 17),
    ("白", 16),
    ("邹", 16),
    ("孟", 15),
    ("熊", 15),
    ("秦", 15),
    ("邱", 14),
    ("江", 14),
    ("尹", 14),
    ("薛", 13),
    ("段", 13),
    ("雷", 12),
    ("侯", 12),
    ("龙", 12),
    ("史", 12),
    ("欧阳", 5),
    ("司马", 2),
    ("诸葛", 1),
    ("上官", 1),
];

pub const MALE_GIVEN: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "旭", "宁", "龙", "林", "阳", "建", "国", "峰",
    "亮", "成", "志", "文", "博", "然", "轩", "睿", "泽", "晨", "子", "天", "嘉", "思", "家", "铭",
    "昊", "宏",
];

pub const FEMALE_GIVEN: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "婷", "雪", "慧", "莹", "琳", "颖",
    "倩", "洁", "佳", "琪", "欣", "怡", "悦", "萱", "涵", "梦", "雨", "诗", "晓", "秀", "英", "兰",
    "红", "梅", "月", "萍", "丹", "蕾", "薇", "桐", "彤", "瑶", "妍", "琴", "露", "晶", "璐", "思",
    "嘉", "子",
];

/// A real county-level division: its GB/T 2260 code and names. The ID number's region code and the address
/// always come from the same row.
#[derive(Debug, PartialEq, Eq)]
pub struct District {
    /// The six-digit GB/T 2260 code (`"110105"`), the first six digits of a resident ID number issued there.
    pub code: &'static str,
    /// The province-level division (`"北京市"`).
    pub province: &'static str,
    /// Empty for the municipalities, whose province is the city.
    pub city: &'static str,
    /// The county-level division (`"朝阳区"`).
    pub district: &'static str,
}

const fn division(
    code: &'static str,
    province: &'static str,
    city: &'static str,
    district: &'static str,
) -> District {
    District {
        code,
        province,
        city,
        district,
    }
}

pub const DISTRICTS: &[District] = &[
    division("110101", "北京市", "", "东城区"),
    division("110102", "北京市", "", "西城区"),
    division("110105", "北京市", "", "朝阳区"),
    division("110108", "北京市", "", "海淀区"),
    division("120101", "天津市", "", "和平区"),
    division("120104", "天津市", "", "南开区"),
    division("310101", "上海市", "", "黄浦区"),
    division("310104", "上海市", "", "徐汇区"),
    division("310112", "上海市", "", "闵行区"),
    division("310115", "上海市", "", "浦东新区"),
    division("500103", "重庆市", "", "渝中区"),
    division("500106", "重庆市", "", "沙坪坝区"),
    division("440104", "广东省", "广州市", "越秀区"),
    division("440106", "广东省", "广州市", "天河区"),
    division("440304", "广东省", "深圳市", "福田区"),
    division("440305", "广东省", "深圳市", "南山区"),
    division("330106", "浙江省", "杭州市", "西湖区"),
    division("330108", "浙江省", "杭州市", "滨江区"),
    division("320102", "江苏省", "南京市", "玄武区"),
    division("320106", "江苏省", "南京市", "鼓楼区"),
    division("320508", "江苏省", "苏州市", "姑苏区"),
    division("510104", "四川省", "成都市", "锦江区"),
    division("510107", "四川省", "成都市", "武侯区"),
    division("420106", "湖北省", "武汉市", "武昌区"),
    division("420111", "湖北省", "武汉市", "洪山区"),
    division("610113", "陕西省", "西安市", "雁塔区"),
    division("370102", "山东省", "济南市", "历下区"),
    division("370202", "山东省", "青岛市", "市南区"),
    division("350203", "福建省", "厦门市", "思明区"),
    division("430104", "湖南省", "长沙市", "岳麓区"),
    division("410105", "河南省", "郑州市", "金水区"),
    division("210102", "辽宁省", "沈阳市", "和平区"),
    division("230103", "黑龙江省", "哈尔滨市", "南岗区"),
    division("530102", "云南省", "昆明市", "五华区"),
    division("340104", "安徽省", "合肥市", "蜀山区"),
];

pub const ROADS: &[&str] = &[
    "人民", "解放", "中山", "建设", "和平", "新华", "文化", "胜利", "长江", "黄河", "青年", "光明",
    "友谊", "学府", "科技", "幸福", "东风", "迎宾", "滨江", "花园",
];

/// Mobile prefixes of the 13x/15x/17x/18x/19x blocks, every one allocated (a test checks each against
/// `veil_pii::cn_mobile::is_allocated_prefix`), so a generated number never fails validation.
pub const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "173", "175", "176", "177", "178", "180", "181",
    "182", "183", "184", "185", "186", "187", "188", "189", "191", "193", "195", "198", "199",
];

/// Issuer identification numbers of Chinese banks' debit cards, with the card length they are issued in.
pub const BANK_BINS: &[(&str, usize)] = &[
    ("622202", 19), // ICBC 牡丹灵通卡
    ("621226", 19), // ICBC
    ("621700", 19), // CCB 龙卡储蓄卡
    ("622848", 19), // ABC 金穗借记卡
    ("621661", 19), // BOC 借记卡
    ("622588", 16), // CMB 一卡通
    ("621483", 16), // CMB
    ("622262", 19), // BOCOM 太平洋借记卡
];

/// E-mail domains with weights: mostly the reserved example domains, some numeric QQ-style and 163 addresses
/// because a CRM sees many of them.
pub const EMAIL_DOMAINS: &[(&str, u32)] = &[
    ("example.com", 45),
    ("example.cn", 20),
    ("example.org", 10),
    ("qq.com", 15),
    ("163.com", 10),
];

pub const PINYIN_SYLLABLES: &[&str] = &[
    "zhang", "wang", "li", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma",
    "zhu", "hu", "guo", "lin", "wei", "fang", "na", "min", "jing", "hua", "ming", "jun", "lei",
    "tao", "yu", "hao", "xin", "yan", "ting", "qing", "xiao", "long", "feng",
];

/// The earliest and latest birth years drawn: adults and older teenagers, as a CRM's customers are.
pub const BIRTH_YEARS: std::ops::RangeInclusive<i32> = 1950..=2006;

fn pick<R: Rng + ?Sized>(rng: &mut R, items: &[&'static str]) -> &'static str {
    items[rng.gen_range(0..items.len())]
}

fn pick_weighted<'a, R: Rng + ?Sized>(rng: &mut R, items: &'a [(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|(_, weight)| weight).sum();
    let mut ticket = rng.gen_range(0..total);
    for (item, weight) in items {
        if ticket < *weight {
            return item;
        }
        ticket -= weight;
    }
    items[items.len() - 1].0
}

fn push_digits<R: Rng + ?Sized>(rng: &mut R, count: usize, into: &mut String) {
    for _ in 0..count {
        into.push(char::from(b'0' + rng.gen_range(0..10u8)));
    }
}

/// Male or female with equal odds.
pub fn sex<R: Rng + ?Sized>(rng: &mut R) -> Sex {
    if rng.gen_bool(0.5) {
        Sex::Male
    } else {
        Sex::Female
    }
}

/// A Chinese name: a surname drawn by population share, then one or (65 %) two given-name characters typical
/// of `sex`.
pub fn person_name<R: Rng + ?Sized>(rng: &mut R, sex: Sex) -> String {
    let given = match sex {
        Sex::Male => MALE_GIVEN,
        Sex::Female => FEMALE_GIVEN,
    };
    let mut name = String::from(pick_weighted(rng, SURNAMES));
    name.push_str(pick(rng, given));
    if rng.gen_bool(0.65) {
        name.push_str(pick(rng, given));
    }
    name
}

/// A county-level division from [`DISTRICTS`].
pub fn district<R: Rng + ?Sized>(rng: &mut R) -> &'static District {
    &DISTRICTS[rng.gen_range(0..DISTRICTS.len())]
}

/// A birth date in [`BIRTH_YEARS`].
pub fn birth_date<R: Rng + ?Sized>(rng: &mut R) -> Date {
    let year = rng.gen_range(BIRTH_YEARS);
    let month = rng.gen_range(1..=12);
    let day = rng.gen_range(1..=veil_pii::date::days_in_month(year, month));
    Date::new(year, month, day).expect("day drawn within its month")
}

/// A resident ID number issued in `district` to someone of `sex`, with its birth date: region code, a birth date
/// in [`BIRTH_YEARS`], a sequence number whose last digit carries the sex (odd for men), and the GB 11643 check
/// character.
pub fn cn_id<R: Rng + ?Sized>(rng: &mut R, district: &District, sex: Sex) -> (Date, String) {
    let birth_date = birth_date(rng);
    let mut id_number = String::with_capacity(18);
    id_number.push_str(district.code);
    id_number.push_str(&format!(
        "{:04}{:02}{:02}",
        birth_date.year, birth_date.month, birth_date.day
    ));
    push_digits(rng, 2, &mut id_number);
    let parity = match sex {
        Sex::Male => 1,
        Sex::Female => 0,
    };
    id_number.push(char::from(b'0' + 2 * rng.gen_range(0..5u8) + parity));
    let check = veil_pii::cn_id::check_digit(&id_number).expect("17 ASCII digits");
    id_number.push(check);
    (birth_date, id_number)
}

/// An 11-digit mobile number on an allocated prefix from [`MOBILE_PREFIXES`].
pub fn cn_mobile<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut phone = String::with_capacity(11);
    phone.push_str(pick(rng, MOBILE_PREFIXES));
    push_digits(rng, 8, &mut phone);
    phone
}

/// A pinyin-style local part: `zhang.wei`, `liuming85`, `wang_li123`.
fn pinyin_local<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut local = String::from(pick(rng, PINYIN_SYLLABLES));
    match rng.gen_range(0..3) {
        0 => {
            local.push('.');
            local.push_str(pick(rng, PINYIN_SYLLABLES));
        }
        1 => {
            local.push_str(pick(rng, PINYIN_SYLLABLES));
            let year = rng.gen_range(60..=99);
            local.push_str(&year.to_string());
        }
        _ => {
            local.push('_');
            local.push_str(pick(rng, PINYIN_SYLLABLES));
            let number = rng.gen_range(1..1000);
            local.push_str(&number.to_string());
        }
    }
    local
}

/// An e-mail address on a domain drawn from [`EMAIL_DOMAINS`] (mostly `example.*`, some QQ-style numeric and 163
/// addresses, as a CRM sees them). For values that must never reach a real mailbox use [`example_email`].
pub fn email<R: Rng + ?Sized>(rng: &mut R) -> String {
    let domain = pick_weighted(rng, EMAIL_DOMAINS);
    let local = if domain == "qq.com" {
        // QQ numbers: 5–10 digits, never starting with 0.
        let mut local = String::new();
        local.push(char::from(b'1' + rng.gen_range(0..9u8)));
        let more = rng.gen_range(5..=9);
        push_digits(rng, more, &mut local);
        local
    } else {
        pinyin_local(rng)
    };
    format!("{local}@{domain}")
}

/// An e-mail address on `example.com`, which RFC 2606 reserves: mail to it reaches nobody.
pub fn example_email<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!("{}@example.com", pinyin_local(rng))
}

/// A street address in `district`: province, city and district names, then road, number, building, floor and room.
pub fn address<R: Rng + ?Sized>(rng: &mut R, district: &District) -> String {
    let road = pick(rng, ROADS);
    let number = rng.gen_range(1..=999);
    let building = rng.gen_range(1..=30);
    let floor = rng.gen_range(1..=33);
    let room = rng.gen_range(1..=6);
    format!(
        "{}{}{}{road}路{number}号{building}栋{floor}{room:02}室",
        district.province, district.city, district.district
    )
}

/// A debit card number on a real BIN from [`BANK_BINS`], of the length that BIN is issued in, with a Luhn digit.
pub fn bank_card<R: Rng + ?Sized>(rng: &mut R) -> String {
    let (bin, length) = BANK_BINS[rng.gen_range(0..BANK_BINS.len())];
    let mut card = String::with_capacity(length);
    card.push_str(bin);
    push_digits(rng, length - bin.len() - 1, &mut card);
    let check = veil_pii::bank_card::luhn_check_digit(&card).expect("ASCII digits");
    card.push(char::from(b'0' + check));
    card
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use veil_pii::{validate, Details, PiiKind};

    fn today() -> Date {
        Date::new(2026, 11, 29).expect("a real date")
    }

    fn check_valid(kind: PiiKind, value: &str) {
        if let Err(invalid) = validate(kind, value, today()) {
            panic!("{kind} {value:?} rejected: {invalid}");
        }
    }

    #[test]
    fn every_mobile_prefix_is_allocated() {
        for prefix in MOBILE_PREFIXES {
            assert!(veil_pii::cn_mobile::is_allocated_prefix(prefix), "{prefix}");
        }
    }

    #[test]
    fn district_codes_are_distinct_and_well_formed() {
        let mut codes: Vec<&str> = DISTRICTS.iter().map(|district| district.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), DISTRICTS.len());
        for district in DISTRICTS {
            assert_eq!(district.code.len(), 6);
            assert_eq!(
                veil_pii::cn_id::province_name(&district.code[..2]),
                Some(district.province),
                "{}",
                district.code
            );
        }
    }

    #[test]
    fn every_generated_value_validates() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..1_000 {
            let sex = sex(&mut rng);
            let home = district(&mut rng);
            check_valid(PiiKind::PersonName, &person_name(&mut rng, sex));
            let (born, id_number) = cn_id(&mut rng, home, sex);
            check_valid(PiiKind::CnId, &id_number);
            let Ok(valid) = validate(PiiKind::CnId, &id_number, today()) else {
                unreachable!()
            };
            let Details::CnId(info) = valid.details else {
                panic!("cn_id details missing")
            };
            assert_eq!((info.birth_date, info.sex), (born, sex));
            check_valid(PiiKind::CnMobile, &cn_mobile(&mut rng));
            check_valid(PiiKind::Email, &email(&mut rng));
            let example = example_email(&mut rng);
            check_valid(PiiKind::Email, &example);
            assert!(example.ends_with("@example.com"));
            check_valid(PiiKind::Address, &address(&mut rng, home));
            check_valid(PiiKind::BankCard, &bank_card(&mut rng));
            check_valid(PiiKind::BirthDate, &birth_date(&mut rng).to_string());
        }
    }
}
