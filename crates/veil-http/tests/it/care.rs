//! Care reminders over HTTP: a birthday that only the resident ID number holds fires on the right day for the
//! owner, nobody else's salesperson sees it, and neither the ID number nor the full birth date ever leaves the
//! server (responses and logs).

use axum::http::{Method, StatusCode};
use chrono::{Datelike, Duration};
use serde_json::{json, Value};
use veil_app::both_backends;
use veil_app::users::Role;

use crate::{add_user, captured_logs, Client};

/// An 18-digit resident ID number (Dongcheng, Beijing) born on `birth` (`YYYYMMDD`), with its ISO 7064 check digit.
fn id_number(birth: &str) -> String {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let first17 = format!("110101{birth}357");
    let sum: u32 = first17
        .bytes()
        .zip(WEIGHTS)
        .map(|(digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{first17}{check}")
}

fn birthdays(body: &Value) -> Vec<&Value> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["kind"] == "birthday")
        .collect()
}

both_backends!(
    a_birthday_only_the_id_number_holds_fires_on_the_right_day,
    |harness| {
        add_user(&harness, "sally", Role::Sales, Some("east")).await;
        add_user(&harness, "sam", Role::Sales, Some("east")).await;
        add_user(&harness, "mona", Role::Manager, Some("east")).await;
        add_user(&harness, "dora", Role::Dpo, None).await;
        let client = Client::new(&harness).await;
        let sally = client.login("sally").await;
        let sam = client.login("sam").await;
        let mona = client.login("mona").await;
        let dora = client.login("dora").await;
        // Born in 1988 (a leap year, so every month and day exists), three days from today in China.
        let china = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let today = chrono::Utc::now().with_timezone(&china).date_naive();
        let birthday = today + Duration::days(3);
        let birth = format!("1988{:02}{:02}", birthday.month(), birthday.day());
        let full_birth_date = format!("1988-{:02}-{:02}", birthday.month(), birthday.day());
        let id = id_number(&birth);
        let created = client
            .send(
                Method::POST,
                "/api/v1/customers",
                Some(&sally),
                Some(json!({"name": "欧阳娜娜", "id_number": id})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.raw);
        let customer = created.body["id"].as_str().unwrap().to_owned();

        let reply = client
            .send(Method::GET, "/api/v1/reminders?days=7", Some(&sally), None)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
        let found = birthdays(&reply.body);
        assert_eq!(found.len(), 1, "{}", reply.raw);
        assert_eq!(found[0]["customer_id"], customer.as_str());
        assert_eq!(found[0]["days_until"], 3);
        assert_eq!(found[0]["date"], birthday.to_string());
        assert_eq!(
            found[0]["month_day"],
            format!("{:02}-{:02}", birthday.month(), birthday.day())
        );
        assert_eq!(found[0]["customer_name"], "欧阳**");
        assert_eq!(reply.body["days"], 7);
        for secret in [
            id.as_str(),
            birth.as_str(),
            full_birth_date.as_str(),
            "欧阳娜娜",
        ] {
            assert!(!reply.raw.contains(secret), "{secret} in {}", reply.raw);
        }
        // Holidays come with it; a window that ends before the birthday has none of it.
        let short = client
            .send(Method::GET, "/api/v1/reminders?days=2", Some(&sally), None)
            .await;
        assert_eq!(short.status, StatusCode::OK, "{}", short.raw);
        assert!(birthdays(&short.body).is_empty(), "{}", short.raw);
        let default = client
            .send(Method::GET, "/api/v1/reminders", Some(&sally), None)
            .await;
        assert_eq!(default.body["days"], 7);
        assert_eq!(birthdays(&default.body).len(), 1);

        // The manager of the team sees it; another salesperson does not.
        let team = client
            .send(Method::GET, "/api/v1/reminders", Some(&mona), None)
            .await;
        assert_eq!(birthdays(&team.body).len(), 1, "{}", team.raw);
        let other = client
            .send(Method::GET, "/api/v1/reminders", Some(&sam), None)
            .await;
        assert!(birthdays(&other.body).is_empty(), "{}", other.raw);

        // Bounds and roles.
        let too_far = client
            .send(Method::GET, "/api/v1/reminders?days=61", Some(&sally), None)
            .await;
        assert_eq!(
            too_far.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            too_far.raw
        );
        assert!(too_far.content_type.starts_with("application/problem+json"));
        let refused = client
            .send(Method::GET, "/api/v1/reminders", Some(&dora), None)
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.raw);

        let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
        assert!(!logs.contains(&id) && !logs.contains(&full_birth_date));
    }
);
