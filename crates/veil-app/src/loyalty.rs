//! The loyalty programme (忠诚度计划): points earned on paid orders by a configurable rule, redeemed by staff for
//! the customer, expiring after a configurable number of days, and membership tiers by lifetime points with their
//! benefits. Tier changes are recorded (`loyalty_tier_change`) and audited.
//!
//! Safety of the balance lives in the store ([`veil_store::loyalty`]): every change locks the customer's account
//! first and deducts with a guarded `UPDATE`, so concurrent redemptions cannot take the balance below zero.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{LoyaltyEntryRow, TierLadder};

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::CustomerId;
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// Default of `VEIL_LOYALTY_POINTS_PER_YUAN`.
pub const DEFAULT_POINTS_PER_YUAN: i64 = 1;
/// Default of `VEIL_LOYALTY_EXPIRY_DAYS`.
pub const DEFAULT_EXPIRY_DAYS: i64 = 365;
/// Default of `VEIL_LOYALTY_TIERS`.
pub const DEFAULT_TIERS: &str = "member=0,silver=1000+5,gold=5000+10,platinum=20000+20";
/// Largest single redemption.
pub const MAX_REDEEM_POINTS: i64 = 10_000_000;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One membership tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tier {
    /// Name, e.g. `gold`.
    pub name: String,
    /// Lifetime points from which a customer belongs to it.
    pub threshold: i64,
    /// Extra points on every paid order, in percent of the base rule.
    pub earn_bonus_percent: i64,
    /// What membership gives, in words.
    pub benefits: Vec<String>,
}

/// The rules of the programme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoyaltyRules {
    /// Points per yuan (100 fen) paid, before the tier bonus.
    pub points_per_yuan: i64,
    /// Days after which earned points expire (0: never).
    pub expiry_days: i64,
    /// Tiers, ascending by threshold; the first is at 0.
    pub tiers: Vec<Tier>,
}

impl Default for LoyaltyRules {
    fn default() -> Self {
        LoyaltyRules {
            points_per_yuan: DEFAULT_POINTS_PER_YUAN,
            expiry_days: DEFAULT_EXPIRY_DAYS,
            tiers: parse_tiers(DEFAULT_TIERS).expect("the default tiers parse"),
        }
    }
}

fn benefits_of(name: &str, bonus: i64) -> Vec<String> {
    let mut benefits = Vec::new();
    if bonus > 0 {
        benefits.push(format!("{bonus}% extra points on every paid order"));
    }
    let extra: &[&str] = match name {
        "silver" => &["birthday gift"],
        "gold" => &["birthday gift", "free delivery", "priority service queue"],
        "platinum" => &[
            "birthday gift",
            "free delivery",
            "priority service queue",
            "dedicated advisor",
        ],
        _ => &[],
    };
    benefits.extend(extra.iter().map(|benefit| (*benefit).to_owned()));
    benefits
}

/// Parses `NAME=THRESHOLD[+BONUS%],…` (e.g. `member=0,silver=1000+5`); a tier at 0 is required.
pub fn parse_tiers(text: &str) -> Result<Vec<Tier>, String> {
    let mut tiers = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let (name, rest) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not NAME=THRESHOLD[+BONUS]"))?;
        let name = name.trim();
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!(
                "tier name `{name}` must be 1–32 characters of a-z, 0-9 and _"
            ));
        }
        let (threshold, bonus) = match rest.split_once('+') {
            Some((threshold, bonus)) => (threshold, bonus.trim().trim_end_matches('%')),
            None => (rest, "0"),
        };
        let threshold: i64 = threshold
            .trim()
            .parse()
            .ok()
            .filter(|value| *value >= 0)
            .ok_or_else(|| format!("tier `{name}`: the threshold must be a whole number ≥ 0"))?;
        let bonus: i64 = bonus
            .parse()
            .ok()
            .filter(|value| (0..=1000).contains(value))
            .ok_or_else(|| format!("tier `{name}`: the bonus must be 0–1000 (percent)"))?;
        if tiers
            .iter()
            .any(|tier: &Tier| tier.name == name || tier.threshold == threshold)
        {
            return Err(format!("tier `{name}` repeats a name or a threshold"));
        }
        tiers.push(Tier {
            name: name.to_owned(),
            threshold,
            earn_bonus_percent: bonus,
            benefits: benefits_of(name, bonus),
        });
    }
    tiers.sort_by_key(|tier| tier.threshold);
    if tiers.first().map(|tier| tier.threshold) != Some(0) {
        return Err("one tier must start at 0 lifetime points".to_owned());
    }
    Ok(tiers)
}

impl LoyaltyRules {
    /// The tier ladder the store applies.
    pub fn ladder(&self) -> TierLadder {
        TierLadder::new(
            self.tiers
                .iter()
                .map(|tier| (tier.name.clone(), tier.threshold))
                .collect(),
        )
    }

    /// The tier called `name` (the lowest when unknown, e.g. after the configuration changed).
    pub fn tier(&self, name: &str) -> &Tier {
        self.tiers
            .iter()
            .find(|tier| tier.name == name)
            .unwrap_or(&self.tiers[0])
    }

    /// Points a paid order of `total_fen` earns a customer in `tier`: yuan × rate × (100 + bonus)%, rounded down
    /// once at the end.
    pub fn points_for(&self, total_fen: i64, tier: &str) -> i64 {
        let bonus = self.tier(tier).earn_bonus_percent;
        let points = i128::from(total_fen.max(0))
            .checked_mul(i128::from(self.points_per_yuan.max(0)))
            .and_then(|points| points.checked_mul(i128::from(100 + bonus)))
            .map_or(i128::MAX, |points| points / 10_000);
        i64::try_from(points).unwrap_or(i64::MAX)
    }

    /// When points earned at `now` expire (far future when they never do).
    pub fn expires_at(&self, now: i64) -> i64 {
        if self.expiry_days == 0 {
            i64::MAX
        } else {
            now.saturating_add(self.expiry_days.saturating_mul(DAY_MS))
        }
    }
}

/// A redemption.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemInput {
    /// Points to redeem (1 to 10,000,000).
    pub points: i64,
    /// Short reason (at most 200 characters), e.g. the reward; personal data in it is masked.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One ledger entry as readers see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoyaltyEntryView {
    /// Entry id.
    pub id: String,
    /// `earn`, `redeem`, `expire` or `reverse`.
    pub kind: String,
    /// Signed change of the balance.
    pub points: i64,
    /// The order that caused it.
    pub order_id: Option<String>,
    /// For earned points: when they expire (RFC 3339).
    pub expires_at: Option<String>,
    /// Masked reason.
    pub reason: Option<String>,
    /// Who caused it (user id).
    pub by: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// One tier change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TierChangeView {
    /// Previous tier.
    pub from: Option<String>,
    /// New tier.
    pub to: String,
    /// Lifetime points at the change.
    pub lifetime_points: i64,
    /// `earn` or `refund`.
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

/// The next tier and what it takes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NextTier {
    /// Its name.
    pub name: String,
    /// Its threshold in lifetime points.
    pub threshold: i64,
    /// Lifetime points still needed.
    pub points_needed: i64,
}

/// Points that expire next.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Expiring {
    /// How many.
    pub points: i64,
    /// When (RFC 3339).
    pub at: String,
}

/// A customer's loyalty account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LoyaltyView {
    /// Customer id.
    pub customer_id: String,
    /// Points available to redeem.
    pub balance: i64,
    /// Points ever earned (net of refunds); decides the tier.
    pub lifetime_points: i64,
    /// The current tier with its benefits.
    pub tier: Tier,
    /// The next tier, if any.
    pub next_tier: Option<NextTier>,
    /// The soonest-expiring points.
    pub next_expiry: Option<Expiring>,
    /// The newest ledger entries (at most 50).
    pub entries: Vec<LoyaltyEntryView>,
    /// Tier changes, oldest first.
    pub tier_history: Vec<TierChangeView>,
}

fn entry_view(row: LoyaltyEntryRow) -> LoyaltyEntryView {
    LoyaltyEntryView {
        id: row.id,
        kind: row.kind,
        points: row.points,
        order_id: row.order_id,
        expires_at: row.expires_at.filter(|at| *at != i64::MAX).map(format_time),
        reason: row.reason,
        by: row.actor_id,
        at: format_time(row.created_at),
    }
}

impl Veil {
    /// Replaces the loyalty rules (from the configuration at start-up). Applies to changes made afterwards.
    pub fn set_loyalty_rules(&self, rules: LoyaltyRules) {
        *self
            .loyalty_rules
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(rules);
    }

    /// The loyalty rules in force.
    pub fn loyalty_rules(&self) -> Arc<LoyaltyRules> {
        self.loyalty_rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A customer's loyalty account, after expiring the points due now.
    pub async fn loyalty(&self, actor: &Actor, customer_id: CustomerId) -> AppResult<LoyaltyView> {
        let customer = customer_id.to_string();
        self.customer_for(actor, &customer, Action::LoyaltyRead)
            .await?;
        self.expire_points(&customer, now_ms()).await?;
        let view = self.loyalty_view(&customer).await?;
        self.record(&[
            crate::audit::event(Some(actor), "loyalty.read", crate::audit::Outcome::Ok)
                .customers([customer]),
        ])
        .await?;
        Ok(view)
    }

    /// Expires `customer`'s points due at `now` (audited as a system action when any expire).
    pub async fn expire_points(&self, customer: &str, now: i64) -> AppResult<i64> {
        let event = crate::audit::event(None, "loyalty.expire", crate::audit::Outcome::Ok)
            .customers([customer.to_owned()]);
        Ok(self.store().expire_points(customer, now, &event).await?)
    }

    pub(crate) async fn loyalty_view(&self, customer: &str) -> AppResult<LoyaltyView> {
        let rules = self.loyalty_rules();
        let account = self.store().loyalty_account(customer).await?;
        let (balance, lifetime_points, tier_name) = match &account {
            Some(account) => (
                account.balance,
                account.lifetime_points,
                account.tier.clone(),
            ),
            None => (0, 0, rules.tiers[0].name.clone()),
        };
        let tier = rules.tier(&tier_name).clone();
        let next_tier = rules
            .tiers
            .iter()
            .find(|candidate| candidate.threshold > lifetime_points)
            .map(|next| NextTier {
                name: next.name.clone(),
                threshold: next.threshold,
                points_needed: next.threshold - lifetime_points,
            });
        let next_expiry = self
            .store()
            .next_expiring_lot(customer)
            .await?
            .filter(|(at, _)| *at != i64::MAX)
            .map(|(at, points)| Expiring {
                points,
                at: format_time(at),
            });
        let entries = self
            .store()
            .loyalty_entries(customer, 50)
            .await?
            .into_iter()
            .map(entry_view)
            .collect();
        let tier_history = self
            .store()
            .loyalty_tier_changes(customer)
            .await?
            .into_iter()
            .map(|row| TierChangeView {
                from: row.from_tier,
                to: row.to_tier,
                lifetime_points: row.lifetime_points,
                reason: row.reason,
                at: format_time(row.created_at),
            })
            .collect();
        Ok(LoyaltyView {
            customer_id: customer.to_owned(),
            balance,
            lifetime_points,
            tier,
            next_tier,
            next_expiry,
            entries,
            tier_history,
        })
    }

    /// Redeems points of a customer the caller can see. Refused with `InsufficientPoints` (nothing written) when
    /// the balance after expiry is lower than asked; safe under concurrent redemptions.
    pub async fn redeem_points(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        input: &RedeemInput,
    ) -> AppResult<LoyaltyView> {
        let customer = customer_id.to_string();
        self.customer_for(actor, &customer, Action::LoyaltyRedeem)
            .await?;
        let mut errors = Vec::new();
        if !(1..=MAX_REDEEM_POINTS).contains(&input.points) {
            errors.push(FieldError::new(
                "points",
                "out_of_range",
                format!("must be 1 to {MAX_REDEEM_POINTS}"),
            ));
        }
        if input
            .reason
            .as_ref()
            .is_some_and(|reason| reason.chars().count() > 200)
        {
            errors.push(FieldError::new(
                "reason",
                "invalid_length",
                "must be at most 200 characters",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let reason = input
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|reason| !reason.is_empty())
            .map(|reason| crate::notes::mask_text(reason).body);
        let entry_id = uuid::Uuid::now_v7().to_string();
        let event = crate::audit::event(Some(actor), "loyalty.redeem", crate::audit::Outcome::Ok)
            .customers([customer.clone()])
            .detail(serde_json::json!({"entry_id": entry_id, "points": input.points}));
        let result = self
            .store()
            .redeem_points(
                &customer,
                input.points,
                &entry_id,
                reason.as_deref(),
                Some(&actor.user_id.to_string()),
                &self.loyalty_rules().ladder(),
                now_ms(),
                &[event],
            )
            .await?;
        match result {
            Ok(outcome) => {
                tracing::info!(customer = %customer, points = input.points, balance = outcome.balance,
                    "loyalty points redeemed");
                self.loyalty_view(&customer).await
            }
            Err(insufficient) => {
                let refusal = crate::audit::event(
                    Some(actor),
                    "loyalty.redeem",
                    crate::audit::Outcome::Denied,
                )
                .customers([customer.clone()])
                .detail(serde_json::json!({"points": input.points,
                            "balance": insufficient.balance, "reason": "insufficient_points"}));
                self.record_best_effort(&[refusal]).await;
                Err(AppError::InsufficientPoints {
                    balance: insufficient.balance,
                    requested: input.points,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_parse_and_refuse() {
        let tiers = parse_tiers("gold=5000+10, member=0,silver=1000+5").unwrap();
        let names: Vec<&str> = tiers.iter().map(|tier| tier.name.as_str()).collect();
        assert_eq!(names, ["member", "silver", "gold"]);
        assert_eq!(tiers[2].earn_bonus_percent, 10);
        assert!(tiers[2]
            .benefits
            .iter()
            .any(|benefit| benefit == "free delivery"));
        for bad in [
            "silver=1000",
            "member=0,Gold=10",
            "member=0,gold=-1",
            "member=0,gold=10+x",
            "member=0,member=10",
            "member=0,gold",
        ] {
            assert!(parse_tiers(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn points_follow_the_rate_and_the_tier_bonus() {
        let rules = LoyaltyRules::default();
        // ¥123.45 at 1 point per yuan: 123 points; gold adds 10% (rounded down).
        assert_eq!(rules.points_for(12_345, "member"), 123);
        assert_eq!(rules.points_for(12_345, "gold"), 135);
        assert_eq!(rules.points_for(99, "member"), 0);
        let rules = LoyaltyRules {
            points_per_yuan: 3,
            ..LoyaltyRules::default()
        };
        assert_eq!(rules.points_for(10_000, "platinum"), 360);
        // Computed in i128: the largest total neither overflows nor wraps, and an absurd rate saturates.
        assert_eq!(
            rules.points_for(i64::MAX, "platinum"),
            332_041_393_326_771_929
        );
        let absurd = LoyaltyRules {
            points_per_yuan: i64::MAX,
            ..LoyaltyRules::default()
        };
        assert_eq!(absurd.points_for(i64::MAX, "member"), i64::MAX);
        let ladder = LoyaltyRules::default().ladder();
        assert_eq!(ladder.tier_for(0), "member");
        assert_eq!(ladder.tier_for(999), "member");
        assert_eq!(ladder.tier_for(1000), "silver");
        assert_eq!(ladder.tier_for(25_000), "platinum");
    }
}
