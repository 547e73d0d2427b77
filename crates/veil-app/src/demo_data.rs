//! Synthetic demo customers for `veil demo` and for benchmarks.
//!
//! Every customer is invented: names are drawn from common surnames and given-name characters, numbers are
//! random but *well-formed* (real county codes, consistent birth dates and sex digits, correct check digits,
//! allocated mobile prefixes, real bank BINs with a Luhn digit), so that validation, masking, blind indexes and
//! scanning behave as they would on production data, without any real person in it. E-mail addresses use the
//! reserved `example.*` domains (RFC 2606) for most customers.
//!
//! The stream is deterministic: the same seed gives the same customers (with this `rand` version: `StdRng` is
//! only stable within a `rand` release), so demos and benchmark inputs are reproducible.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use veil_pii::{Date, Sex};

/// One synthetic customer. All fields are plaintext: this is input for the write path, never something to log.
#[derive(Debug, Clone)]
pub struct DemoCustomer {
    pub name: String,
    pub gender: Sex,
    pub birth_date: Date,
    pub phone: String,
    pub id_number: String,
    pub email: Option<String>,
    pub address: String,
    pub bank_card: Option<String>,
    pub tags: Vec<String>,
    pub source: String,
    pub industry: Industry,
    pub attributes: serde_json::Value,
}

/// The industries Veil's demo data covers; each shapes the customer's `tags` and `attributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Industry {
    RealEstate,
    Services,
    Finance,
    Education,
    Ecommerce,
}

impl Industry {
    /// Every industry, in declaration order.
    pub const ALL: [Industry; 5] = [
        Industry::RealEstate,
        Industry::Services,
        Industry::Finance,
        Industry::Education,
        Industry::Ecommerce,
    ];

    /// The stable snake_case name (`"real_estate"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Industry::RealEstate => "real_estate",
            Industry::Services => "services",
            Industry::Finance => "finance",
            Industry::Education => "education",
            Industry::Ecommerce => "ecommerce",
        }
    }
}

/// Surnames with weights roughly proportional to their share of the population (per 10,000), after the
/// 2020 census ranking; a few compound surnames are included so that masking of `欧阳**` is exercised.
const SURNAMES: &[(&str, u32)] = &[
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

const MALE_GIVEN: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "旭", "宁", "龙", "林", "阳", "建", "国", "峰",
    "亮", "成", "志", "文", "博", "然", "轩", "睿", "泽", "晨", "子", "天", "嘉", "思", "家", "铭",
    "昊", "宏",
];

const FEMALE_GIVEN: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "婷", "雪", "慧", "莹", "琳", "颖",
    "倩", "洁", "佳", "琪", "欣", "怡", "悦", "萱", "涵", "梦", "雨", "诗", "晓", "秀", "英", "兰",
    "红", "梅", "月", "萍", "丹", "蕾", "薇", "桐", "彤", "瑶", "妍", "琴", "露", "晶", "璐", "思",
    "嘉", "子",
];

/// A real county-level division: its GB/T 2260 code and names. The ID number's region code and the address
/// always come from the same row.
struct District {
    code: &'static str,
    province: &'static str,
    /// Empty for the municipalities, whose province is the city.
    city: &'static str,
    district: &'static str,
}

const fn district(
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

const DISTRICTS: &[District] = &[
    district("110101", "北京市", "", "东城区"),
    district("110102", "北京市", "", "西城区"),
    district("110105", "北京市", "", "朝阳区"),
    district("110108", "北京市", "", "海淀区"),
    district("120101", "天津市", "", "和平区"),
    district("120104", "天津市", "", "南开区"),
    district("310101", "上海市", "", "黄浦区"),
    district("310104", "上海市", "", "徐汇区"),
    district("310112", "上海市", "", "闵行区"),
    district("310115", "上海市", "", "浦东新区"),
    district("500103", "重庆市", "", "渝中区"),
    district("500106", "重庆市", "", "沙坪坝区"),
    district("440104", "广东省", "广州市", "越秀区"),
    district("440106", "广东省", "广州市", "天河区"),
    district("440304", "广东省", "深圳市", "福田区"),
    district("440305", "广东省", "深圳市", "南山区"),
    district("330106", "浙江省", "杭州市", "西湖区"),
    district("330108", "浙江省", "杭州市", "滨江区"),
    district("320102", "江苏省", "南京市", "玄武区"),
    district("320106", "江苏省", "南京市", "鼓楼区"),
    district("320508", "江苏省", "苏州市", "姑苏区"),
    district("510104", "四川省", "成都市", "锦江区"),
    district("510107", "四川省", "成都市", "武侯区"),
    district("420106", "湖北省", "武汉市", "武昌区"),
    district("420111", "湖北省", "武汉市", "洪山区"),
    district("610113", "陕西省", "西安市", "雁塔区"),
    district("370102", "山东省", "济南市", "历下区"),
    district("370202", "山东省", "青岛市", "市南区"),
    district("350203", "福建省", "厦门市", "思明区"),
    district("430104", "湖南省", "长沙市", "岳麓区"),
    district("410105", "河南省", "郑州市", "金水区"),
    district("210102", "辽宁省", "沈阳市", "和平区"),
    district("230103", "黑龙江省", "哈尔滨市", "南岗区"),
    district("530102", "云南省", "昆明市", "五华区"),
    district("340104", "安徽省", "合肥市", "蜀山区"),
];

const ROADS: &[&str] = &[
    "人民", "解放", "中山", "建设", "和平", "新华", "文化", "胜利", "长江", "黄河", "青年", "光明",
    "友谊", "学府", "科技", "幸福", "东风", "迎宾", "滨江", "花园",
];

/// Mobile prefixes of the 13x/15x/17x/18x/19x blocks; those `veil-pii` does not consider allocated are dropped
/// when a generator starts, so the demo can never produce a number the validator rejects.
const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151", "152",
    "153", "155", "156", "157", "158", "159", "173", "175", "176", "177", "178", "180", "181",
    "182", "183", "184", "185", "186", "187", "188", "189", "191", "193", "195", "198", "199",
];

/// Issuer identification numbers of Chinese banks' debit cards, with the card length they are issued in.
const BANK_BINS: &[(&str, usize)] = &[
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
const EMAIL_DOMAINS: &[(&str, u32)] = &[
    ("example.com", 45),
    ("example.cn", 20),
    ("example.org", 10),
    ("qq.com", 15),
    ("163.com", 10),
];

const PINYIN_SYLLABLES: &[&str] = &[
    "zhang", "wang", "li", "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma",
    "zhu", "hu", "guo", "lin", "wei", "fang", "na", "min", "jing", "hua", "ming", "jun", "lei",
    "tao", "yu", "hao", "xin", "yan", "ting", "qing", "xiao", "long", "feng",
];

const SOURCES: &[&str] = &[
    "官网",
    "转介绍",
    "门店",
    "展会",
    "电话营销",
    "小程序",
    "公众号",
    "线上广告",
    "地推",
];

/// Timestamps in attributes (`last_visit`) fall in the 730 days from this date: fixed, not "today", so that the
/// output does not depend on when it is generated.
const ACTIVITY_EPOCH: (i32, u32, u32) = (2024, 1, 1);

/// An infinite, deterministic stream of synthetic customers. Customers are distinct in phone and id_number
/// within one generator (the generator remembers what it has issued and draws again on a collision).
pub struct DemoGenerator {
    rng: StdRng,
    issued: u64,
    mobile_prefixes: Vec<&'static str>,
    phones: HashSet<u64>,
    id_numbers: HashSet<u64>,
}

impl DemoGenerator {
    /// A generator whose stream is decided by `seed` alone.
    pub fn new(seed: u64) -> Self {
        let allocated: Vec<&'static str> = MOBILE_PREFIXES
            .iter()
            .copied()
            .filter(|prefix| veil_pii::cn_mobile::is_allocated_prefix(prefix))
            .collect();
        DemoGenerator {
            rng: StdRng::seed_from_u64(seed),
            issued: 0,
            // An empty list would mean a broken prefix table; 138 is a long-allocated China Mobile block.
            mobile_prefixes: if allocated.is_empty() {
                vec!["138"]
            } else {
                allocated
            },
            phones: HashSet::new(),
            id_numbers: HashSet::new(),
        }
    }

    /// The next customer of the stream; never repeats a phone or id_number issued by this generator.
    pub fn next_customer(&mut self) -> DemoCustomer {
        // Industries rotate so that any run of 5 customers covers each once: evenly spread by construction.
        let industry = Industry::ALL[(self.issued % Industry::ALL.len() as u64) as usize];
        self.issued += 1;

        let gender = if self.rng.gen_bool(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        let name = self.name(gender);
        let home = &DISTRICTS[self.rng.gen_range(0..DISTRICTS.len())];
        let (birth_date, id_number) = self.id_number(home, gender);
        let phone = self.phone();
        let email = self.rng.gen_bool(0.7).then(|| self.email());
        let address = self.address(home);
        let bank_card = self.rng.gen_bool(0.6).then(|| self.bank_card());
        let tags = self.tags(industry);
        let source = SOURCES[self.rng.gen_range(0..SOURCES.len())].to_owned();
        let attributes = self.attributes(industry, home);

        DemoCustomer {
            name,
            gender,
            birth_date,
            phone,
            id_number,
            email,
            address,
            bank_card,
            tags,
            source,
            industry,
            attributes,
        }
    }

    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        items[self.rng.gen_range(0..items.len())]
    }

    fn pick_weighted<'a>(&mut self, items: &'a [(&'a str, u32)]) -> &'a str {
        let total: u32 = items.iter().map(|(_, weight)| weight).sum();
        let mut ticket = self.rng.gen_range(0..total);
        for (item, weight) in items {
            if ticket < *weight {
                return item;
            }
            ticket -= weight;
        }
        items[items.len() - 1].0
    }

    fn digits(&mut self, count: usize, into: &mut String) {
        for _ in 0..count {
            into.push(char::from(b'0' + self.rng.gen_range(0..10u8)));
        }
    }

    fn name(&mut self, gender: Sex) -> String {
        let given = match gender {
            Sex::Male => MALE_GIVEN,
            Sex::Female => FEMALE_GIVEN,
        };
        let mut name = String::from(self.pick_weighted(SURNAMES));
        name.push_str(self.pick(given));
        if self.rng.gen_bool(0.65) {
            name.push_str(self.pick(given));
        }
        name
    }

    /// Draws a birth date and sequence number until the 17-digit body is new, then appends the check digit.
    fn id_number(&mut self, home: &District, gender: Sex) -> (Date, String) {
        loop {
            let year = self.rng.gen_range(1950..=2006);
            let month = self.rng.gen_range(1..=12);
            let day = self
                .rng
                .gen_range(1..=veil_pii::date::days_in_month(year, month));
            let birth_date = Date::new(year, month, day).expect("day drawn within its month");

            let mut id_number = String::with_capacity(18);
            id_number.push_str(home.code);
            id_number.push_str(&format!("{year:04}{month:02}{day:02}"));
            self.digits(2, &mut id_number);
            // The 17th digit carries the sex: odd for men, even for women.
            let parity = match gender {
                Sex::Male => 1,
                Sex::Female => 0,
            };
            id_number.push(char::from(b'0' + 2 * self.rng.gen_range(0..5u8) + parity));

            let body: u64 = id_number.parse().expect("17 ASCII digits");
            if !self.id_numbers.insert(body) {
                continue;
            }
            let check = veil_pii::cn_id::check_digit(&id_number).expect("17 ASCII digits");
            id_number.push(check);
            return (birth_date, id_number);
        }
    }

    fn phone(&mut self) -> String {
        loop {
            let prefix = self.mobile_prefixes[self.rng.gen_range(0..self.mobile_prefixes.len())];
            let mut phone = String::with_capacity(11);
            phone.push_str(prefix);
            self.digits(8, &mut phone);
            if self.phones.insert(phone.parse().expect("11 ASCII digits")) {
                return phone;
            }
        }
    }

    fn email(&mut self) -> String {
        let domain = self.pick_weighted(EMAIL_DOMAINS);
        let mut local = String::new();
        if domain == "qq.com" {
            // QQ numbers: 5–10 digits, never starting with 0.
            local.push(char::from(b'1' + self.rng.gen_range(0..9u8)));
            let more = self.rng.gen_range(5..=9);
            self.digits(more, &mut local);
        } else {
            local.push_str(self.pick(PINYIN_SYLLABLES));
            match self.rng.gen_range(0..3) {
                0 => {
                    local.push('.');
                    local.push_str(self.pick(PINYIN_SYLLABLES));
                }
                1 => {
                    local.push_str(self.pick(PINYIN_SYLLABLES));
                    let year = self.rng.gen_range(60..=99);
                    local.push_str(&year.to_string());
                }
                _ => {
                    local.push('_');
                    local.push_str(self.pick(PINYIN_SYLLABLES));
                    let number = self.rng.gen_range(1..1000);
                    local.push_str(&number.to_string());
                }
            }
        }
        format!("{local}@{domain}")
    }

    fn address(&mut self, home: &District) -> String {
        let road = self.pick(ROADS);
        let number = self.rng.gen_range(1..=999);
        let building = self.rng.gen_range(1..=30);
        let floor = self.rng.gen_range(1..=33);
        let room = self.rng.gen_range(1..=6);
        format!(
            "{}{}{}{road}路{number}号{building}栋{floor}{room:02}室",
            home.province, home.city, home.district
        )
    }

    fn bank_card(&mut self) -> String {
        let (bin, length) = BANK_BINS[self.rng.gen_range(0..BANK_BINS.len())];
        let mut card = String::with_capacity(length);
        card.push_str(bin);
        self.digits(length - bin.len() - 1, &mut card);
        let check = veil_pii::bank_card::luhn_check_digit(&card).expect("ASCII digits");
        card.push(char::from(b'0' + check));
        card
    }

    fn tags(&mut self, industry: Industry) -> Vec<String> {
        let pool: &[&str] = match industry {
            Industry::RealEstate => &[
                "高意向",
                "首次置业",
                "改善型",
                "投资客",
                "已看房",
                "学区房需求",
                "vip",
                "新客户",
            ],
            Industry::Services => &["vip", "新客户", "回头客", "生日月", "储值会员", "沉睡客户"],
            Industry::Finance => &["高净值", "vip", "新客户", "定投客户", "待回访", "稳健型"],
            Industry::Education => &["试听", "续费", "新客户", "高意向", "家长决策", "vip"],
            Industry::Ecommerce => &["vip", "新客户", "复购", "高客单价", "促销敏感", "沉睡客户"],
        };
        let count = self.rng.gen_range(1..=3);
        pool.choose_multiple(&mut self.rng, count)
            .map(|tag| (*tag).to_owned())
            .collect()
    }

    fn activity_date(&mut self) -> String {
        let (year, month, day) = ACTIVITY_EPOCH;
        let epoch = Date::new(year, month, day).expect("a real date");
        let offset = self.rng.gen_range(0..730);
        Date::from_days_since_unix_epoch(epoch.days_since_unix_epoch() + offset).to_string()
    }

    fn attributes(&mut self, industry: Industry, home: &District) -> serde_json::Value {
        match industry {
            Industry::RealEstate => {
                // Buyers mostly look in or near the city they live in.
                let same_city: Vec<&District> = DISTRICTS
                    .iter()
                    .filter(|candidate| {
                        candidate.province == home.province && candidate.city == home.city
                    })
                    .collect();
                let preferred = same_city[self.rng.gen_range(0..same_city.len())];
                json!({
                    "budget_wan": self.rng.gen_range(30..=300) * 10,
                    "preferred_district": preferred.district,
                    "viewing_count": self.rng.gen_range(0..=12),
                    "property_type": self.pick(&["住宅", "公寓", "别墅", "商铺", "写字楼"]),
                })
            }
            Industry::Services => {
                let (business, preferences): (&str, &[&str]) = match self.rng.gen_range(0..3) {
                    0 => ("hotel", &["无烟房", "高楼层", "大床", "含早", "安静房间"]),
                    1 => (
                        "salon",
                        &["指定发型师", "烫染", "护理", "男士理容", "周末预约"],
                    ),
                    _ => (
                        "restaurant",
                        &["不吃辣", "包间", "素食", "靠窗", "儿童座椅"],
                    ),
                };
                let count = self.rng.gen_range(1..=3);
                let chosen: Vec<&str> = preferences
                    .choose_multiple(&mut self.rng, count)
                    .copied()
                    .collect();
                json!({
                    "business_type": business,
                    "membership_level": self.pick(&["普通", "银卡", "金卡", "钻石"]),
                    "last_visit": self.activity_date(),
                    "visit_count": self.rng.gen_range(1..=80),
                    "preferences": chosen,
                })
            }
            Industry::Finance => {
                // Suitability: a customer may hold products up to their risk level (C1 cautious … C5 aggressive).
                let level = self.rng.gen_range(1..=5usize);
                const PRODUCTS: [(&str, usize); 7] = [
                    ("定期存款", 1),
                    ("货币基金", 1),
                    ("国债", 1),
                    ("债券基金", 2),
                    ("混合基金", 3),
                    ("股票基金", 4),
                    ("私募", 5),
                ];
                let suitable: Vec<&str> = PRODUCTS
                    .iter()
                    .filter(|(_, risk)| *risk <= level)
                    .map(|(product, _)| *product)
                    .collect();
                let count = self.rng.gen_range(1..=suitable.len().min(3));
                let products: Vec<&str> = suitable
                    .choose_multiple(&mut self.rng, count)
                    .copied()
                    .collect();
                json!({
                    "risk_level": format!("C{level}"),
                    "aum_band": self.pick(&["<5万", "5-50万", "50-300万", "300-1000万", "1000万+"]),
                    "products": products,
                })
            }
            Industry::Education => {
                let count = self.rng.gen_range(1..=2);
                let courses: Vec<&str> = ["数学", "英语", "语文", "物理", "编程", "美术", "钢琴"]
                    .choose_multiple(&mut self.rng, count)
                    .copied()
                    .collect();
                json!({
                    "student_grade": self.pick(&[
                        "幼儿园大班", "一年级", "三年级", "五年级", "初一", "初三", "高一", "高三", "成人",
                    ]),
                    "course_interest": courses,
                    "enrolment_status": self.pick(&["咨询中", "试听", "在读", "已结课", "流失"]),
                })
            }
            Industry::Ecommerce => {
                let order_count = self.rng.gen_range(1..=200u32);
                let average_cents = self.rng.gen_range(2_000..=80_000u32);
                let total_cents = u64::from(order_count) * u64::from(average_cents);
                json!({
                    "order_count": order_count,
                    "total_spent": total_cents as f64 / 100.0,
                    "favourite_category": self.pick(&[
                        "数码", "服饰", "美妆", "家居", "食品", "母婴", "图书", "运动",
                    ]),
                    "last_order": self.activity_date(),
                })
            }
        }
    }
}

/// The first `count` customers of the stream seeded with `seed`.
pub fn generate(seed: u64, count: usize) -> Vec<DemoCustomer> {
    let mut generator = DemoGenerator::new(seed);
    (0..count).map(|_| generator.next_customer()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_mask::display::default_display;
    use veil_pii::{validate, Details, PiiKind};

    const COUNT: usize = 2_000;

    fn today() -> Date {
        Date::new(2026, 11, 29).expect("a real date")
    }

    #[test]
    fn every_generated_value_validates() {
        let customers = generate(7, COUNT);
        assert_eq!(customers.len(), COUNT);
        for customer in &customers {
            let id = validate(PiiKind::CnId, &customer.id_number, today())
                .unwrap_or_else(|invalid| panic!("{} rejected: {invalid:?}", customer.id_number));
            let Details::CnId(info) = &id.details else {
                panic!("cn_id details missing for {}", customer.id_number);
            };
            assert_eq!(
                info.birth_date, customer.birth_date,
                "{}",
                customer.id_number
            );
            assert_eq!(info.sex, customer.gender, "{}", customer.id_number);
            let home = DISTRICTS
                .iter()
                .find(|district| district.code == info.region_code)
                .expect("region from the table");
            // The address lies in the ID's region, and its masked display keeps exactly that region.
            assert_eq!(
                default_display(PiiKind::Address, &customer.address),
                format!("{}{}{}****", home.province, home.city, home.district),
                "{}",
                customer.address
            );

            validate(PiiKind::CnMobile, &customer.phone, today())
                .unwrap_or_else(|invalid| panic!("{} rejected: {invalid:?}", customer.phone));
            if let Some(card) = &customer.bank_card {
                assert!((16..=19).contains(&card.len()));
                validate(PiiKind::BankCard, card, today())
                    .unwrap_or_else(|invalid| panic!("{card} rejected: {invalid:?}"));
            }
            if let Some(email) = &customer.email {
                validate(PiiKind::Email, email, today())
                    .unwrap_or_else(|invalid| panic!("{email} rejected: {invalid:?}"));
            }
            for (kind, value) in [
                (PiiKind::PersonName, customer.name.clone()),
                (PiiKind::Address, customer.address.clone()),
                (PiiKind::BirthDate, customer.birth_date.to_string()),
            ] {
                validate(kind, &value, today())
                    .unwrap_or_else(|invalid| panic!("{value} rejected: {invalid:?}"));
            }
            let year = customer.birth_date.year;
            assert!((1950..=2006).contains(&year));
            assert!(!customer.tags.is_empty());
            assert!(SOURCES.contains(&customer.source.as_str()));
            assert!(customer.attributes.is_object());
        }
    }

    #[test]
    fn phones_and_id_numbers_are_unique() {
        let customers = generate(11, COUNT);
        let phones: HashSet<&str> = customers.iter().map(|c| c.phone.as_str()).collect();
        let ids: HashSet<&str> = customers.iter().map(|c| c.id_number.as_str()).collect();
        assert_eq!(phones.len(), COUNT);
        assert_eq!(ids.len(), COUNT);
    }

    #[test]
    fn the_seed_decides_the_output() {
        let summary = |customers: Vec<DemoCustomer>| -> Vec<String> {
            customers
                .into_iter()
                .map(|c| {
                    format!(
                        "{} {} {} {:?} {}",
                        c.name, c.phone, c.id_number, c.email, c.attributes
                    )
                })
                .collect()
        };
        assert_eq!(summary(generate(42, 200)), summary(generate(42, 200)));
        assert_ne!(summary(generate(42, 200)), summary(generate(43, 200)));
    }

    #[test]
    fn mix_is_realistic() {
        let customers = generate(3, COUNT);
        for industry in Industry::ALL {
            let share = customers.iter().filter(|c| c.industry == industry).count();
            assert_eq!(share, COUNT / Industry::ALL.len(), "{}", industry.as_str());
        }
        let with_email = customers.iter().filter(|c| c.email.is_some()).count();
        assert!(
            (1_250..=1_550).contains(&with_email),
            "{with_email} e-mails"
        );
        let example_domains = customers
            .iter()
            .filter_map(|c| c.email.as_deref())
            .filter(|email| email.contains("@example."))
            .count();
        assert!(
            example_domains * 2 > with_email,
            "example.* should dominate"
        );
        let men = customers.iter().filter(|c| c.gender == Sex::Male).count();
        assert!((850..=1_150).contains(&men), "{men} men");
        assert!(customers.iter().any(|c| c.name.chars().count() == 2));
        assert!(customers.iter().any(|c| c.name.chars().count() == 3));
        assert!(customers
            .iter()
            .all(|c| (2..=4).contains(&c.name.chars().count())));
        let finance = customers
            .iter()
            .find(|c| c.industry == Industry::Finance)
            .expect("finance customers");
        assert!(finance.attributes["risk_level"]
            .as_str()
            .is_some_and(|level| level.starts_with('C')));
    }
}
