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
