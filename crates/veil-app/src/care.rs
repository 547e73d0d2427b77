//! Care reminders (客户关怀): the caller's customers' upcoming birthdays and the upcoming holidays, Chinese lunar
//! festivals included.
//!
//! Birthdays come from `customer.birth_md` (`MM-DD`), which [`birth_month_day`] derives in the server when a
//! customer is written — from the birth date, which validation fills from the resident ID number when only that
//! is given. The listing selects birthdays in the window by that column alone: nothing is decrypted, and nobody
//! sees the ID number or the year of birth through this feature, only "birthday on MM-DD, in N days" beside the
//! masked name (masked under the policy in force for the caller's role, as in the customer list).
//!
//! Holidays are rules, not a date table: fixed Gregorian dates, and lunar dates (正月初一, 五月初五, 八月十五, …)
//! converted to the Gregorian calendar for each year by the `chinese-lunisolar-calendar` crate (years 1901–2100;
//! outside them only the fixed-date holidays are listed). 除夕 is the day before 春节, whether the twelfth lunar
//! month has 29 or 30 days.

use std::sync::Arc;

use chinese_lunisolar_calendar::LunisolarDate;
use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;
use veil_store::SensitiveField;

use crate::audit::{self, EventExt, Outcome};
use crate::authz::Action;
use crate::customers::reveal;
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::CustomerId;
use crate::users::Actor;
use crate::Veil;

/// How far ahead a listing looks when the caller does not say.
pub const DEFAULT_DAYS: u32 = 7;
/// The furthest a listing may look ahead.
pub const MAX_DAYS: u32 = 60;
/// Most birthdays one listing returns (the rest are reported as truncated).
pub const MAX_BIRTHDAYS: usize = 500;
/// Customers per backfill batch (one audit entry and one transaction each).
const BACKFILL_BATCH: i64 = 500;

/// The `MM-DD` of a normalised birth date (`YYYY-MM-DD`); `None` for anything else. The year is dropped: it is
/// what, with the day, would make the value personal.
pub fn birth_month_day(birth_date: &str) -> Option<String> {
    let date = veil_pii::Date::parse_iso(birth_date)?;
    Some(format!("{:02}-{:02}", date.month, date.day))
}

/// When a holiday falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HolidayDate {
    /// The same Gregorian month and day every year.
    Gregorian { month: u32, day: u32 },
    /// A day of a (non-leap) lunar month.
    Lunar { month: u8, day: u8 },
    /// The last day of the lunar year (除夕): the day before the next 正月初一.
    LunarNewYearsEve,
}

/// A holiday rule.
#[derive(Debug, Clone, Copy)]
struct HolidayRule {
    key: &'static str,
    name_zh: &'static str,
    name_en: &'static str,
    date: HolidayDate,
}

const HOLIDAYS: &[HolidayRule] = &[
    HolidayRule {
        key: "new_year",
        name_zh: "元旦",
        name_en: "New Year's Day",
        date: HolidayDate::Gregorian { month: 1, day: 1 },
    },
    HolidayRule {
        key: "lunar_new_years_eve",
        name_zh: "除夕",
        name_en: "Lunar New Year's Eve",
        date: HolidayDate::LunarNewYearsEve,
    },
    HolidayRule {
        key: "spring_festival",
        name_zh: "春节",
        name_en: "Spring Festival",
        date: HolidayDate::Lunar { month: 1, day: 1 },
    },
    HolidayRule {
        key: "lantern_festival",
        name_zh: "元宵节",
        name_en: "Lantern Festival",
        date: HolidayDate::Lunar { month: 1, day: 15 },
    },
    HolidayRule {
        key: "womens_day",
        name_zh: "妇女节",
        name_en: "Women's Day",
        date: HolidayDate::Gregorian { month: 3, day: 8 },
    },
    HolidayRule {
        key: "labour_day",
        name_zh: "劳动节",
        name_en: "Labour Day",
        date: HolidayDate::Gregorian { month: 5, day: 1 },
    },
    HolidayRule {
        key: "dragon_boat",
        name_zh: "端午节",
        name_en: "Dragon Boat Festival",
        date: HolidayDate::Lunar { month: 5, day: 5 },
    },
    HolidayRule {
        key: "qixi",
        name_zh: "七夕",
        name_en: "Qixi Festival",
        date: HolidayDate::Lunar { month: 7, day: 7 },
    },
    HolidayRule {
        key: "mid_autumn",
        name_zh: "中秋节",
        name_en: "Mid-Autumn Festival",
        date: HolidayDate::Lunar { month: 8, day: 15 },
    },
    HolidayRule {
        key: "double_ninth",
        name_zh: "重阳节",
        name_en: "Double Ninth Festival",
        date: HolidayDate::Lunar { month: 9, day: 9 },
    },
    HolidayRule {
        key: "national_day",
        name_zh: "国庆节",
        name_en: "National Day",
        date: HolidayDate::Gregorian { month: 10, day: 1 },
    },
    HolidayRule {
        key: "christmas",
        name_zh: "圣诞节",
        name_en: "Christmas",
        date: HolidayDate::Gregorian { month: 12, day: 25 },
    },
];

/// One holiday in one year.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    /// Stable key (`spring_festival`, `mid_autumn`, `national_day`, …).
    pub key: &'static str,
    /// Chinese name (春节, 中秋节, …).
    pub name_zh: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Whether the date follows the lunar calendar.
    pub lunar: bool,
    /// The Gregorian date.
    pub date: NaiveDate,
}

/// A holiday as a reminder names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HolidayView {
    /// Stable key (`spring_festival`, `mid_autumn`, `national_day`, …).
    pub key: String,
    /// Chinese name (春节, 中秋节, …).
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Whether the date follows the lunar calendar.
    pub lunar: bool,
}

impl From<&Holiday> for HolidayView {
    fn from(holiday: &Holiday) -> Self {
        HolidayView {
            key: holiday.key.to_owned(),
            name_zh: holiday.name_zh.to_owned(),
            name_en: holiday.name_en.to_owned(),
            lunar: holiday.lunar,
        }
    }
}

/// The Gregorian date of lunar `month`/`day` in the lunar year that starts in Gregorian `year`.
fn lunar_to_gregorian(year: i32, month: u8, day: u8) -> Option<NaiveDate> {
    let year = u16::try_from(year).ok()?;
    LunisolarDate::from_ymd(year, month, false, day)
        .ok()
        .map(LunisolarDate::to_naive_date)
}

/// Every holiday falling in Gregorian `year`, by date. Lunar festivals of the lunar year that starts in `year`
/// all fall in `year` (正月初一 is between January 21 and February 20, so 除夕 is too, and 九月初九 is before
/// December).
pub fn holidays_in(year: i32) -> Vec<Holiday> {
    let mut holidays: Vec<Holiday> = HOLIDAYS
        .iter()
        .filter_map(|rule| {
            let date = match rule.date {
                HolidayDate::Gregorian { month, day } => NaiveDate::from_ymd_opt(year, month, day),
                HolidayDate::Lunar { month, day } => lunar_to_gregorian(year, month, day),
                HolidayDate::LunarNewYearsEve => {
                    lunar_to_gregorian(year, 1, 1).and_then(|date| date.pred_opt())
                }
            }?;
            Some(Holiday {
                key: rule.key,
                name_zh: rule.name_zh,
                name_en: rule.name_en,
                lunar: !matches!(rule.date, HolidayDate::Gregorian { .. }),
                date,
            })
        })
        .collect();
    holidays.sort_by_key(|holiday| holiday.date);
    holidays
}

/// The holidays from `today` to `today + days` (both included), by date.
pub fn upcoming_holidays(today: NaiveDate, days: u32) -> Vec<Holiday> {
    let last = today + Duration::days(i64::from(days));
    (today.year()..=last.year())
        .flat_map(holidays_in)
        .filter(|holiday| holiday.date >= today && holiday.date <= last)
        .collect()
}

/// The `MM-DD` values whose birthday is celebrated on each day from `today` to `today + days`, with that day.
/// A 29 February birthday is celebrated on 28 February in a common year.
pub fn birthday_window(today: NaiveDate, days: u32) -> Vec<(String, NaiveDate)> {
    let mut window = Vec::new();
    for offset in 0..=i64::from(days) {
        let date = today + Duration::days(offset);
        window.push((format!("{:02}-{:02}", date.month(), date.day()), date));
        let common_year = NaiveDate::from_ymd_opt(date.year(), 2, 29).is_none();
        if common_year && date.month() == 2 && date.day() == 28 {
            window.push(("02-29".to_owned(), date));
        }
    }
    window
}

/// What a reminder is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReminderKind {
    /// A customer's birthday.
    Birthday,
    /// A holiday.
    Holiday,
}

/// One upcoming event. A birthday names the customer (masked) and its day, never the year of birth.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reminder {
    /// `birthday` or `holiday`.
    pub kind: ReminderKind,
    /// The day it falls on (`YYYY-MM-DD`, this occurrence).
    pub date: String,
    /// Month and day (`MM-DD`).
    pub month_day: String,
    /// Days from today (0: today).
    pub days_until: u32,
    /// The customer (birthdays).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub customer_id: Option<CustomerId>,
    /// The customer's name as the caller's role sees it (masked by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// The holiday (holidays).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holiday: Option<HolidayView>,
}

/// Upcoming birthdays and holidays, soonest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reminders {
    /// The first day of the window (today in China Standard Time).
    pub today: String,
    /// How many days ahead the window reaches.
    pub days: u32,
    /// Birthdays and holidays, by date.
    pub items: Vec<Reminder>,
    /// Whether more birthdays fell in the window than one listing returns.
    pub truncated: bool,
}

fn month_day(date: NaiveDate) -> String {
    format!("{:02}-{:02}", date.month(), date.day())
}

/// Checks the look-ahead a caller asked for.
pub fn validate_days(days: Option<u32>) -> AppResult<u32> {
    let days = days.unwrap_or(DEFAULT_DAYS);
    if days > MAX_DAYS {
        return Err(AppError::Validation(vec![FieldError::new(
            "days",
            "out_of_range",
            format!("must be between 0 and {MAX_DAYS}"),
        )]));
    }
    Ok(days)
}

/// Today in China Standard Time, as a chrono date.
fn today_naive() -> NaiveDate {
    let today = crate::today();
    NaiveDate::from_ymd_opt(today.year, today.month, today.day).unwrap_or_default()
}

impl Veil {
    /// The caller's upcoming care reminders: birthdays of the customers they may list (sales: their own,
    /// managers: their team's, admins: all, service staff: those linked to them) and holidays, from today to
    /// `days` ahead (default 7, at most 60). Recorded like a listing.
    pub async fn reminders(&self, actor: &Actor, days: Option<u32>) -> AppResult<Reminders> {
        self.reminders_on(actor, today_naive(), days).await
    }

    /// [`Veil::reminders`] as seen on `today`.
    pub async fn reminders_on(
        &self,
        actor: &Actor,
        today: NaiveDate,
        days: Option<u32>,
    ) -> AppResult<Reminders> {
        let scope = self.authorize(actor, Action::CustomerList, None).await?;
        let days = validate_days(days)?;
        let window = birthday_window(today, days);
        let month_days: Vec<String> = window.iter().map(|(md, _)| md.clone()).collect();
        let mut rows = self
            .store()
            .masked_customers_by_birth_md(&scope, &month_days, MAX_BIRTHDAYS as i64 + 1)
            .await?;
        let truncated = rows.len() > MAX_BIRTHDAYS;
        rows.truncate(MAX_BIRTHDAYS);
        let birthdays: Vec<(String, Option<String>)> = rows
            .iter()
            .map(|row| (row.id.clone(), row.profile.birth_md.clone()))
            .collect();
        let holidays = upcoming_holidays(today, days);
        self.record(&[audit::event(Some(actor), "reminder.list", Outcome::Ok)
            .customers(birthdays.iter().map(|(id, _)| id.clone()))
            .fields(["name"])
            .detail(serde_json::json!({
                "days": days, "birthdays": birthdays.len(), "holidays": holidays.len(),
                "truncated": truncated
            }))])
        .await?;
        // The name alone goes through the role's policy: the other fields are not shown here.
        for row in &mut rows {
            row.masked.retain(|field, _| *field == SensitiveField::Name);
        }
        let mut views: Vec<_> = rows.into_iter().map(Veil::view).collect();
        self.for_role_fields(actor, &mut views, Some(&[SensitiveField::Name]))
            .await?;
        let mut items = Vec::with_capacity(views.len() + holidays.len());
        for (view, (_, birth_md)) in views.into_iter().zip(&birthdays) {
            let Some(date) = birth_md
                .as_deref()
                .and_then(|md| window.iter().find(|(day, _)| day == md))
                .map(|(_, date)| *date)
            else {
                continue;
            };
            items.push(Reminder {
                kind: ReminderKind::Birthday,
                date: date.to_string(),
                month_day: month_day(date),
                days_until: u32::try_from((date - today).num_days()).unwrap_or_default(),
                customer_id: Some(view.id),
                customer_name: Some(view.name),
                holiday: None,
            });
        }
        for holiday in holidays {
            items.push(Reminder {
                kind: ReminderKind::Holiday,
                date: holiday.date.to_string(),
                month_day: month_day(holiday.date),
                days_until: u32::try_from((holiday.date - today).num_days()).unwrap_or_default(),
                customer_id: None,
                customer_name: None,
                holiday: Some(HolidayView::from(&holiday)),
            });
        }
        items.sort_by(|left, right| {
            (left.days_until, left.kind, &left.customer_name).cmp(&(
                right.days_until,
                right.kind,
                &right.customer_name,
            ))
        });
        Ok(Reminders {
            today: today.to_string(),
            days,
            items,
            truncated,
        })
    }
}

impl Veil {
    /// Derives `birth_md` for customers written before it existed (migration 0021), so that their birthdays are
    /// reminded too. A system use of the birth date, not a reveal: nothing decrypted leaves this function, and no
    /// one sees it. Each batch's audit entry (`care.birthday_backfill`: customers, field, no actor) is committed
    /// before the batch is decrypted (fail closed). Idempotent; `veil serve` runs it once at start. Returns how
    /// many customers got a birthday.
    pub async fn backfill_birthdays(&self) -> AppResult<u64> {
        let authority = reveal::RevealAuthority::birthday_backfill();
        let mut cursor: Option<String> = None;
        let mut derived = 0u64;
        loop {
            let batch = self
                .store()
                .customer_rows_missing_birth_md(cursor.as_deref(), BACKFILL_BATCH)
                .await?;
            let Some(last) = batch.last() else {
                break;
            };
            cursor = Some(last.id.clone());
            let entry = audit::event(None, "care.birthday_backfill", Outcome::Ok)
                .customers(batch.iter().map(|row| row.id.clone()))
                .fields([SensitiveField::BirthDate.as_str()])
                .detail(serde_json::json!({"system_use": "care_reminders", "derives": "birth_md"}));
            self.record(&[entry]).await?;
            let mut values = Vec::with_capacity(batch.len());
            for row in &batch {
                let Some(key_row) = self.store().customer_key(&row.id).await? else {
                    continue;
                };
                let opened = reveal::open_fields(
                    self,
                    &authority,
                    row,
                    &key_row,
                    &[SensitiveField::BirthDate],
                )?;
                if let Some(month_day) = opened
                    .get(&SensitiveField::BirthDate)
                    .and_then(|birth_date| birth_month_day(birth_date))
                {
                    values.push((row.id.clone(), month_day));
                }
            }
            derived += values.len() as u64;
            self.store().set_birth_md(&values, &[]).await?;
        }
        if derived > 0 {
            tracing::info!(customers = derived, "birthdays derived for care reminders");
        }
        Ok(derived)
    }

    /// Runs [`Veil::backfill_birthdays`] once in the background.
    pub fn spawn_birthday_backfill(veil: Arc<Veil>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if let Err(error) = veil.backfill_birthdays().await {
                tracing::warn!(%error, "birthday backfill failed; it runs again at the next start");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::CustomerInput;
    use crate::users::Role;

    fn date(text: &str) -> NaiveDate {
        text.parse().expect("a test date")
    }

    fn holiday_date(year: i32, key: &str) -> Option<String> {
        holidays_in(year)
            .into_iter()
            .find(|holiday| holiday.key == key)
            .map(|holiday| holiday.date.to_string())
    }

    #[test]
    fn lunar_festivals_convert_to_known_gregorian_dates() {
        let cases = [
            (2024, "spring_festival", "2024-02-10"),
            (2025, "spring_festival", "2025-01-29"),
            (2026, "spring_festival", "2026-02-17"),
            (2025, "lunar_new_years_eve", "2025-01-28"),
            (2026, "lunar_new_years_eve", "2026-02-16"),
            (2025, "lantern_festival", "2025-02-12"),
            (2025, "dragon_boat", "2025-05-31"),
            (2026, "dragon_boat", "2026-06-19"),
            (2025, "qixi", "2025-08-29"),
            (2025, "mid_autumn", "2025-10-06"),
            (2026, "mid_autumn", "2026-09-25"),
            (2024, "mid_autumn", "2024-09-17"),
            (2025, "double_ninth", "2025-10-29"),
            (2025, "national_day", "2025-10-01"),
            (2026, "new_year", "2026-01-01"),
        ];
        for (year, key, expected) in cases {
            assert_eq!(
                holiday_date(year, key).as_deref(),
                Some(expected),
                "{key} {year}"
            );
        }
    }

    #[test]
    fn holidays_are_sorted_and_lunar_ones_need_the_supported_range() {
        let holidays = holidays_in(2025);
        assert_eq!(holidays.len(), HOLIDAYS.len());
        assert!(holidays.windows(2).all(|pair| pair[0].date <= pair[1].date));
        assert!(holidays.iter().all(|holiday| holiday.date.year() == 2025));
        // Outside 1901–2100 the lunar calendar crate has no data: fixed dates only.
        let far = holidays_in(2300);
        assert!(!far.is_empty());
        assert!(far.iter().all(|holiday| !holiday.lunar));
    }

    #[test]
    fn upcoming_holidays_cross_the_year_end() {
        let keys: Vec<&str> = upcoming_holidays(date("2025-12-20"), 40)
            .iter()
            .map(|holiday| holiday.key)
            .collect();
        assert_eq!(keys, ["christmas", "new_year"]);
        // 0 days: today only.
        let keys: Vec<&str> = upcoming_holidays(date("2025-10-06"), 0)
            .iter()
            .map(|holiday| holiday.key)
            .collect();
        assert_eq!(keys, ["mid_autumn"]);
    }

    #[test]
    fn birthday_window_celebrates_29_february_on_the_28th_of_common_years() {
        let window = birthday_window(date("2026-02-27"), 2);
        let pairs: Vec<(String, String)> = window
            .iter()
            .map(|(md, day)| (md.clone(), day.to_string()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("02-27".to_owned(), "2026-02-27".to_owned()),
                ("02-28".to_owned(), "2026-02-28".to_owned()),
                ("02-29".to_owned(), "2026-02-28".to_owned()),
                ("03-01".to_owned(), "2026-03-01".to_owned()),
            ]
        );
        let leap: Vec<String> = birthday_window(date("2028-02-28"), 1)
            .into_iter()
            .map(|(md, _)| md)
            .collect();
        assert_eq!(leap, ["02-28", "02-29"]);
    }

    #[test]
    fn month_day_drops_the_year() {
        assert_eq!(birth_month_day("1984-02-27").as_deref(), Some("02-27"));
        assert_eq!(birth_month_day("2000-02-29").as_deref(), Some("02-29"));
        assert_eq!(birth_month_day("1984-2-27"), None);
        assert_eq!(birth_month_day(""), None);
    }

    #[test]
    fn days_are_bounded() {
        assert_eq!(validate_days(None).unwrap(), DEFAULT_DAYS);
        assert_eq!(validate_days(Some(0)).unwrap(), 0);
        assert_eq!(validate_days(Some(60)).unwrap(), 60);
        assert!(matches!(
            validate_days(Some(61)),
            Err(AppError::Validation(_))
        ));
    }

    /// An 18-digit resident ID number born on `birth` (`YYYYMMDD`), with its check digit.
    fn id_number(birth: &str, sequence: &str) -> String {
        let first17 = format!("110101{birth}{sequence}");
        let check = veil_pii::cn_id::check_digit(&first17).expect("17 digits");
        format!("{first17}{check}")
    }

    crate::both_backends!(
        birthdays_from_the_id_number_fire_on_the_right_day,
        |harness| {
            let admin = harness.actor("root", Role::Admin, None).await;
            let sally = harness.actor("sally", Role::Sales, Some("east")).await;
            let sam = harness.actor("sam", Role::Sales, Some("east")).await;
            let manager = harness.actor("mia", Role::Manager, Some("east")).await;
            // Only the ID number holds the birth date.
            let id = id_number("19880305", "123");
            let create =
                |name: &str, id_number: Option<String>, birth_date: Option<&str>| CustomerInput {
                    name: Some(name.to_owned()),
                    id_number,
                    birth_date: birth_date.map(str::to_owned),
                    ..Default::default()
                };
            let from_id = harness
                .veil
                .create_customer(&sally, &create("欧阳娜娜", Some(id.clone()), None), true)
                .await
                .unwrap();
            let from_date = harness
                .veil
                .create_customer(&sam, &create("李四", None, Some("1990-03-10")), true)
                .await
                .unwrap();
            let stored = harness
                .veil
                .store()
                .masked_customer(&from_id.id.to_string())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored.profile.birth_md.as_deref(), Some("03-05"));

            // Two days before: sally sees her customer's birthday, in 2 days, masked; not sam's (in the window too,
            // but not hers).
            let reminders = harness
                .veil
                .reminders_on(&sally, date("2026-03-03"), Some(7))
                .await
                .unwrap();
            let birthdays: Vec<&Reminder> = reminders
                .items
                .iter()
                .filter(|item| item.kind == ReminderKind::Birthday)
                .collect();
            assert_eq!(birthdays.len(), 1, "{reminders:?}");
            assert_eq!(birthdays[0].customer_id, Some(from_id.id));
            assert_eq!(birthdays[0].date, "2026-03-05");
            assert_eq!(birthdays[0].month_day, "03-05");
            assert_eq!(birthdays[0].days_until, 2);
            let name = birthdays[0].customer_name.clone().unwrap();
            assert_ne!(name, "欧阳娜娜");
            assert!(name.contains('*'), "{name}");
            let shown = serde_json::to_string(&reminders).unwrap();
            for secret in [id.as_str(), "1988-03-05", "19880305", "欧阳娜娜"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            // A window of 6 days from 03-04 reaches both customers for the manager, only sam's for sam.
            let team = harness
                .veil
                .reminders_on(&manager, date("2026-03-04"), Some(6))
                .await
                .unwrap();
            let ids: Vec<Option<CustomerId>> = team
                .items
                .iter()
                .filter(|item| item.kind == ReminderKind::Birthday)
                .map(|item| item.customer_id)
                .collect();
            assert_eq!(ids, [Some(from_id.id), Some(from_date.id)]);
            let own = harness
                .veil
                .reminders_on(&sam, date("2026-03-04"), Some(6))
                .await
                .unwrap();
            assert_eq!(
                own.items
                    .iter()
                    .filter(|item| item.kind == ReminderKind::Birthday)
                    .count(),
                1
            );
            // The day after, the birthday is gone from the window.
            let later = harness
                .veil
                .reminders_on(&admin, date("2026-03-06"), Some(3))
                .await
                .unwrap();
            assert!(later
                .items
                .iter()
                .all(|item| item.customer_id != Some(from_id.id)));
            // Changing the birth date moves the reminder.
            harness
                .veil
                .update_customer(
                    &admin,
                    from_date.id,
                    &serde_json::from_value(serde_json::json!({"birth_date": "1990-12-24"}))
                        .unwrap(),
                    true,
                )
                .await
                .unwrap();
            let december = harness
                .veil
                .reminders_on(&admin, date("2026-12-20"), Some(10))
                .await
                .unwrap();
            let keys: Vec<(ReminderKind, u32)> = december
                .items
                .iter()
                .map(|item| (item.kind, item.days_until))
                .collect();
            assert_eq!(
                keys,
                [(ReminderKind::Birthday, 4), (ReminderKind::Holiday, 5)]
            );
            // Customers written before `birth_md` existed get it from the backfill, once.
            harness
                .raw_sql("UPDATE customer SET birth_md = NULL")
                .await
                .unwrap();
            assert!(harness
                .veil
                .reminders_on(&sally, date("2026-03-03"), Some(7))
                .await
                .unwrap()
                .items
                .iter()
                .all(|item| item.kind == ReminderKind::Holiday));
            assert_eq!(harness.veil.backfill_birthdays().await.unwrap(), 2);
            assert_eq!(harness.veil.backfill_birthdays().await.unwrap(), 0);
            let stored = harness
                .veil
                .store()
                .masked_customer(&from_id.id.to_string())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored.profile.birth_md.as_deref(), Some("03-05"));
            let again = harness
                .veil
                .reminders_on(&sally, date("2026-03-03"), Some(7))
                .await
                .unwrap();
            assert!(again
                .items
                .iter()
                .any(|item| item.customer_id == Some(from_id.id)));
            // Roles that do not work with customers are refused; the window is bounded.
            let dpo = harness.actor("dora", Role::Dpo, None).await;
            assert!(matches!(
                harness.veil.reminders(&dpo, None).await,
                Err(AppError::Forbidden(_))
            ));
            assert!(matches!(
                harness.veil.reminders(&admin, Some(61)).await,
                Err(AppError::Validation(_))
            ));
        }
    );
}
