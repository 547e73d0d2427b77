//! Synthetic demo customers for `veil demo` and for benchmarks.
//!
//! The values themselves (names, numbers, addresses) come from `veil_mask::fake`, which the `replace_fake`
//! operator uses too; this module adds what makes them customers: industries, tags, attributes, uniqueness.
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
use veil_mask::fake::{self, District, DISTRICTS};
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
    phones: HashSet<u64>,
    id_numbers: HashSet<u64>,
}

impl DemoGenerator {
    /// A generator whose stream is decided by `seed` alone.
    pub fn new(seed: u64) -> Self {
        DemoGenerator {
            rng: StdRng::seed_from_u64(seed),
            issued: 0,
            phones: HashSet::new(),
            id_numbers: HashSet::new(),
        }
    }

    /// The next customer of the stream; never repeats a phone or id_number issued by this generator.
    pub fn next_customer(&mut self) -> DemoCustomer {
        // Industries rotate so that any run of 5 customers covers each once: evenly spread by construction.
        let industry = Industry::ALL[(self.issued % Industry::ALL.len() as u64) as usize];
        self.issued += 1;

        let gender = fake::sex(&mut self.rng);
        let name = fake::person_name(&mut self.rng, gender);
        let home = fake::district(&mut self.rng);
        let (birth_date, id_number) = self.id_number(home, gender);
        let phone = self.phone();
        let email = self.rng.gen_bool(0.7).then(|| fake::email(&mut self.rng));
        let address = fake::address(&mut self.rng, home);
        let bank_card = self
            .rng
            .gen_bool(0.6)
            .then(|| fake::bank_card(&mut self.rng));
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

    /// Draws ID numbers until the 17-digit body (everything but the check character) is new.
    fn id_number(&mut self, home: &District, gender: Sex) -> (Date, String) {
        loop {
            let (birth_date, id_number) = fake::cn_id(&mut self.rng, home, gender);
            let body: u64 = id_number[..17].parse().expect("17 ASCII digits");
            if self.id_numbers.insert(body) {
                return (birth_date, id_number);
            }
        }
    }

    /// Draws mobile numbers until one is new.
    fn phone(&mut self) -> String {
        loop {
            let phone = fake::cn_mobile(&mut self.rng);
            if self.phones.insert(phone.parse().expect("11 ASCII digits")) {
                return phone;
            }
        }
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
