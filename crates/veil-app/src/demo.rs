//! Fills a fresh database with demo accounts (one per role) and synthetic customers, for `veil demo`.

use crate::customers::CustomerInput;
use crate::demo_data::{DemoCustomer, DemoGenerator};
use crate::error::AppResult;
use crate::keys::Progress;
use crate::users::{Password, Role};
use crate::Veil;

/// The demo accounts: (username, role, team).
pub const DEMO_ACCOUNTS: [(&str, Role, Option<&str>); 7] = [
    ("admin", Role::Admin, None),
    ("dpo", Role::Dpo, None),
    ("manager", Role::Manager, Some("east-sales")),
    ("sales", Role::Sales, Some("east-sales")),
    ("sales2", Role::Sales, Some("east-sales")),
    ("service", Role::Service, Some("service-desk")),
    ("auditor", Role::Auditor, None),
];

/// Seed of the demo customer stream, so every demo shows the same people.
pub const DEMO_SEED: u64 = 20_261_129;
const BATCH: usize = 500;

/// A demo account with the password set for this run.
#[derive(Debug, Clone)]
pub struct DemoAccount {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// The password, shown once.
    pub password: Password,
}

/// Turns a generated customer into the input the API would receive.
pub fn demo_input(customer: &DemoCustomer, owner: Option<String>) -> CustomerInput {
    CustomerInput {
        name: Some(customer.name.clone()),
        gender: Some(customer.gender.as_str().to_owned()),
        birth_date: Some(customer.birth_date.to_string()),
        phone: Some(customer.phone.clone()),
        id_number: Some(customer.id_number.clone()),
        email: customer.email.clone(),
        address: Some(customer.address.clone()),
        bank_card: customer.bank_card.clone(),
        tags: Some(customer.tags.clone()),
        owner,
        team: None,
        source: Some(customer.source.clone()),
        industry: Some(customer.industry.as_str().to_owned()),
        attributes: Some(customer.attributes.clone()),
        custom_fields: None,
    }
}

/// The demo team tree: (team, parent).
pub const DEMO_TEAMS: [(&str, Option<&str>); 3] = [
    ("sales", None),
    ("east-sales", Some("sales")),
    ("service-desk", None),
];

/// Creates (or, when they exist, resets the passwords of) the demo accounts, with fresh random passwords, and
/// the demo teams.
pub async fn ensure_demo_accounts(veil: &Veil) -> AppResult<Vec<DemoAccount>> {
    let mut accounts = Vec::new();
    for (username, role, team) in DEMO_ACCOUNTS {
        let password = Password::generate();
        match veil.store().user_by_username(username).await? {
            Some(_) => veil.reset_password(username, &password).await?,
            None => {
                veil.add_user(username, role, team, &password).await?;
            }
        }
        accounts.push(DemoAccount {
            username: username.to_owned(),
            role,
            password,
        });
    }
    let admin = veil.actor_by_username("admin").await?;
    let existing = veil.list_teams().await?;
    for (team, parent) in DEMO_TEAMS {
        if !existing.iter().any(|known| known.name == team) {
            veil.add_team(&admin, team, parent).await?;
        }
    }
    Ok(accounts)
}

/// Adds `count` synthetic customers, split between the two demo salespeople, in batches.
pub async fn seed_customers(veil: &Veil, count: usize, progress: &dyn Progress) -> AppResult<()> {
    let admin = veil.actor_by_username("admin").await?;
    let owners = [
        veil.actor_by_username("sales").await?.user_id.to_string(),
        veil.actor_by_username("sales2").await?.user_id.to_string(),
    ];
    let mut generator = DemoGenerator::new(DEMO_SEED);
    let mut done = 0;
    while done < count {
        let size = BATCH.min(count - done);
        let inputs: Vec<CustomerInput> = (0..size)
            .map(|offset| {
                let owner = owners[(done + offset) % owners.len()].clone();
                demo_input(&generator.next_customer(), Some(owner))
            })
            .collect();
        veil.create_customers_batch(&admin, &inputs).await?;
        done += size;
        progress.update(done as u64, count as u64);
    }
    Ok(())
}

/// Puts up to `count` of the second demo salesperson's customers in the customer pool (released by the admin) and
/// adds two message templates, so that `/pool` and sending have something to show. Returns how many went to the
/// pool.
pub async fn seed_pool_and_templates(veil: &Veil, count: u32) -> AppResult<usize> {
    use crate::messages::{MessageChannel, MessagePurpose, TemplateInput, TemplateLanguage};
    let admin = veil.actor_by_username("admin").await?;
    let sales2 = veil.actor_by_username("sales2").await?;
    let filter = crate::segments::ListFilter {
        owner: Some(sales2.user_id.to_string()),
        ..crate::segments::ListFilter::default()
    };
    let page = veil
        .list_customers_where(&admin, &filter, None, count)
        .await?;
    let reason = crate::pool::ReleaseInput {
        reason: "演示：长期未跟进".to_owned(),
    };
    for customer in &page.items {
        veil.release_to_pool(&admin, customer.id, &reason).await?;
    }
    for input in [
        TemplateInput {
            name: "birthday_zh".to_owned(),
            channel: MessageChannel::Email,
            language: TemplateLanguage::Zh,
            purpose: MessagePurpose::Care,
            subject: Some("{{customer.surname}}{{customer.title}}，生日快乐".to_owned()),
            body: "尊敬的{{customer.surname}}{{customer.title}}：\n祝您生日快乐！您当前积分{{points}}分。\n——{{agent.name}}"
                .to_owned(),
        },
        TemplateInput {
            name: "festival_sms".to_owned(),
            channel: MessageChannel::Sms,
            language: TemplateLanguage::Zh,
            purpose: MessagePurpose::Marketing,
            subject: None,
            body: "{{customer.surname}}{{customer.title}}您好，{{holiday}}快乐！回复TD退订".to_owned(),
        },
    ] {
        veil.create_template(&admin, &input).await?;
    }
    Ok(page.items.len())
}

/// One demo product: (sku, name, category, price in fen).
pub type DemoProduct = (&'static str, &'static str, &'static str, i64);

/// The demo catalogue: four categories of six products, each category's list in order of popularity.
pub const DEMO_PRODUCTS: [DemoProduct; 24] = [
    ("BEA-CLEANSER", "氨基酸洁面乳", "beauty", 8_900),
    ("BEA-SERUM", "玻尿酸精华", "beauty", 29_900),
    ("BEA-CREAM", "修护面霜", "beauty", 25_900),
    ("BEA-TONER", "保湿爽肤水", "beauty", 12_900),
    ("BEA-SUNSCREEN", "清爽防晒霜", "beauty", 9_900),
    ("BEA-MASK", "补水面膜（10片）", "beauty", 6_900),
    ("DIG-PHONE", "5G 智能手机", "digital", 399_900),
    ("DIG-EARBUDS", "降噪耳机", "digital", 89_900),
    ("DIG-CASE", "手机保护壳", "digital", 4_900),
    ("DIG-CHARGER", "65W 快充充电器", "digital", 12_900),
    ("DIG-WATCH", "智能手表", "digital", 129_900),
    ("DIG-POWERBANK", "20000mAh 充电宝", "digital", 15_900),
    ("HOM-RICE", "智能电饭煲", "home", 49_900),
    ("HOM-PURIFIER", "空气净化器", "home", 159_900),
    ("HOM-KETTLE", "电热水壶", "home", 12_900),
    ("HOM-FILTER", "净化器滤芯", "home", 29_900),
    ("HOM-BEDDING", "四件套", "home", 39_900),
    ("HOM-PILLOW", "记忆棉枕", "home", 19_900),
    ("TEA-LONGJING", "西湖龙井 250g", "tea", 39_900),
    ("TEA-SET", "功夫茶具套装", "tea", 29_900),
    ("TEA-OOLONG", "安溪铁观音 250g", "tea", 19_900),
    ("TEA-HONEY", "百花蜂蜜", "tea", 6_900),
    ("TEA-MOONCAKE", "中秋月饼礼盒", "tea", 25_900),
    ("TEA-NUTS", "每日坚果", "tea", 9_900),
];

/// Products bought together (index into [`DEMO_PRODUCTS`] → its complements): the structure the recommender
/// should find.
const DEMO_COMPLEMENTS: [(usize, &[usize]); 8] = [
    (6, &[8, 9]), // phone → case, charger
    (10, &[9]),   // watch → charger
    (1, &[2]),    // serum → cream
    (0, &[3]),    // cleanser → toner
    (13, &[15]),  // purifier → filter
    (19, &[20]),  // tea set → oolong
    (12, &[14]),  // rice cooker → kettle
    (16, &[17]),  // bedding → pillow
];

/// Synthetic shoppers with structure: each prefers one or two categories (popular products there more often)
/// and tends to buy a product's complements after it. Deterministic for a seed. Shared by `veil demo` and the
/// offline evaluation of the recommender.
#[derive(Debug)]
pub struct ShopperGenerator {
    rng: rand::rngs::StdRng,
}

impl ShopperGenerator {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> ShopperGenerator {
        use rand::SeedableRng;
        ShopperGenerator {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
        }
    }

    /// One shopper's purchases, oldest first: distinct indexes into [`DEMO_PRODUCTS`], 2 to 7 of them.
    pub fn next_shopper(&mut self) -> Vec<usize> {
        use rand::Rng;
        let categories = ["beauty", "digital", "home", "tea"];
        let first = self.rng.gen_range(0..categories.len());
        let mut preferred = vec![categories[first]];
        if self.rng.gen_bool(0.3) {
            preferred.push(
                categories[(first + self.rng.gen_range(1..categories.len())) % categories.len()],
            );
        }
        let count = self.rng.gen_range(2..=7);
        let mut bought: Vec<usize> = Vec::new();
        let mut attempts = 0;
        while bought.len() < count && attempts < 100 {
            attempts += 1;
            let pending: Vec<usize> = bought
                .iter()
                .flat_map(|item| {
                    DEMO_COMPLEMENTS
                        .iter()
                        .filter(move |(from, _)| from == item)
                        .flat_map(|(_, to)| to.iter().copied())
                })
                .filter(|candidate| !bought.contains(candidate))
                .collect();
            let pick = if !pending.is_empty() && self.rng.gen_bool(0.5) {
                pending[self.rng.gen_range(0..pending.len())]
            } else if self.rng.gen_bool(0.8) {
                let category = preferred[self.rng.gen_range(0..preferred.len())];
                let members: Vec<usize> = (0..DEMO_PRODUCTS.len())
                    .filter(|index| DEMO_PRODUCTS[*index].2 == category)
                    .collect();
                members[self.popular_rank(members.len())]
            } else {
                self.popular_rank(DEMO_PRODUCTS.len())
            };
            if !bought.contains(&pick) {
                bought.push(pick);
            }
        }
        bought
    }

    /// A rank in `0..len`, rank r drawn with weight 1 / (r + 1).
    fn popular_rank(&mut self, len: usize) -> usize {
        use rand::Rng;
        let total: f64 = (1..=len).map(|rank| 1.0 / rank as f64).sum();
        let mut draw = self.rng.gen_range(0.0..total);
        for rank in 0..len {
            draw -= 1.0 / (rank + 1) as f64;
            if draw <= 0.0 {
                return rank;
            }
        }
        len - 1
    }
}

/// Adds the demo catalogue and paid orders for up to `customers` of the admin's newest customers (each shopper's
/// purchases as orders of one or two items over the past year), so that purchase history, loyalty points and
/// recommendations have something to show. Skipped when products exist.
pub async fn seed_orders(veil: &Veil, customers: usize) -> AppResult<usize> {
    use crate::orders::{OrderInput, OrderItemInput, OrderStatus, ProductInput};
    let admin = veil.actor_by_username("admin").await?;
    if !veil.store().list_products(None, false, 1).await?.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::new();
    for (sku, name, category, price) in DEMO_PRODUCTS {
        let product = veil
            .create_product(
                &admin,
                &ProductInput {
                    sku: sku.to_owned(),
                    name: name.to_owned(),
                    category: category.to_owned(),
                    price_fen: price,
                    currency: None,
                    active: Some(true),
                },
            )
            .await?;
        ids.push(product.id);
    }
    let page = veil
        .list_customers(&admin, None, customers.min(200) as u32)
        .await?;
    let mut generator = ShopperGenerator::new(DEMO_SEED);
    let year_ago = crate::now_ms() - 365 * 24 * 60 * 60 * 1000;
    let mut orders = 0;
    for (index, customer) in page.items.iter().enumerate() {
        let purchases = generator.next_shopper();
        let mut at = year_ago + (index as i64 % 30) * 24 * 60 * 60 * 1000;
        for chunk in purchases.chunks(if index % 3 == 0 { 2 } else { 1 }) {
            at += 20 * 24 * 60 * 60 * 1000;
            veil.create_order(
                &admin,
                customer.id,
                &OrderInput {
                    items: chunk
                        .iter()
                        .map(|product| OrderItemInput {
                            product_id: ids[*product].clone(),
                            quantity: 1,
                        })
                        .collect(),
                    status: Some(OrderStatus::Paid),
                    placed_at: Some(crate::format_time(at)),
                },
            )
            .await?;
            orders += 1;
        }
    }
    Ok(orders)
}

/// What [`seed_industry`] created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndustrySeed {
    /// Customers of the industry, with custom-field values.
    pub customers: usize,
    /// Deals in the industry's pipeline.
    pub deals: usize,
    /// Interactions of the industry's kinds.
    pub interactions: usize,
}

/// Most customers of one industry that get deals and interactions (the rest are customers only).
const INDUSTRY_ACTIVITY_LIMIT: usize = 200;

/// Adds `count` customers of the industry template `industry` (split between the two demo salespeople), each with
/// realistic custom-field values (sensitive ones sealed and masked like every personal field), and for up to 200 of
/// them a deal in the industry's pipeline and one or two interactions of its kinds. Skipped (all zero) when the
/// database already has customers of that industry, so running `veil demo --industry …` again adds nothing.
pub async fn seed_industry(
    veil: &Veil,
    industry: &str,
    count: usize,
    progress: &dyn Progress,
) -> AppResult<IndustrySeed> {
    use rand::{Rng, SeedableRng};
    let Some(position) = crate::industries::industry_keys().position(|key| key == industry) else {
        return Err(crate::error::AppError::Validation(vec![
            crate::error::FieldError::new(
                "industry",
                "unknown",
                format!(
                    "not an industry template; expected one of {}",
                    crate::industries::industry_keys()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        ]));
    };
    let template = crate::industries::builtin(industry).expect("a template's key");
    let admin = veil.actor_by_username("admin").await?;
    let existing = veil.customer_industry_counts(&admin).await?;
    if existing
        .iter()
        .any(|(key, customers)| key.as_deref() == Some(industry) && *customers > 0)
    {
        return Ok(IndustrySeed::default());
    }
    let owners = [
        veil.actor_by_username("sales").await?,
        veil.actor_by_username("sales2").await?,
    ];
    // A stream of its own per industry: no phone or ID number repeats one of the default demo's.
    let seed = DEMO_SEED + 1 + position as u64;
    let mut generator = DemoGenerator::new(seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut ids = Vec::with_capacity(count);
    while ids.len() < count {
        let size = BATCH.min(count - ids.len());
        let inputs: Vec<CustomerInput> = (0..size)
            .map(|offset| {
                let customer = generator.next_customer();
                let owner = owners[(ids.len() + offset) % owners.len()]
                    .user_id
                    .to_string();
                let mut input = demo_input(&customer, Some(owner));
                input.industry = Some(industry.to_owned());
                input.attributes = None;
                input.tags = Some(demo_tags(industry, &mut rng));
                input.custom_fields = Some(demo_custom_fields(industry, &customer, &mut rng));
                input
            })
            .collect();
        ids.extend(veil.create_customers_batch(&admin, &inputs).await?);
        progress.update(ids.len() as u64, count as u64);
    }
    let pipeline =
        crate::deals::pipeline(&template.pipeline).expect("every template has a pipeline");
    let mut seeded = IndustrySeed {
        customers: ids.len(),
        ..IndustrySeed::default()
    };
    let kinds: Vec<crate::interactions::InteractionKind> = template
        .interaction_kinds
        .iter()
        .filter_map(|kind| {
            crate::interactions::InteractionKind::ALL
                .into_iter()
                .find(|known| known.as_str() == kind)
        })
        .collect();
    let now = crate::now_ms();
    for (index, id) in ids.iter().take(INDUSTRY_ACTIVITY_LIMIT).enumerate() {
        let owner = &owners[index % owners.len()];
        let (stage, _, stage_en) = pipeline.stages[rng.gen_range(0..pipeline.stages.len())];
        let amount_yuan: i64 = match industry {
            "real_estate" => rng.gen_range(80..=1_500) * 10_000,
            "automotive" => rng.gen_range(8..=60) * 10_000,
            "finance" => rng.gen_range(5..=500) * 10_000,
            "education" => rng.gen_range(30..=300) * 100,
            "ecommerce" => rng.gen_range(1..=50) * 100,
            _ => rng.gen_range(5..=200) * 100,
        };
        let days_ahead = rng.gen_range(7..120);
        veil.create_deal(
            owner,
            &crate::deals::DealInput {
                customer_id: id.to_string(),
                title: format!("{} · {}", template.name_zh, stage_en),
                amount_minor: amount_yuan * 100,
                currency: None,
                expected_close: Some(
                    crate::format_time(now + days_ahead * 24 * 60 * 60 * 1000)[..10].to_owned(),
                ),
                pipeline: Some(pipeline.key.to_owned()),
                stage: Some(stage.to_owned()),
            },
        )
        .await?;
        seeded.deals += 1;
        for _ in 0..rng.gen_range(1..=2) {
            let kind = kinds[rng.gen_range(0..kinds.len())];
            let days_ago = rng.gen_range(1..60);
            veil.add_interaction(
                owner,
                *id,
                &crate::interactions::InteractionInput {
                    kind,
                    occurred_at: Some(crate::format_time(now - days_ago * 24 * 60 * 60 * 1000)),
                    duration_minutes: Some(rng.gen_range(5..=90)),
                    outcome: Some(demo_outcome(kind).to_owned()),
                    note: None,
                },
            )
            .await?;
            seeded.interactions += 1;
        }
    }
    Ok(seeded)
}

fn demo_outcome(kind: crate::interactions::InteractionKind) -> &'static str {
    use crate::interactions::InteractionKind;
    match kind {
        InteractionKind::Viewing => "看房两套，对南向三居室有兴趣",
        InteractionKind::TestDrive => "试驾完成，关注续航与价格",
        InteractionKind::Consultation => "咨询产品方案，约定下次沟通",
        InteractionKind::Visit => "到店接待，已介绍会员权益",
        InteractionKind::Call => "电话回访，客户满意",
        InteractionKind::Email => "已发送资料",
        InteractionKind::Message => "微信沟通，客户已读",
    }
}

fn demo_tags(industry: &str, rng: &mut impl rand::Rng) -> Vec<String> {
    use rand::seq::SliceRandom;
    let pool: &[&str] = match industry {
        "real_estate" => &[
            "高意向",
            "首次置业",
            "改善型",
            "投资客",
            "已看房",
            "学区房需求",
        ],
        "automotive" => &["高意向", "已试驾", "置换客户", "新能源", "家用", "商务"],
        "services" => &["vip", "回头客", "生日月", "储值会员", "沉睡客户"],
        "finance" => &["高净值", "定投客户", "待回访", "稳健型", "新客户"],
        "education" => &["试听", "续费", "高意向", "家长决策", "新客户"],
        _ => &["vip", "复购", "高客单价", "促销敏感", "售后关注"],
    };
    let count = rng.gen_range(1..=2);
    pool.choose_multiple(rng, count)
        .map(|tag| (*tag).to_owned())
        .collect()
}

/// Realistic custom-field values for a demo customer of `industry`. Sensitive ones (plates, allergies, income,
/// employer, student name, guardian mobile) are invented like every other demo value.
fn demo_custom_fields(
    industry: &str,
    customer: &crate::demo_data::DemoCustomer,
    rng: &mut impl rand::Rng,
) -> serde_json::Value {
    use serde_json::json;
    let pick = |rng: &mut dyn rand::RngCore, items: &[&'static str]| {
        items[rand::Rng::gen_range(rng, 0..items.len())]
    };
    let date_within = |rng: &mut dyn rand::RngCore, back: i64, ahead: i64| {
        let offset = rand::Rng::gen_range(rng, -back..=ahead);
        crate::format_time(crate::now_ms() + offset * 24 * 60 * 60 * 1000)[..10].to_owned()
    };
    match industry {
        "real_estate" => json!({
            "budget_range": pick(rng, &["under_1m", "1m_3m", "1m_3m", "3m_5m", "5m_10m", "over_10m"]),
            "preferred_district": pick(rng, &["浦东新区", "徐汇区", "朝阳区", "海淀区", "南山区", "天河区", "西湖区"]),
            "property_type": pick(rng, &["apartment", "apartment", "serviced_apartment", "villa", "shop", "office"]),
            "purchase_purpose": pick(rng, &["first_home", "upgrade", "investment", "school_district"]),
            "bedrooms": rng.gen_range(1..=4),
            "mortgage_needed": rng.gen_bool(0.7),
        }),
        "automotive" => {
            const PROVINCES: [&str; 8] = ["沪", "京", "粤", "浙", "苏", "川", "鄂", "鲁"];
            const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
            let mut plate = String::from(PROVINCES[rng.gen_range(0..PROVINCES.len())]);
            plate.push(char::from(LETTERS[rng.gen_range(0..LETTERS.len())]));
            for _ in 0..5 {
                plate.push(if rng.gen_bool(0.2) {
                    char::from(LETTERS[rng.gen_range(0..LETTERS.len())])
                } else {
                    char::from(b'0' + rng.gen_range(0..10u8))
                });
            }
            let mut fields = json!({
                "preferred_model": pick(rng, &["Model Y", "汉 EV", "凯美瑞", "宝马 3系", "理想 L7", "途观L", "小米 SU7"]),
                "powertrain": pick(rng, &["petrol", "hybrid", "electric", "electric"]),
                "test_drive_date": date_within(rng, 30, 14),
                "purchase_timeline": pick(rng, &["within_1_month", "within_3_months", "later"]),
                "trade_in": rng.gen_bool(0.4),
            });
            if rng.gen_bool(0.6) {
                fields["current_plate"] = json!(plate);
            }
            fields
        }
        "services" => {
            let business = pick(rng, &["hotel", "restaurant", "salon"]);
            let mut fields = json!({
                "business_type": business,
                "membership_level": pick(rng, &["regular", "regular", "silver", "gold", "diamond"]),
            });
            match business {
                "hotel" => {
                    fields["room_preference"] =
                        json!(pick(rng, &["无烟大床房", "高楼层", "含早双床", "安静房间"]))
                }
                "restaurant" => {
                    fields["room_preference"] =
                        json!(pick(rng, &["包间", "靠窗", "儿童座椅", "吧台"]))
                }
                _ => {
                    fields["preferred_stylist"] =
                        json!(pick(rng, &["Tony 老师", "Kevin", "小美", "阿杰"]))
                }
            }
            if rng.gen_bool(0.3) {
                fields["allergies"] = json!(pick(
                    rng,
                    &["花生过敏", "海鲜过敏", "对染发剂过敏", "乳糖不耐受"]
                ));
            }
            fields
        }
        "finance" => {
            let level = rng.gen_range(1..=5);
            json!({
                "risk_level": format!("R{level}"),
                "risk_assessed_on": date_within(rng, 700, 0),
                "product_interest": pick(rng, &["deposit", "wealth", "fund", "securities", "insurance", "loan"]),
                "qualified_investor": level >= 4 && rng.gen_bool(0.5),
                "annual_income": rng.gen_range(8..=300) * 10_000,
                "employer": pick(rng, &["上海浦江科技有限公司", "北京华信咨询有限公司", "深圳南山电子股份有限公司", "杭州西溪网络科技有限公司", "广州天河贸易有限公司"]),
            })
        }
        "education" => {
            let surname: String = customer.name.chars().take(1).collect();
            let given = pick(
                rng,
                &["子涵", "梓萱", "浩然", "一诺", "欣怡", "宇轩", "雨桐"],
            );
            json!({
                "student_name": format!("{surname}{given}"),
                "grade": pick(rng, &["preschool", "primary_lower", "primary_upper", "junior_high", "senior_high", "adult"]),
                "course_interest": pick(rng, &["少儿编程", "英语口语", "数学思维", "钢琴", "美术", "物理竞赛"]),
                "enrolment_stage": pick(rng, &["inquiry", "inquiry", "trial_class", "enrolled", "paid", "lost"]),
                "trial_class_date": date_within(rng, 30, 14),
                "guardian_mobile": veil_mask::fake::cn_mobile(rng),
            })
        }
        _ => json!({
            "preferred_category": pick(rng, &["digital", "apparel", "beauty", "home", "food", "baby"]),
            "membership_channel": pick(rng, &["tmall", "jd", "mini_program", "douyin", "own_site"]),
            "after_sales_count": rng.gen_range(0..=5),
            "last_after_sales_date": date_within(rng, 180, 0),
            "marketing_opt_in": rng.gen_bool(0.6),
        }),
    }
}
