//! The customer pool (公海): customers without an owner, shared by the sales force.
//!
//! - **Browsing.** Admins, managers and salespeople list the pool (`Veil::list_pool`). A pool customer shows its
//!   name as the caller's role sees it under the masking policy in force — never in plaintext, even where a
//!   policy rule would show it — and every other personal field fully masked (`******`): no partial mobile, no
//!   e-mail domain, no region. Industry, tags, source, when it entered the pool and its last recorded activity are
//!   shown. Listing is audited (`pool.list`).
//! - **Claiming.** `Veil::claim_from_pool` makes the caller the owner, with their team. One guarded `UPDATE … WHERE
//!   owner_id IS NULL`: of two claims at once exactly one wins; the other is 409. Each person may hold at most
//!   [`PoolRules::claim_limit`] customers claimed from the pool (`VEIL_POOL_CLAIM_LIMIT`); the count and the
//!   claim run in one transaction that first writes the claimant's `pool_claimant` row, so one person's claims
//!   are serialised and cannot overshoot the limit.
//! - **Releasing.** The owner, their manager or an admin puts a customer back with a reason
//!   (`Veil::release_to_pool`): owner and team are cleared.
//! - **Returning.** Customers a salesperson has not followed up — no interaction, note, ticket, ticket comment,
//!   order or message recorded by the owner — for [`PoolRules::return_days`] days (`VEIL_POOL_RETURN_DAYS`) go
//!   back to the pool (`Veil::return_unattended`, run by `veil serve` on a timer; it takes the time to judge by,
//!   which is how the tests drive time). The clock starts when the owner got the customer (creation, transfer or
//!   claim).
//!
//! A customer back in the pool leaves its previous owner's scope at once: they get 404 like anyone outside it.
//! Every claim, release and return is a `customer_pool_event` row and an audit entry (`pool.claim`,
//! `pool.release`, `pool.return`) written in the same transaction.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_mask::{Operator, Rule};
use veil_store::{ClaimOutcome, PoolEventRow, SensitiveField};

use crate::audit::{self, EventExt, Outcome};
use crate::authz::Action;
use crate::customers::CustomerView;
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::CustomerId;
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Default most customers one person may hold from the pool.
pub const DEFAULT_CLAIM_LIMIT: u32 = 50;
/// Default days without a follow-up after which a customer goes back to the pool.
pub const DEFAULT_RETURN_DAYS: u32 = 30;
/// Customers per batch of the return job (one transaction and one audit entry each).
const RETURN_BATCH: i64 = 500;
/// Longest release reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Largest pool page.
pub const MAX_PAGE: u32 = 100;

/// The pool's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRules {
    /// Most customers one person may hold from the pool at once; 0: no limit.
    pub claim_limit: u32,
    /// Days without a follow-up by the owner after which a salesperson's customer returns; 0: never.
    pub return_days: u32,
}

impl Default for PoolRules {
    fn default() -> Self {
        PoolRules {
            claim_limit: DEFAULT_CLAIM_LIMIT,
            return_days: DEFAULT_RETURN_DAYS,
        }
    }
}

/// A customer as the pool shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolEntry {
    /// Customer id.
    #[schema(value_type = String)]
    pub id: CustomerId,
    /// The name as the caller's role sees it masked (never plaintext), e.g. `张*`.
    pub name: String,
    /// Gender.
    pub gender: Option<String>,
    /// `******` when the customer has a mobile number.
    pub phone: Option<String>,
    /// `******` when the customer has an e-mail address.
    pub email: Option<String>,
    /// `******` when the customer has an address.
    pub address: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Lead source.
    pub source: Option<String>,
    /// When it last went back to the pool (RFC 3339); absent if it was never owned.
    pub in_pool_since: Option<String>,
    /// Its newest recorded activity (interaction, note, ticket, order, message, claim or release), RFC 3339.
    pub last_activity: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
}

/// A page of the pool.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolPage {
    /// Pool customers, newest first.
    pub items: Vec<PoolEntry>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
    /// How many customers the caller holds from the pool.
    pub held: i64,
    /// The most they may hold (0: no limit).
    pub claim_limit: u32,
}

/// A claim, release or return.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolEventView {
    /// `claim`, `release` or `return`.
    pub kind: String,
    /// Owner before.
    pub from_owner: Option<String>,
    /// Team before.
    pub from_team: Option<String>,
    /// Owner after.
    pub to_owner: Option<String>,
    /// Team after.
    pub to_team: Option<String>,
    /// Who did it; absent for the automatic return.
    pub actor: Option<String>,
    /// Why (masked).
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

impl From<PoolEventRow> for PoolEventView {
    fn from(row: PoolEventRow) -> Self {
        PoolEventView {
            kind: row.kind,
            from_owner: row.from_owner,
            from_team: row.from_team,
            to_owner: row.to_owner,
            to_team: row.to_team,
            actor: row.actor_id,
            reason: row.reason,
            at: format_time(row.at),
        }
    }
}

/// A customer's place with respect to the pool.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PoolState {
    /// Whether it has no owner (is in the pool).
    pub in_pool: bool,
    /// Whether its owner claimed it from the pool.
    pub claimed: bool,
    /// Days without a follow-up after which an owned customer returns (0: never).
    pub return_days: u32,
    /// Claims, releases and returns, newest first.
    pub history: Vec<PoolEventView>,
}

/// The result of a claim.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimResult {
    /// The customer, now the caller's (masked as their role sees it).
    pub customer: CustomerView,
    /// How many customers the caller holds from the pool, this one included.
    pub held: i64,
    /// The most they may hold (0: no limit).
    pub claim_limit: u32,
}

/// Why a customer goes back to the pool.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseInput {
    /// Why (kept masked with the release).
    pub reason: String,
}

/// The pool's filters.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PoolFilter {
    /// Only this industry.
    pub industry: Option<String>,
    /// Only customers with this tag.
    pub tag: Option<String>,
}

fn event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl Veil {
    /// The pool's rules in force.
    pub fn pool_rules(&self) -> Arc<PoolRules> {
        self.pool_rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the pool's rules (from the configuration).
    pub fn set_pool_rules(&self, rules: PoolRules) {
        *self
            .pool_rules
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(rules);
    }

    /// Applies the role's rule for `field` under the policy in force to `items` (`(customer id, default
    /// display)`), never opening anything: a plaintext rule keeps the default display, a stored display not
    /// computed yet reads fully masked. The pool's names and a message's recipient use it.
    pub(crate) async fn role_displays_without_plaintext(
        &self,
        actor: &Actor,
        field: SensitiveField,
        items: &mut [(String, String)],
    ) -> AppResult<()> {
        let (_, policy) = self.current_policy().await?;
        let Some(rules) = policy.fields.get(field.as_str()) else {
            return Ok(());
        };
        let rule = rules
            .roles
            .get(actor.role.as_str())
            .cloned()
            .unwrap_or_else(|| Rule::Apply(rules.display.clone()));
        match rule {
            Rule::Plaintext | Rule::Apply(Operator::DefaultMask) => {}
            Rule::Apply(Operator::Redact { replacement }) => {
                let shown = replacement.unwrap_or_else(|| veil_mask::display::FULL_MASK.to_owned());
                for (_, display) in items.iter_mut() {
                    *display = shown.clone();
                }
            }
            Rule::Apply(operator) => {
                let key = crate::displays::rule_key(&operator);
                let ids: Vec<String> = items.iter().map(|(id, _)| id.clone()).collect();
                let name = field.as_str().to_owned();
                let stored = self
                    .store()
                    .displays_for(&ids, &[(name.clone(), key.clone())])
                    .await?;
                for (id, display) in items.iter_mut() {
                    *display = stored
                        .get(&(id.clone(), name.clone(), key.clone()))
                        .cloned()
                        .unwrap_or_else(|| veil_mask::display::FULL_MASK.to_owned());
                }
            }
        }
        Ok(())
    }

    /// Masks names for the pool (see [`Veil::role_displays_without_plaintext`]).
    async fn pool_names(&self, actor: &Actor, entries: &mut [PoolEntry]) -> AppResult<()> {
        let mut items: Vec<(String, String)> = entries
            .iter()
            .map(|entry| (entry.id.to_string(), entry.name.clone()))
            .collect();
        self.role_displays_without_plaintext(actor, SensitiveField::Name, &mut items)
            .await?;
        for (entry, (_, name)) in entries.iter_mut().zip(items) {
            entry.name = name;
        }
        Ok(())
    }

    /// A page of the pool, newest first, filtered by industry and tag.
    pub async fn list_pool(
        &self,
        actor: &Actor,
        filter: &PoolFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> AppResult<PoolPage> {
        self.permit_recorded(actor, Action::PoolRead, None).await?;
        let validated = crate::segments::ListFilter {
            owner: None,
            team: None,
            tag: filter.tag.clone(),
            industry: filter.industry.clone(),
        }
        .validated()?;
        let cursor = match cursor.filter(|text| !text.is_empty()) {
            Some(text) => Some(
                text.parse::<CustomerId>()
                    .map_err(|_| {
                        AppError::Validation(vec![FieldError::new(
                            "cursor",
                            "invalid",
                            "is not a cursor returned by this API",
                        )])
                    })?
                    .to_string(),
            ),
            None => None,
        };
        let limit = limit.clamp(1, MAX_PAGE);
        let mut rows = self
            .store()
            .list_pool_customers(&validated, cursor.as_deref(), i64::from(limit) + 1)
            .await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        self.record(&[audit::event(Some(actor), "pool.list", Outcome::Ok)
            .customers(ids.clone())
            .detail(
                serde_json::json!({"returned": rows.len(), "paged": cursor.is_some(),
                                       "filter": validated}),
            )])
        .await?;
        let activity = self.store().last_activity(&ids).await?;
        let entered = self.store().pool_entered(&ids).await?;
        let full = |present: bool| present.then(|| veil_mask::display::FULL_MASK.to_owned());
        let mut items: Vec<PoolEntry> = rows
            .into_iter()
            .map(|row| PoolEntry {
                id: row.id.parse().unwrap_or_default(),
                name: row
                    .masked
                    .get(&SensitiveField::Name)
                    .cloned()
                    .unwrap_or_default(),
                gender: row.profile.gender.clone(),
                phone: full(row.masked.contains_key(&SensitiveField::Phone)),
                email: full(row.masked.contains_key(&SensitiveField::Email)),
                address: full(row.masked.contains_key(&SensitiveField::Address)),
                tags: serde_json::from_str(&row.profile.tags).unwrap_or_default(),
                industry: row.profile.industry.clone(),
                source: row.profile.source.clone(),
                in_pool_since: entered.get(&row.id).copied().map(format_time),
                last_activity: activity.get(&row.id).copied().map(format_time),
                created_at: format_time(row.profile.created_at),
            })
            .collect();
        self.pool_names(actor, &mut items).await?;
        Ok(PoolPage {
            items,
            next_cursor,
            held: self.store().pool_held(&actor.user_id.to_string()).await?,
            claim_limit: self.pool_rules().claim_limit,
        })
    }

    /// Claims a pool customer: the caller becomes its owner, with their team. 404 when there is no such customer,
    /// 409 when it has an owner (another claim won), 422 `claim_limit_reached` at the limit.
    pub async fn claim_from_pool(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
    ) -> AppResult<ClaimResult> {
        self.permit_recorded(actor, Action::PoolClaim, Some(&customer_id.to_string()))
            .await?;
        let id = customer_id.to_string();
        let limit = self.pool_rules().claim_limit;
        let now = now_ms();
        let event = PoolEventRow {
            id: event_id(),
            customer_id: id.clone(),
            kind: "claim".to_owned(),
            from_owner: None,
            from_team: None,
            to_owner: Some(actor.user_id.to_string()),
            to_team: actor.team.clone(),
            actor_id: Some(actor.user_id.to_string()),
            reason: String::new(),
            at: now,
        };
        let entry = audit::event(Some(actor), "pool.claim", Outcome::Ok)
            .customers([id.clone()])
            .detail(serde_json::json!({"to_team": actor.team}));
        match self
            .store()
            .claim_from_pool(&event, i64::from(limit), &[entry])
            .await?
        {
            ClaimOutcome::Claimed { .. } => {}
            ClaimOutcome::Missing => return Err(AppError::NotFound),
            ClaimOutcome::Taken => {
                self.record_best_effort(&[audit::event(
                    Some(actor),
                    "pool.claim",
                    Outcome::Failed,
                )
                .customers([id.clone()])
                .detail(serde_json::json!({"reason": "not in the pool"}))])
                    .await;
                return Err(AppError::Conflict(
                    "this customer is not in the pool (someone else owns it)".to_owned(),
                ));
            }
            ClaimOutcome::LimitReached { held } => {
                self.record_best_effort(&[audit::event(
                    Some(actor),
                    "pool.claim",
                    Outcome::Denied,
                )
                .customers([id.clone()])
                .detail(
                    serde_json::json!({"reason": "claim limit", "held": held, "limit": limit}),
                )])
                .await;
                return Err(AppError::Validation(vec![FieldError::new(
                    "customer",
                    "claim_limit_reached",
                    format!(
                        "you hold {held} customers from the pool, the limit of {limit}: release one or follow \
                         them up first"
                    ),
                )]));
            }
        }
        tracing::info!(customer = %id, actor = %actor.user_id, "customer claimed from the pool");
        let customer = self.get_customer(actor, customer_id).await?;
        Ok(ClaimResult {
            customer,
            held: self.store().pool_held(&actor.user_id.to_string()).await?,
            claim_limit: limit,
        })
    }

    /// Puts a customer back in the pool (its owner, their manager or an admin), with a reason.
    pub async fn release_to_pool(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        input: &ReleaseInput,
    ) -> AppResult<PoolEventView> {
        let id = customer_id.to_string();
        let row = self
            .store()
            .masked_customer(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, Action::PoolRelease, Some((&id, &row.profile)))
            .await?;
        let reason = input.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(AppError::Validation(vec![FieldError::new(
                "reason",
                if reason.is_empty() {
                    "required"
                } else {
                    "too_long"
                },
                format!("a release needs a reason of at most {MAX_REASON_CHARS} characters"),
            )]));
        }
        let Some(owner) = row.profile.owner_id.clone() else {
            return Err(AppError::Conflict(
                "the customer is already in the pool".to_owned(),
            ));
        };
        let reason = crate::notes::mask_text(reason).body;
        let event = PoolEventRow {
            id: event_id(),
            customer_id: id.clone(),
            kind: "release".to_owned(),
            from_owner: Some(owner.clone()),
            from_team: row.profile.team.clone(),
            to_owner: None,
            to_team: None,
            actor_id: Some(actor.user_id.to_string()),
            reason: reason.clone(),
            at: now_ms(),
        };
        let entry = audit::event(Some(actor), "pool.release", Outcome::Ok)
            .customers([id.clone()])
            .detail(
                serde_json::json!({"from_owner": owner, "from_team": row.profile.team,
                                       "reason": reason}),
            );
        let revoke = audit::event(Some(actor), "grant.revoke", Outcome::Ok).detail(
            serde_json::json!({"reason": veil_store::pool::REVOKE_REASON, "pool_event": event.id}),
        );
        if !self
            .store()
            .release_to_pool(&event, &[entry], &revoke)
            .await?
        {
            return Err(AppError::Conflict(
                "the customer's owner changed meanwhile; reload and try again".to_owned(),
            ));
        }
        tracing::info!(customer = %id, actor = %actor.user_id, "customer released to the pool");
        Ok(event.into())
    }

    /// Where a customer stands with respect to the pool, for callers who see the customer.
    pub async fn pool_state(&self, actor: &Actor, customer_id: CustomerId) -> AppResult<PoolState> {
        let id = customer_id.to_string();
        let row = self
            .store()
            .masked_customer(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, Action::CustomerRead, Some((&id, &row.profile)))
            .await?;
        let history = self.store().pool_events(&id).await?;
        let claimed = row.profile.owner_id.is_some()
            && history.first().is_some_and(|event| {
                event.kind == "claim" && event.to_owner == row.profile.owner_id
            });
        Ok(PoolState {
            in_pool: row.profile.owner_id.is_none(),
            claimed,
            return_days: self.pool_rules().return_days,
            history: history.into_iter().map(PoolEventView::from).collect(),
        })
    }

    /// Returns to the pool every salesperson's customer not followed up by its owner in the last
    /// [`PoolRules::return_days`] days before `now` (see the module documentation). Returns how many went back.
    pub async fn return_unattended(&self, now: i64) -> AppResult<u64> {
        let days = self.pool_rules().return_days;
        if days == 0 {
            return Ok(0);
        }
        let cutoff = now - i64::from(days) * DAY_MS;
        let template = PoolEventRow {
            id: String::new(),
            customer_id: String::new(),
            kind: "return".to_owned(),
            from_owner: None,
            from_team: None,
            to_owner: None,
            to_team: None,
            actor_id: None,
            reason: format!("not followed up by the owner within {days} days"),
            at: now,
        };
        let entry = audit::event(None, "pool.return", Outcome::Ok)
            .detail(serde_json::json!({"days": days, "cutoff": format_time(cutoff)}));
        let revoke = audit::event(None, "grant.revoke", Outcome::Ok)
            .detail(serde_json::json!({"reason": veil_store::pool::REVOKE_REASON}));
        let mut after: Option<String> = None;
        let mut returned = 0u64;
        loop {
            let batch = self
                .store()
                .pool_return_candidates(cutoff, after.as_deref(), RETURN_BATCH)
                .await?;
            let Some(last) = batch.last() else {
                break;
            };
            after = Some(last.customer_id.clone());
            let moved = self
                .store()
                .return_to_pool(&batch, cutoff, &template, &event_id, &entry, &revoke)
                .await?;
            returned += moved.len() as u64;
            if (batch.len() as i64) < RETURN_BATCH {
                break;
            }
        }
        if returned > 0 {
            tracing::info!(customers = returned, days, "customers returned to the pool");
        }
        Ok(returned)
    }

    /// Runs [`Veil::return_unattended`] every `interval` (`veil serve`).
    pub fn spawn_pool_return(
        veil: Arc<Veil>,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if let Err(error) = veil.return_unattended(now_ms()).await {
                    tracing::error!(%error, "returning customers to the pool failed");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::CustomerInput;
    use crate::testing::Harness;
    use crate::users::Role;

    const PHONE: &str = "13912345678";
    const EMAIL: &str = "nana.ouyang@example.com";

    fn known(owner: &Actor) -> CustomerInput {
        CustomerInput {
            name: Some("欧阳娜娜".to_owned()),
            phone: Some(PHONE.to_owned()),
            email: Some(EMAIL.to_owned()),
            address: Some("北京市朝阳区建国路88号".to_owned()),
            id_number: Some("110101198402276151".to_owned()),
            tags: Some(vec!["vip".to_owned()]),
            industry: Some("finance".to_owned()),
            owner: Some(owner.user_id.to_string()),
            ..CustomerInput::default()
        }
    }

    fn plain(name: &str, owner: &Actor) -> CustomerInput {
        CustomerInput {
            name: Some(name.to_owned()),
            owner: Some(owner.user_id.to_string()),
            ..CustomerInput::default()
        }
    }

    async fn audit_actions(harness: &Harness, customer: &str) -> Vec<(String, String)> {
        harness
            .veil
            .store()
            .query_audit(
                &veil_store::AuditFilter {
                    customer_id: Some(customer.to_owned()),
                    ..veil_store::AuditFilter::default()
                },
                1000,
            )
            .await
            .unwrap()
            .into_iter()
            .map(|entry| (entry.event.action, entry.event.outcome))
            .collect()
    }

    crate::both_backends!(release_browse_and_claim, |harness| {
        let veil = &harness.veil;
        let admin = harness.actor("ada", Role::Admin, None).await;
        let alice = harness.actor("alice", Role::Sales, Some("east")).await;
        let bob = harness.actor("bob", Role::Sales, Some("east")).await;
        let carl = harness.actor("carl", Role::Sales, Some("west")).await;
        let mona = harness.actor("mona", Role::Manager, Some("east")).await;
        let auditor = harness.actor("audrey", Role::Auditor, None).await;
        let customer = veil
            .create_customer(&admin, &known(&alice), true)
            .await
            .unwrap();
        let id = customer.id;

        // Only someone who sees the customer releases it; a reason is required; the reason is masked.
        assert!(matches!(
            veil.release_to_pool(
                &bob,
                id,
                &ReleaseInput {
                    reason: "x".to_owned()
                }
            )
            .await,
            Err(AppError::NotFound)
        ));
        assert!(matches!(
            veil.release_to_pool(
                &alice,
                id,
                &ReleaseInput {
                    reason: " ".to_owned()
                }
            )
            .await,
            Err(AppError::Validation(_))
        ));
        let released = veil
            .release_to_pool(
                &alice,
                id,
                &ReleaseInput {
                    reason: format!("电话{PHONE}一直不接"),
                },
            )
            .await
            .unwrap();
        assert_eq!(released.kind, "release");
        assert!(!released.reason.contains(PHONE), "{}", released.reason);
        assert!(
            released.reason.contains("139****5678"),
            "{}",
            released.reason
        );
        // Already in the pool: nothing to release.
        assert!(matches!(
            veil.release_to_pool(
                &admin,
                id,
                &ReleaseInput {
                    reason: "again".to_owned()
                }
            )
            .await,
            Err(AppError::Conflict(_))
        ));
        // The previous owner and their manager no longer see it; an admin still does.
        assert!(matches!(
            veil.get_customer(&alice, id).await,
            Err(AppError::NotFound)
        ));
        assert!(matches!(
            veil.get_customer(&mona, id).await,
            Err(AppError::NotFound)
        ));
        let seen = veil.get_customer(&admin, id).await.unwrap();
        assert_eq!((seen.owner, seen.team), (None, None));

        // The pool: masked name, everything else fully masked.
        assert!(matches!(
            veil.list_pool(&auditor, &PoolFilter::default(), None, 25)
                .await,
            Err(AppError::Forbidden(_))
        ));
        let page = veil
            .list_pool(&bob, &PoolFilter::default(), None, 25)
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        let entry = &page.items[0];
        assert_eq!(entry.id, id);
        assert_eq!(entry.name, "欧阳**");
        assert_eq!(entry.phone.as_deref(), Some("******"));
        assert_eq!(entry.email.as_deref(), Some("******"));
        assert_eq!(entry.address.as_deref(), Some("******"));
        assert_eq!(entry.tags, ["vip"]);
        assert_eq!(entry.industry.as_deref(), Some("finance"));
        assert!(entry.in_pool_since.is_some() && entry.last_activity.is_some());
        let json = serde_json::to_string(&page).unwrap();
        for leak in [
            PHONE,
            "139****",
            "5678",
            EMAIL,
            "@example.com",
            "n***",
            "北京市",
            "110101",
        ] {
            assert!(!json.contains(leak), "{leak} in {json}");
        }
        let by = |industry: Option<&str>, tag: Option<&str>| PoolFilter {
            industry: industry.map(str::to_owned),
            tag: tag.map(str::to_owned),
        };
        for (filter, expected) in [
            (by(Some("finance"), None), 1),
            (by(Some("retail"), None), 0),
            (by(None, Some("vip")), 1),
            (by(None, Some("vi")), 0),
        ] {
            let page = veil.list_pool(&carl, &filter, None, 25).await.unwrap();
            assert_eq!(page.items.len(), expected, "{filter:?}");
        }

        // Claim: bob becomes the owner with his team; the next claim is 409.
        let claimed = veil.claim_from_pool(&bob, id).await.unwrap();
        assert_eq!(claimed.customer.owner, Some(bob.user_id.to_string()));
        assert_eq!(claimed.customer.team.as_deref(), Some("east"));
        assert_eq!(claimed.customer.phone.as_deref(), Some("139****5678"));
        assert_eq!(claimed.held, 1);
        assert!(matches!(
            veil.claim_from_pool(&carl, id).await,
            Err(AppError::Conflict(_))
        ));
        assert!(matches!(
            veil.claim_from_pool(&carl, CustomerId::new()).await,
            Err(AppError::NotFound)
        ));
        assert!(matches!(
            veil.claim_from_pool(&auditor, id).await,
            Err(AppError::Forbidden(_))
        ));
        assert!(veil
            .list_pool(&carl, &PoolFilter::default(), None, 25)
            .await
            .unwrap()
            .items
            .is_empty());
        veil.get_customer(&mona, id).await.unwrap();
        let state = veil.pool_state(&bob, id).await.unwrap();
        assert!(!state.in_pool && state.claimed);
        let kinds: Vec<&str> = state
            .history
            .iter()
            .map(|event| event.kind.as_str())
            .collect();
        assert_eq!(kinds, ["claim", "release"]);
        assert_eq!(state.history[0].to_owner, Some(bob.user_id.to_string()));
        assert_eq!(state.history[1].from_owner, Some(alice.user_id.to_string()));

        let actions = audit_actions(&harness, &id.to_string()).await;
        for (action, outcome) in [
            ("pool.release", "ok"),
            ("pool.list", "ok"),
            ("pool.claim", "ok"),
            ("pool.claim", "failed"),
        ] {
            assert!(
                actions.iter().any(|(a, o)| a == action && o == outcome),
                "{action} {outcome} missing from {actions:?}"
            );
        }

        // The per-person limit counts customers claimed and still held.
        veil.set_pool_rules(PoolRules {
            claim_limit: 1,
            return_days: 30,
        });
        let second = veil
            .create_customer(&admin, &plain("张三", &alice), true)
            .await
            .unwrap();
        veil.release_to_pool(
            &mona,
            second.id,
            &ReleaseInput {
                reason: "重新分配".to_owned(),
            },
        )
        .await
        .unwrap();
        match veil.claim_from_pool(&bob, second.id).await {
            Err(AppError::Validation(errors)) => {
                assert_eq!(errors[0].code, "claim_limit_reached", "{errors:?}")
            }
            other => panic!("expected the limit, got {other:?}"),
        }
        // Released again, the first no longer counts.
        veil.release_to_pool(
            &bob,
            id,
            &ReleaseInput {
                reason: "不跟了".to_owned(),
            },
        )
        .await
        .unwrap();
        veil.claim_from_pool(&bob, second.id).await.unwrap();
        // With no limit, anyone claims.
        veil.set_pool_rules(PoolRules {
            claim_limit: 0,
            return_days: 30,
        });
        veil.claim_from_pool(&bob, id).await.unwrap();
        assert_eq!(
            veil.store()
                .pool_held(&bob.user_id.to_string())
                .await
                .unwrap(),
            2
        );
    });

    crate::both_backends!(concurrent_claims_have_exactly_one_winner, |harness| {
        let admin = harness.actor("ada", Role::Admin, None).await;
        let alice = harness.actor("alice", Role::Sales, Some("east")).await;
        let bob = harness.actor("bob", Role::Sales, Some("east")).await;
        let carl = harness.actor("carl", Role::Sales, Some("west")).await;
        // A second server on the same database.
        let other = std::sync::Arc::new(harness.reopen().await);
        let veil = &harness.veil;
        let mut ids = Vec::new();
        for name in [
            "赵一", "钱二", "孙三", "李四", "周五", "吴六", "郑七", "王八",
        ] {
            let customer = veil
                .create_customer(&admin, &plain(name, &alice), true)
                .await
                .unwrap();
            veil.release_to_pool(
                &alice,
                customer.id,
                &ReleaseInput {
                    reason: "pool".to_owned(),
                },
            )
            .await
            .unwrap();
            ids.push(customer.id);
        }
        veil.set_pool_rules(PoolRules {
            claim_limit: 0,
            return_days: 30,
        });
        other.set_pool_rules(PoolRules {
            claim_limit: 0,
            return_days: 30,
        });
        for id in &ids[..5] {
            let (first, second) = tokio::join!(
                veil.claim_from_pool(&bob, *id),
                other.claim_from_pool(&carl, *id)
            );
            let wins = [first.is_ok(), second.is_ok()];
            assert_eq!(
                wins.iter().filter(|won| **won).count(),
                1,
                "{first:?} {second:?}"
            );
            for outcome in [&first, &second] {
                if let Err(error) = outcome {
                    assert!(matches!(error, AppError::Conflict(_)), "{error:?}");
                }
            }
            let owner = veil
                .store()
                .masked_customer(&id.to_string())
                .await
                .unwrap()
                .unwrap()
                .profile
                .owner_id;
            let winner = if first.is_ok() { &bob } else { &carl };
            assert_eq!(owner, Some(winner.user_id.to_string()));
            let events = veil.store().pool_events(&id.to_string()).await.unwrap();
            assert_eq!(
                events.iter().filter(|event| event.kind == "claim").count(),
                1
            );
        }
        // One person claiming the last three at once under a limit: never above it.
        let held = veil
            .store()
            .pool_held(&alice.user_id.to_string())
            .await
            .unwrap();
        assert_eq!(held, 0);
        let rules = PoolRules {
            claim_limit: 2,
            return_days: 30,
        };
        veil.set_pool_rules(rules.clone());
        other.set_pool_rules(rules);
        let (a, b, c) = tokio::join!(
            veil.claim_from_pool(&alice, ids[5]),
            other.claim_from_pool(&alice, ids[6]),
            veil.claim_from_pool(&alice, ids[7])
        );
        let won = [a.is_ok(), b.is_ok(), c.is_ok()]
            .iter()
            .filter(|won| **won)
            .count();
        assert_eq!(won, 2, "{a:?} {b:?} {c:?}");
        assert_eq!(
            veil.store()
                .pool_held(&alice.user_id.to_string())
                .await
                .unwrap(),
            2
        );
        other.store().close().await;
    });

    crate::both_backends!(unattended_customers_return_to_the_pool, |harness| {
        let veil = &harness.veil;
        let admin = harness.actor("ada", Role::Admin, None).await;
        let alice = harness.actor("alice", Role::Sales, Some("east")).await;
        let bob = harness.actor("bob", Role::Sales, Some("east")).await;
        let mona = harness.actor("mona", Role::Manager, Some("east")).await;
        let followed = veil
            .create_customer(&admin, &plain("跟进", &alice), true)
            .await
            .unwrap();
        let by_other = veil
            .create_customer(&admin, &plain("他人", &alice), true)
            .await
            .unwrap();
        let idle = veil
            .create_customer(&admin, &plain("闲置", &alice), true)
            .await
            .unwrap();
        let managers = veil
            .create_customer(&admin, &plain("经理", &mona), true)
            .await
            .unwrap();
        let fresh = veil
            .create_customer(&admin, &plain("新客", &alice), true)
            .await
            .unwrap();
        // Forty days ago for all but the fresh one (time travel in the database).
        let long_ago = crate::now_ms() - 40 * DAY_MS;
        for customer in [&followed, &by_other, &idle, &managers] {
            harness
                .raw_sql(&format!(
                    "UPDATE customer SET created_at = {long_ago} WHERE id = '{}'",
                    customer.id
                ))
                .await
                .unwrap();
        }
        veil.add_interaction(
            &alice,
            followed.id,
            &crate::interactions::InteractionInput {
                kind: crate::interactions::InteractionKind::Call,
                occurred_at: None,
                duration_minutes: Some(5),
                outcome: None,
                note: Some("回访".to_owned()),
            },
        )
        .await
        .unwrap();
        // A note by someone else is not the owner's follow-up.
        veil.add_note(
            &mona,
            by_other.id,
            &crate::notes::NoteInput {
                body: "经理看过".to_owned(),
            },
        )
        .await
        .unwrap();

        veil.set_pool_rules(PoolRules {
            claim_limit: 50,
            return_days: 0,
        });
        assert_eq!(
            veil.return_unattended(crate::now_ms()).await.unwrap(),
            0,
            "off"
        );
        veil.set_pool_rules(PoolRules {
            claim_limit: 50,
            return_days: 30,
        });
        let now = crate::now_ms();
        assert_eq!(veil.return_unattended(now).await.unwrap(), 2);
        assert_eq!(veil.return_unattended(now).await.unwrap(), 0, "idempotent");
        veil.get_customer(&alice, followed.id).await.unwrap();
        veil.get_customer(&alice, fresh.id).await.unwrap();
        veil.get_customer(&mona, managers.id).await.unwrap();
        for gone in [&by_other, &idle] {
            assert!(matches!(
                veil.get_customer(&alice, gone.id).await,
                Err(AppError::NotFound)
            ));
            let state = veil.pool_state(&admin, gone.id).await.unwrap();
            assert!(state.in_pool);
            assert_eq!(state.history[0].kind, "return");
            assert_eq!(state.history[0].actor, None);
            assert_eq!(state.history[0].from_owner, Some(alice.user_id.to_string()));
            let actions = audit_actions(&harness, &gone.id.to_string()).await;
            assert!(
                actions.iter().any(|(a, o)| a == "pool.return" && o == "ok"),
                "{actions:?}"
            );
        }
        let pool: Vec<CustomerId> = veil
            .list_pool(&bob, &PoolFilter::default(), None, 25)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|entry| entry.id)
            .collect();
        assert_eq!(pool.len(), 2);
        assert!(pool.contains(&by_other.id) && pool.contains(&idle.id));
        // Driven further in time, the followed-up customer goes too once its follow-up is old — and a claim
        // restarts the clock.
        veil.claim_from_pool(&bob, idle.id).await.unwrap();
        let later = now + 31 * DAY_MS;
        assert_eq!(veil.return_unattended(later).await.unwrap(), 3);
        assert!(matches!(
            veil.get_customer(&alice, followed.id).await,
            Err(AppError::NotFound)
        ));
        assert!(matches!(
            veil.get_customer(&bob, idle.id).await,
            Err(AppError::NotFound)
        ));
    });
}
