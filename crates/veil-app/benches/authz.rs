//! The cost of the authorisation decision (issue 4: "adds < 5 µs per request").
//!
//! - the pure decision for a salesperson reading one customer: `role_permits` + `in_scope`;
//! - `team_and_descendants` on a 50-team tree (what a manager's scope computes);
//! - the whole `Veil::authorize` on a real, temporary SQLite Veil for an admin and a salesperson (one customer and a
//!   list), and for a manager, whose scope reads the team tree from the database on every call.
//!
//! `cargo bench -p veil-app --bench authz`

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tokio::runtime::Runtime;
use veil_app::authz::{in_scope, role_permits, team_and_descendants, Action};
use veil_app::keys::{create_master_key_file, MasterKeySource};
use veil_app::users::{Actor, Password, Role};
use veil_app::{DatabaseUrl, UserId, Veil};
use veil_store::{CustomerProfile, CustomerScope, Store};

fn profile(owner: &str, team: &str) -> CustomerProfile {
    CustomerProfile {
        gender: Some("female".into()),
        tags: "[\"vip\"]".into(),
        owner_id: Some(owner.into()),
        team: Some(team.into()),
        source: Some("referral".into()),
        industry: None,
        attributes: "{}".into(),
        custom_fields: "{}".into(),
        birth_md: None,
        created_at: 1_764_000_000_000,
        updated_at: 1_764_000_000_000,
    }
}

/// 50 teams: a root, 7 regions under it, 6 branches under each region.
fn team_tree() -> Vec<(String, Option<String>)> {
    let mut teams = vec![("sales".to_owned(), None)];
    for region in 0..7 {
        let name = format!("region-{region}");
        teams.push((name.clone(), Some("sales".to_owned())));
        for branch in 0..6 {
            teams.push((format!("branch-{region}-{branch}"), Some(name.clone())));
        }
    }
    assert_eq!(teams.len(), 50);
    teams
}

fn pure(c: &mut Criterion) {
    let owner = UserId::new().to_string();
    let scope = CustomerScope {
        owner_id: Some(owner.clone()),
        ..CustomerScope::default()
    };
    let own = profile(&owner, "east");
    let other = profile(&UserId::new().to_string(), "east");
    c.bench_function("authz/pure/sales_read_own", |b| {
        b.iter(|| {
            role_permits(black_box(Role::Sales), black_box(Action::CustomerRead)).is_ok()
                && in_scope(black_box(&scope), black_box(&own))
        })
    });
    c.bench_function("authz/pure/sales_read_other", |b| {
        b.iter(|| {
            role_permits(black_box(Role::Sales), black_box(Action::CustomerRead)).is_ok()
                && in_scope(black_box(&scope), black_box(&other))
        })
    });
    let parents: HashMap<String, Option<String>> = team_tree().into_iter().collect();
    c.bench_function("authz/pure/team_and_descendants_50_root", |b| {
        b.iter(|| team_and_descendants(black_box("sales"), black_box(&parents)))
    });
    c.bench_function("authz/pure/team_and_descendants_50_region", |b| {
        b.iter(|| team_and_descendants(black_box("region-3"), black_box(&parents)))
    });
}

struct Fixture {
    veil: Veil,
    admin: Actor,
    sales: Actor,
    manager: Actor,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key = dir.path().join("master.key");
    create_master_key_file(&key).expect("master key");
    let url = DatabaseUrl::new(format!("sqlite://{}", dir.path().join("veil.db").display()));
    let store = Store::connect(&url).await.expect("connect");
    let veil = Veil::initialise(store, &MasterKeySource::File(key))
        .await
        .expect("initialise");
    let password = Password::new("benchmark password 1".into());
    veil.add_user("bench-admin", Role::Admin, None, &password)
        .await
        .expect("admin");
    let admin = veil.actor_by_username("bench-admin").await.expect("admin");
    for (team, parent) in team_tree() {
        veil.add_team(&admin, &team, parent.as_deref())
            .await
            .expect("team");
    }
    veil.add_user("bench-sales", Role::Sales, Some("branch-3-2"), &password)
        .await
        .expect("sales");
    veil.add_user("bench-manager", Role::Manager, Some("region-3"), &password)
        .await
        .expect("manager");
    Fixture {
        sales: veil.actor_by_username("bench-sales").await.expect("sales"),
        manager: veil
            .actor_by_username("bench-manager")
            .await
            .expect("manager"),
        admin,
        veil,
        _dir: dir,
    }
}

fn whole(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let fixture = runtime.block_on(fixture());
    let id = veil_app::CustomerId::new().to_string();
    let own = profile(&fixture.sales.user_id.to_string(), "branch-3-2");
    let bench = |c: &mut Criterion,
                 name: &str,
                 runtime: &Runtime,
                 actor: &Actor,
                 action: Action,
                 record: Option<(&str, &CustomerProfile)>| {
        // Every case here is allowed: a denial would be measured as an error path.
        runtime
            .block_on(fixture.veil.authorize(actor, action, record))
            .expect("allowed");
        c.bench_function(name, |b| {
            b.iter(|| {
                runtime
                    .block_on(fixture.veil.authorize(
                        black_box(actor),
                        black_box(action),
                        black_box(record),
                    ))
                    .is_ok()
            })
        });
    };
    bench(
        c,
        "authz/authorize/admin_read",
        &runtime,
        &fixture.admin,
        Action::CustomerRead,
        Some((&id, &own)),
    );
    bench(
        c,
        "authz/authorize/admin_list",
        &runtime,
        &fixture.admin,
        Action::CustomerList,
        None,
    );
    bench(
        c,
        "authz/authorize/sales_read_own",
        &runtime,
        &fixture.sales,
        Action::CustomerRead,
        Some((&id, &own)),
    );
    bench(
        c,
        "authz/authorize/sales_list",
        &runtime,
        &fixture.sales,
        Action::CustomerList,
        None,
    );
    bench(
        c,
        "authz/authorize/manager_read_team",
        &runtime,
        &fixture.manager,
        Action::CustomerRead,
        Some((&id, &own)),
    );
}

criterion_group!(benches, pure, whole);
criterion_main!(benches);
