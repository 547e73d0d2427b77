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
