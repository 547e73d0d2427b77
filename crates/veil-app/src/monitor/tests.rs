//! The monitor's scenarios: each rule fires on a scripted burst and stays quiet on normal traffic (events are
//! appended to the real audit log with chosen times and addresses, then one monitor pass runs); de-duplication,
//! restarts, account locking, and delivery to a real local HTTP listener and a real local SMTP server.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use veil_store::{AlertFilter, AlertRow, AuditEvent, AuditFilter};

use super::notify::{signature, EmailTarget, Notifier, NotifierConfig, Secret, WebhookTarget};
use super::*;
use crate::audit::{event, Outcome};
use crate::both_backends;
use crate::testing::Harness;
use crate::users::{Password, Role};

/// Unix ms of a local time in UTC+8 ("2024-03-05 10:00" is a Tuesday).
fn local(text: &str) -> i64 {
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("test time");
    naive.and_utc().timestamp_millis() - 8 * 3_600_000
}

fn scripted(actor: &Actor, action: &str, outcome: Outcome, at: i64, ip: &str) -> AuditEvent {
    let mut entry = event(Some(actor), action, outcome);
    entry.at = at;
    entry.source_ip = Some(ip.to_owned());
    entry
}

/// A failed login for a name, as the login path records it (no actor id).
fn failed_login(name: &str, at: i64, ip: &str) -> AuditEvent {
    let mut entry = event(None, "auth.login", Outcome::Failed);
    entry.actor_name = Some(name.to_owned());
    entry.at = at;
    entry.source_ip = Some(ip.to_owned());
    entry
}

/// `count` entries of `action` by `actor`, `step_ms` apart from `start`.
fn burst(actor: &Actor, action: &str, start: i64, step_ms: i64, count: usize) -> Vec<AuditEvent> {
    (0..count)
        .map(|index| {
            scripted(
                actor,
                action,
                Outcome::Ok,
                start + index as i64 * step_ms,
                "10.0.0.5",
            )
            .customers([format!("customer-{index}")])
        })
        .collect()
}

async fn alerts(veil: &Veil, rule: &str) -> Vec<AlertRow> {
    let mut rows = veil
        .store()
        .list_security_alerts(&AlertFilter::default(), 1000)
        .await
        .unwrap();
    rows.retain(|row| row.rule == rule);
    rows.reverse();
    rows
}

async fn alerts_for(veil: &Veil, rule: &str, actor: &Actor) -> Vec<AlertRow> {
    let user = actor.user_id.to_string();
    let mut rows = alerts(veil, rule).await;
    rows.retain(|row| row.user_id.as_deref() == Some(user.as_str()));
    rows
}

async fn run(veil: &Veil) -> MonitorRun {
    veil.run_monitor_once().await.expect("monitor pass")
}

async fn user(harness: &Harness, name: &str) -> Actor {
    harness.actor(name, Role::Sales, Some("east")).await
}

both_backends!(
    reveal_burst_fires_once_per_window_and_not_below_threshold,
    |harness| {
        let veil = &harness.veil;
        let steady = user(&harness, "steady").await;
        let greedy = user(&harness, "greedy").await;
        let morning = local("2024-03-05 09:00");
        // Normal: 19 reveals an hour, two hours running.
        veil.record(&burst(&steady, "customer.reveal", morning, 3 * 60_000, 19))
            .await
            .unwrap();
        veil.record(&burst(
            &steady,
            "customer.reveal",
            morning + 3_600_000,
            3 * 60_000,
            19,
        ))
        .await
        .unwrap();
        // Scripted: 45 reveals in 45 minutes.
        veil.record(&burst(&greedy, "customer.reveal", morning, 60_000, 45))
            .await
            .unwrap();
        let pass = run(veil).await;
        assert!(pass.processed >= 83, "{pass:?}");
        assert!(alerts_for(veil, "reveal_burst", &steady).await.is_empty());
        let fired = alerts_for(veil, "reveal_burst", &greedy).await;
        assert_eq!(fired.len(), 1, "one alert per user per window: {fired:?}");
        let alert = &fired[0];
        assert_eq!(alert.severity, "high");
        assert_eq!(alert.username.as_deref(), Some("greedy"));
        let evidence: serde_json::Value = serde_json::from_str(&alert.evidence).unwrap();
        assert_eq!(evidence["count"], 20);
        assert_eq!(evidence["audit_seqs"].as_array().unwrap().len(), 20);
        assert!(!alert.summary.contains("customer-"), "{}", alert.summary);
        // The alert is in the audit log, naming the rule and the alert.
        let audited = veil
            .store()
            .query_audit(
                &AuditFilter {
                    action: Some("security.alert".to_owned()),
                    ..AuditFilter::default()
                },
                10,
            )
            .await
            .unwrap();
        assert!(audited.iter().any(|entry| {
            let detail: serde_json::Value = serde_json::from_str(&entry.event.detail).unwrap();
            detail["rule"] == "reveal_burst" && detail["alert_id"] == alert.id.as_str()
        }));
        // Nothing new: a second pass raises nothing. An hour later the burst goes on: one more alert.
        assert!(run(veil).await.alerts.is_empty());
        veil.record(&burst(
            &greedy,
            "customer.reveal",
            morning + 2 * 3_600_000,
            60_000,
            20,
        ))
        .await
        .unwrap();
        run(veil).await;
        assert_eq!(alerts_for(veil, "reveal_burst", &greedy).await.len(), 2);
    }
);

both_backends!(list_scraping_fires_on_fast_paging_only, |harness| {
    let veil = &harness.veil;
    let browser = user(&harness, "browser").await;
    let scraper = user(&harness, "scraper").await;
    let start = local("2024-03-05 11:00");
    // Normal: a page every 5 seconds (12 a minute) for ten minutes.
    veil.record(&burst(&browser, "customer.list", start, 5_000, 120))
        .await
        .unwrap();
    // Scripted: 60 pages in 30 seconds, searches included.
    let mut pages = burst(&scraper, "customer.list", start, 1_000, 40);
    pages.extend(burst(&scraper, "customer.search", start + 40_000, 500, 20));
    veil.record(&pages).await.unwrap();
    run(veil).await;
    assert!(alerts_for(veil, "list_scraping", &browser).await.is_empty());
    let fired = alerts_for(veil, "list_scraping", &scraper).await;
    assert!(!fired.is_empty() && fired.len() <= 2, "{fired:?}");
    let evidence: serde_json::Value = serde_json::from_str(&fired[0].evidence).unwrap();
    assert_eq!(evidence["count"], 30);
});

both_backends!(
    off_hours_access_fires_at_night_and_weekends_only,
    |harness| {
        let veil = &harness.veil;
        let day = user(&harness, "daytime").await;
        let night = user(&harness, "nightowl").await;
        let weekend = user(&harness, "weekender").await;
        let mut events = vec![
            scripted(
                &day,
                "auth.login",
                Outcome::Ok,
                local("2024-03-05 08:00"),
                "10.0.0.5",
            ),
            scripted(
                &day,
                "customer.read",
                Outcome::Ok,
                local("2024-03-05 19:59"),
                "10.0.0.5",
            ),
            // Not access to customer data: a logout at night, a failed read.
            scripted(
                &day,
                "auth.logout",
                Outcome::Ok,
                local("2024-03-05 23:00"),
                "10.0.0.5",
            ),
            scripted(
                &day,
                "customer.read",
                Outcome::Denied,
                local("2024-03-05 23:30"),
                "10.0.0.5",
            ),
        ];
        // 03:00 on a Wednesday, twice within the de-duplication window.
        events.push(scripted(
            &night,
            "customer.read",
            Outcome::Ok,
            local("2024-03-06 03:00"),
            "10.0.0.6",
        ));
        events.push(scripted(
            &night,
            "customer.list",
            Outcome::Ok,
            local("2024-03-06 03:20"),
            "10.0.0.6",
        ));
        // Saturday 11:00.
        events.push(scripted(
            &weekend,
            "customer.update",
            Outcome::Ok,
            local("2024-03-09 11:00"),
            "10.0.0.7",
        ));
        veil.record(&events).await.unwrap();
        run(veil).await;
        assert!(alerts_for(veil, "off_hours_access", &day).await.is_empty());
        let fired = alerts_for(veil, "off_hours_access", &night).await;
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert_eq!(fired[0].severity, "low");
        assert!(fired[0].summary.contains("03:00"), "{}", fired[0].summary);
        assert_eq!(
            alerts_for(veil, "off_hours_access", &weekend).await.len(),
            1
        );
    }
);

both_backends!(large_export_compares_with_the_users_usual, |harness| {
    let veil = &harness.veil;
    let regular = user(&harness, "regular").await;
    let unusual = user(&harness, "unusual").await;
    let start = local("2024-03-05 10:00");
    let export = |actor: &Actor, rows: u64, offset: i64| {
        scripted(
            actor,
            "customer.export",
            Outcome::Ok,
            start + offset * 60_000,
            "10.0.0.5",
        )
        .detail(json!({"rows": rows}))
    };
    // Normal: a user who always exports ~500 rows; small exports from a new user.
    let mut events: Vec<AuditEvent> = [480, 510, 500, 495, 1_400]
        .iter()
        .enumerate()
        .map(|(index, rows)| export(&regular, *rows, index as i64))
        .collect();
    events.push(export(&unusual, 40, 10));
    events.push(export(&unusual, 60, 11));
    events.push(export(&unusual, 50, 12));
    // Scripted: 50 × their median.
    events.push(export(&unusual, 2_500, 13));
    veil.record(&events).await.unwrap();
    run(veil).await;
    assert!(alerts_for(veil, "large_export", &regular).await.is_empty());
    let fired = alerts_for(veil, "large_export", &unusual).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    let evidence: serde_json::Value = serde_json::from_str(&fired[0].evidence).unwrap();
    assert_eq!(evidence["rows"], 2_500);
    assert_eq!(evidence["baseline_rows"], 50);
});

both_backends!(
    failed_login_bursts_fire_per_account_and_per_address,
    |harness| {
        let veil = &harness.veil;
        let target = user(&harness, "target").await;
        let start = local("2024-03-05 10:00");
        let mut events = Vec::new();
        // Normal: a few typos spread over the morning from the office.
        for index in 0..9 {
            events.push(failed_login(
                "target",
                start + index * 20 * 60_000,
                "10.0.0.5",
            ));
        }
        // Scripted: 12 wrong passwords for one account in two minutes, from rotating addresses.
        for index in 0..12 {
            events.push(failed_login(
                "target",
                start + 4 * 3_600_000 + index * 10_000,
                &format!("203.0.113.{index}"),
            ));
        }
        // Scripted: one address spraying 15 different names (one of them a mistyped phone number).
        for index in 0..15 {
            let name = if index == 3 {
                "13912345678".to_owned()
            } else {
                format!("guess{index}")
            };
            events.push(failed_login(
                &name,
                start + 5 * 3_600_000 + index * 5_000,
                "198.51.100.9",
            ));
        }
        veil.record(&events).await.unwrap();
        run(veil).await;
        let by_account = alerts(veil, "failed_login_burst_account").await;
        assert_eq!(by_account.len(), 1, "{by_account:?}");
        assert_eq!(
            by_account[0].user_id.as_deref(),
            Some(target.user_id.to_string().as_str())
        );
        assert_eq!(by_account[0].username.as_deref(), Some("target"));
        let by_address = alerts(veil, "failed_login_burst_address").await;
        assert_eq!(by_address.len(), 1, "{by_address:?}");
        assert_eq!(by_address[0].source_ip.as_deref(), Some("198.51.100.9"));
        // Names typed that are not accounts are kept nowhere in alerts.
        for alert in by_account.iter().chain(&by_address) {
            let text = format!("{alert:?}");
            assert!(
                !text.contains("13912345678") && !text.contains("guess"),
                "{text}"
            );
        }
    }
);

both_backends!(new_login_address_needs_history_and_fires_once, |harness| {
    let veil = &harness.veil;
    let fresh = user(&harness, "fresh").await;
    let settled = user(&harness, "settled").await;
    let start = local("2024-03-04 09:00");
    let day = 24 * 3_600_000;
    let mut events = Vec::new();
    // A new user's first logins come from anywhere: no history, no alert.
    for (index, ip) in ["10.0.0.1", "10.0.0.2", "10.0.0.3"].iter().enumerate() {
        events.push(scripted(
            &fresh,
            "auth.login",
            Outcome::Ok,
            start + index as i64 * day,
            ip,
        ));
    }
    // An established user: office and home, then once from somewhere new, then that address again.
    for index in 0..6 {
        let ip = if index % 2 == 0 {
            "10.1.0.1"
        } else {
            "10.1.0.2"
        };
        events.push(scripted(
            &settled,
            "auth.login",
            Outcome::Ok,
            start + index * 3_600_000,
            ip,
        ));
    }
    // A failed login from a new address is not a login.
    events.push(scripted(
        &settled,
        "auth.login",
        Outcome::Failed,
        start + 7 * 3_600_000,
        "192.0.2.66",
    ));
    events.push(scripted(
        &settled,
        "auth.login",
        Outcome::Ok,
        start + 8 * 3_600_000,
        "192.0.2.77",
    ));
    events.push(scripted(
        &settled,
        "auth.login",
        Outcome::Ok,
        start + 9 * 3_600_000,
        "192.0.2.77",
    ));
    events.push(scripted(
        &settled,
        "auth.login",
        Outcome::Ok,
        start + 10 * 3_600_000,
        "10.1.0.1",
    ));
    veil.record(&events).await.unwrap();
    run(veil).await;
    assert!(alerts_for(veil, "new_login_address", &fresh)
        .await
        .is_empty());
    let fired = alerts_for(veil, "new_login_address", &settled).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].source_ip.as_deref(), Some("192.0.2.77"));
});

both_backends!(
    a_restarted_monitor_remembers_its_windows_and_history,
    |harness| {
        let greedy = user(&harness, "greedy").await;
        let start = local("2024-03-05 10:00");
        // Before the restart: 15 reveals and 6 logins from the office.
        harness
            .veil
            .record(&burst(&greedy, "customer.reveal", start, 60_000, 15))
            .await
            .unwrap();
        let logins: Vec<AuditEvent> = (0..6)
            .map(|index| {
                scripted(
                    &greedy,
                    "auth.login",
                    Outcome::Ok,
                    start + index * 1_000,
                    "10.0.0.5",
                )
            })
            .collect();
        harness.veil.record(&logins).await.unwrap();
        assert!(run(&harness.veil).await.alerts.is_empty());
        // Another process (a restart) carries on: 5 more reveals complete the burst; an office login is not new.
        let restarted = harness.reopen().await;
        let mut more = burst(&greedy, "customer.reveal", start + 20 * 60_000, 60_000, 5);
        more.push(scripted(
            &greedy,
            "auth.login",
            Outcome::Ok,
            start + 30 * 60_000,
            "10.0.0.5",
        ));
        restarted.record(&more).await.unwrap();
        let pass = run(&restarted).await;
        assert!(
            (6..10).contains(&pass.processed),
            "resumes from the stored cursor: {pass:?}"
        );
        assert_eq!(
            alerts_for(&restarted, "reveal_burst", &greedy).await.len(),
            1
        );
        assert!(alerts_for(&restarted, "new_login_address", &greedy)
            .await
            .is_empty());
        restarted.store().close().await;
    }
);

both_backends!(
    lock_account_disables_the_user_and_ends_their_session,
    |harness| {
        let veil = &harness.veil;
        let admin = harness.actor("admin1", Role::Admin, None).await;
        let mut config = MonitorConfig::default();
        config.reveal_burst.actions = vec![
            RuleAction::Alert,
            RuleAction::LockAccount,
            RuleAction::SuspendGrants,
        ];
        config.off_hours_access.enabled = false;
        veil.set_monitor_config(&admin, &config).await.unwrap();
        assert_eq!(veil.monitor_config().await.unwrap(), config);
        let greedy = user(&harness, "greedy").await;
        let session = veil
            .login("greedy", &Password::new("correct horse battery".to_owned()))
            .await
            .unwrap();
        assert!(veil.authenticate(session.token.expose()).await.is_ok());
        // A live grant the rule will suspend.
        veil.store()
            .insert_grant(
                &veil_store::GrantRow {
                    id: "grant-of-greedy".to_owned(),
                    request_id: "request-of-greedy".to_owned(),
                    user_id: greedy.user_id.to_string(),
                    customer_ids: "[]".to_owned(),
                    fields: "[\"phone\"]".to_owned(),
                    mode: "view".to_owned(),
                    purpose: "customer_service".to_owned(),
                    created_at: now_ms(),
                    expires_at: now_ms() + 3_600_000,
                    max_reveals: None,
                    reveals_used: 0,
                    revoked_at: None,
                    revoked_by: None,
                    revoke_reason: None,
                },
                &[],
            )
            .await
            .unwrap();
        veil.record(&burst(
            &greedy,
            "customer.reveal",
            local("2024-03-05 10:00"),
            1_000,
            20,
        ))
        .await
        .unwrap();
        let pass = run(veil).await;
        assert_eq!(pass.alerts.len(), 1, "{pass:?}");
        let actions = pass.alerts[0].actions_taken.as_array().unwrap().clone();
        assert_eq!(actions[1]["action"], "lock_account");
        assert_eq!(
            actions[1]["result"],
            "account disabled; sessions and API tokens revoked"
        );
        assert_eq!(actions[2]["action"], "suspend_grants");
        assert_eq!(actions[2]["result"], "1 active grant(s) revoked");
        let grant = veil
            .store()
            .grant("grant-of-greedy")
            .await
            .unwrap()
            .unwrap();
        assert!(grant.revoked_at.is_some());
        assert!(matches!(
            veil.authenticate(session.token.expose()).await,
            Err(AppError::Unauthenticated)
        ));
        assert!(veil
            .login("greedy", &Password::new("correct horse battery".to_owned()))
            .await
            .is_err());
        let disabled = veil
            .store()
            .user_by_username("greedy")
            .await
            .unwrap()
            .unwrap();
        assert!(disabled.disabled);
    }
);

both_backends!(
    alerts_are_listed_and_acknowledged_by_security_staff,
    |harness| {
        let veil = &harness.veil;
        let admin = harness.actor("admin1", Role::Admin, None).await;
        let auditor = harness.actor("auditor1", Role::Auditor, None).await;
        let sales = user(&harness, "greedy").await;
        veil.record(&burst(
            &sales,
            "customer.reveal",
            local("2024-03-05 10:00"),
            1_000,
            20,
        ))
        .await
        .unwrap();
        run(veil).await;
        assert!(matches!(
            veil.list_alerts(&sales, &AlertQuery::default()).await,
            Err(AppError::Forbidden(_))
        ));
        let page = veil
            .list_alerts(&auditor, &AlertQuery::default())
            .await
            .unwrap();
        let alert = page
            .items
            .iter()
            .find(|alert| alert.rule == "reveal_burst")
            .unwrap()
            .clone();
        assert!(matches!(
            veil.acknowledge_alert(&auditor, &alert.id).await,
            Err(AppError::Forbidden(_))
        ));
        let acknowledged = veil.acknowledge_alert(&admin, &alert.id).await.unwrap();
        assert_eq!(
            acknowledged.acknowledged_by,
            Some(admin.user_id.to_string())
        );
        assert!(matches!(
            veil.acknowledge_alert(&admin, &alert.id).await,
            Err(AppError::Conflict(_))
        ));
        assert!(matches!(
            veil.acknowledge_alert(&admin, "no-such-alert").await,
            Err(AppError::NotFound)
        ));
        let open = veil
            .list_alerts(&admin, &AlertQuery::default())
            .await
            .unwrap();
        assert!(open.items.iter().all(|item| item.id != alert.id));
        let all = veil
            .list_alerts(
                &admin,
                &AlertQuery {
                    status: Some(AlertStatus::All),
                    ..AlertQuery::default()
                },
            )
            .await
            .unwrap();
        assert!(all.items.iter().any(|item| item.id == alert.id));
    }
);

#[test]
fn configuration_errors_name_the_field() {
    let field_of = |text: &str| match MonitorConfig::from_json(text) {
        Err(AppError::Validation(errors)) => errors[0].field.clone(),
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(
        field_of(r#"{"reveal_burst": {"threshold": "many"}}"#),
        "monitor.config.reveal_burst.threshold"
    );
    assert_eq!(
        field_of(r#"{"reveal_burst": {"threshold": 0}}"#),
        "monitor.config.reveal_burst.threshold"
    );
    assert_eq!(
        field_of(r#"{"off_hours_access": {"end_hour": 25}}"#),
        "monitor.config.off_hours_access.end_hour"
    );
    assert_eq!(
        field_of(r#"{"failed_login_burst_address": {"actions": ["lock_account"]}}"#),
        "monitor.config.failed_login_burst_address.actions"
    );
    assert!(field_of(r#"{"reveal_burts": {}}"#).starts_with("monitor.config"));
    // Partial rules keep their own defaults.
    let config = MonitorConfig::from_json(r#"{"list_scraping": {"threshold": 50}}"#).unwrap();
    assert_eq!(config.list_scraping.threshold, 50);
    assert_eq!(config.list_scraping.window_minutes, 1);
    assert_eq!(config.reveal_burst, MonitorConfig::default().reveal_burst);
    assert_eq!(
        MonitorConfig::from_json("{}").unwrap(),
        MonitorConfig::default()
    );
}

#[test]
fn working_hours_follow_the_configured_zone() {
    let rule = MonitorConfig::default().off_hours_access;
    assert!(!outside_working_hours(&rule, local("2024-03-05 08:00")));
    assert!(!outside_working_hours(&rule, local("2024-03-05 19:59")));
    assert!(outside_working_hours(&rule, local("2024-03-05 20:00")));
    assert!(outside_working_hours(&rule, local("2024-03-05 07:59")));
    assert!(
        outside_working_hours(&rule, local("2024-03-10 12:00")),
        "Sunday"
    );
    let night_shift = OffHoursRule {
        start_hour: 22,
        end_hour: 6,
        weekdays_only: false,
        ..rule
    };
    assert!(!outside_working_hours(
        &night_shift,
        local("2024-03-10 23:00")
    ));
    assert!(outside_working_hours(
        &night_shift,
        local("2024-03-10 12:00")
    ));
}

/// One HTTP request as a listener received it.
struct Received {
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// A real HTTP/1.1 listener on a loopback port that answers every request with `status` and hands the requests
/// to the test.
async fn webhook_listener(status: u16) -> (String, tokio::sync::mpsc::UnboundedReceiver<Received>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/veil", listener.local_addr().unwrap());
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                let read = socket.read(&mut chunk).await.unwrap_or(0);
                if read == 0 {
                    break None;
                }
                buffer.extend_from_slice(&chunk[..read]);
                if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                    break Some(end + 4);
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
            let headers: HashMap<String, String> = head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
                .collect();
            let length: usize = headers
                .get("content-length")
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            while buffer.len() < head_end + length {
                let read = socket.read(&mut chunk).await.unwrap_or(0);
                if read == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..read]);
            }
            let body = buffer[head_end..].to_vec();
            let reply = format!(
                "HTTP/1.1 {status} Status\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = socket.write_all(reply.as_bytes()).await;
            let _ = socket.shutdown().await;
            let _ = sender.send(Received { headers, body });
        }
    });
    (url, receiver)
}

const WEBHOOK_SECRET: &str = "webhook-secret-for-tests-0123456789";

fn webhook_notifier(url: &str) -> Notifier {
    Notifier::new(NotifierConfig {
        webhook: Some(WebhookTarget {
            url: url.to_owned(),
            secret: Secret::new(WEBHOOK_SECRET),
        }),
        email: None,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_signed_and_failed_deliveries_are_retried() {
    let harness = Harness::sqlite().await;
    let veil = &harness.veil;
    let greedy = user(&harness, "greedy").await;
    // First the receiver is failing (HTTP 503): the alert is raised anyway and the failure counted.
    let (failing_url, mut failing) = webhook_listener(503).await;
    veil.set_notifier(Some(webhook_notifier(&failing_url)));
    veil.record(&burst(
        &greedy,
        "customer.reveal",
        local("2024-03-05 10:00"),
        1_000,
        20,
    ))
    .await
    .unwrap();
    let pass = run(veil).await;
    assert_eq!(pass.alerts.len(), 1);
    assert_eq!((pass.delivered, pass.delivery_failures), (0, 1));
    failing
        .recv()
        .await
        .expect("the failing receiver was called");
    let alert_id = pass.alerts[0].id.clone();
    let stored = veil
        .store()
        .security_alert(&alert_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.webhook_attempts, 1);
    assert_eq!(stored.webhook_delivered_at, None);
    // The receiver recovers: the next pass delivers, signed.
    let (url, mut received) = webhook_listener(200).await;
    veil.set_notifier(Some(webhook_notifier(&url)));
    let pass = run(veil).await;
    assert_eq!((pass.delivered, pass.delivery_failures), (1, 0));
    let request = received.recv().await.expect("webhook received");
    let header = request
        .headers
        .get("x-veil-signature")
        .expect("signature header");
    let (timestamp, signed) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .expect("t=…,v1=…");
    let timestamp: i64 = timestamp.parse().unwrap();
    assert!((now_ms() / 1000 - timestamp).abs() < 300);
    assert_eq!(
        signed,
        signature(WEBHOOK_SECRET.as_bytes(), timestamp, &request.body)
    );
    assert_ne!(
        signed,
        signature(b"another secret", timestamp, &request.body)
    );
    let payload: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(payload["id"], alert_id.as_str());
    assert_eq!(payload["rule"], "reveal_burst");
    assert!(!String::from_utf8_lossy(&request.body).contains("customer-"));
    // Delivered once: the next pass sends nothing.
    assert_eq!(run(veil).await.delivered, 0);
    let stored = veil
        .store()
        .security_alert(&alert_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.webhook_delivered_at.is_some());
    harness.finish().await;
}

/// A real SMTP server (Python's aiosmtpd) writing each message to a directory; killed on drop.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_smtp_sink(out_dir: &Path) -> Option<SmtpSink> {
    let importable = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !importable {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but python3 cannot import aiosmtpd (pip install aiosmtpd)");
        }
        eprintln!("python3 with aiosmtpd not available: skipping the SMTP delivery test");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(out_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the SMTP sink");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready", "SMTP sink did not start");
    Some(SmtpSink { child, port })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_server_without_personal_data() {
    let mailbox = tempfile::tempdir().unwrap();
    let Some(sink) = start_smtp_sink(mailbox.path()) else {
        return;
    };
    let harness = Harness::sqlite().await;
    let veil = &harness.veil;
    let admin = harness.actor("admin1", Role::Admin, None).await;
    // A real customer, so the test can prove its data stays out of the email.
    let input = crate::customers::CustomerInput {
        name: Some("欧阳娜娜".to_owned()),
        phone: Some("13912345678".to_owned()),
        ..crate::customers::CustomerInput::default()
    };
    let customer = veil.create_customer(&admin, &input, true).await.unwrap();
    let greedy = user(&harness, "greedy").await;
    let reveals: Vec<AuditEvent> = (0..20)
        .map(|index| {
            scripted(
                &greedy,
                "customer.reveal",
                Outcome::Ok,
                local("2024-03-05 10:00") + index * 1_000,
                "10.0.0.5",
            )
            .customers([customer.id.to_string()])
            .fields(["phone"])
        })
        .collect();
    veil.record(&reveals).await.unwrap();
    veil.set_notifier(Some(
        Notifier::new(NotifierConfig {
            webhook: None,
            email: Some(EmailTarget {
                smtp_url: Secret::new(format!("smtp://127.0.0.1:{}", sink.port)),
                from: "veil@example.com".to_owned(),
                to: vec![
                    "security@example.com".to_owned(),
                    "dpo@example.com".to_owned(),
                ],
            }),
        })
        .unwrap(),
    ));
    let pass = run(veil).await;
    let alert = pass
        .alerts
        .iter()
        .find(|alert| alert.rule == "reveal_burst")
        .expect("alert raised")
        .clone();
    assert!(pass.delivered >= 1, "{pass:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let message = loop {
        let found = std::fs::read_dir(mailbox.path())
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
            .map(|path| std::fs::read_to_string(path).unwrap())
            .find(|text| text.contains(&alert.id));
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no email arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        message.contains("Subject: [Veil security] high alert: reveal_burst"),
        "{message}"
    );
    assert!(message.contains("security@example.com") && message.contains("dpo@example.com"));
    assert!(
        message.contains("revealed customer data 20 times"),
        "{message}"
    );
    for plaintext in ["13912345678", "欧阳娜娜", "5678"] {
        assert!(!message.contains(plaintext), "email contains {plaintext}");
    }
    let stored = veil
        .store()
        .security_alert(&alert.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.email_delivered_at.is_some());
    harness.finish().await;
}
