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
            .detail(serde_json::json!({"returned": rows.len(), "paged": cursor.is_some(),
                                       "filter": validated}))])
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
                self.record_best_effort(&[audit::event(Some(actor), "pool.claim", Outcome::Failed)
                    .customers([id.clone()])
                    .detail(serde_json::json!({"reason": "not in the pool"}))])
                    .await;
                return Err(AppError::Conflict(
                    "this customer is not in the pool (someone else owns it)".to_owned(),
                ));
            }
            ClaimOutcome::LimitReached { held } => {
                self.record_best_effort(&[audit::event(Some(actor), "pool.claim", Outcome::Denied)
                    .customers([id.clone()])
                    .detail(serde_json::json!({"reason": "claim limit", "held": held, "limit": limit}))])
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
                if reason.is_empty() { "required" } else { "too_long" },
                format!("a release needs a reason of at most {MAX_REASON_CHARS} characters"),
            )]));
        }
        let Some(owner) = row.profile.owner_id.clone() else {
            return Err(AppError::Conflict("the customer is already in the pool".to_owned()));
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
            .detail(serde_json::json!({"from_owner": owner, "from_team": row.profile.team,
                                       "reason": reason}));
        if !self.store().release_to_pool(&event, &[entry]).await? {
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
                .return_to_pool(&batch, cutoff, &template, &event_id, &entry)
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
