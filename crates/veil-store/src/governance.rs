//! Governed unmasking: consents, unmask requests (with their checks and risk assessments), approval decisions and
//! grants. Every state change appends its audit entry in the same transaction. Lists of ids, fields and purposes
//! are stored as JSON arrays.

use crate::audit::append_in;
use crate::{with_pool, AuditEvent, Store, StoreError, StoreResult};

/// A recorded consent of one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// Id (UUID).
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// Purposes (JSON array).
    pub purposes: String,
    /// Fields (JSON array).
    pub fields: String,
    /// `internal` or a named partner.
    pub recipient: String,
    /// SHA-256 of the evidence document.
    pub evidence_sha256: Option<String>,
    /// Where the evidence is kept, or an e-consent event id.
    pub evidence_ref: Option<String>,
    /// Separate consent for sensitive personal information (PIPL Art. 29).
    pub sensitive: bool,
    /// Separate consent to provide data to a third party (PIPL Art. 23).
    pub third_party: bool,
    /// When given (Unix ms).
    pub granted_at: i64,
    /// When it lapses.
    pub expires_at: Option<i64>,
    /// When withdrawn.
    pub withdrawn_at: Option<i64>,
    /// Staff user who recorded it.
    pub recorded_by: Option<String>,
    /// When recorded.
    pub created_at: i64,
}

/// An unmask request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// Id (UUID).
    pub id: String,
    /// Who asks.
    pub requester_id: String,
    /// Their role when asking.
    pub requester_role: String,
    /// Their team when asking.
    pub requester_team: Option<String>,
    /// Purpose code.
    pub purpose: String,
    /// Purpose in words (masked).
    pub purpose_detail: String,
    /// Legal basis code.
    pub legal_basis: String,
    /// `CN` or `EU`.
    pub jurisdiction: String,
    /// Consents relied on (JSON array).
    pub consent_ids: String,
    /// Customers in scope (JSON array).
    pub customer_ids: String,
    /// Fields (JSON array).
    pub fields: String,
    /// `view`, `export` or `policy_change`.
    pub mode: String,
    /// How long the grant lasts.
    pub duration_minutes: i64,
    /// The age public key an export is encrypted to.
    pub recipient: Option<String>,
    /// Who receives the data: `internal` or a partner's name (what consents name).
    pub recipient_name: Option<String>,
    /// For `policy_change`: the change (JSON: field, role, rule, and the rule it replaces).
    pub policy_change: Option<String>,
    /// The saved segment the scope was resolved from, if any.
    pub segment_id: Option<String>,
    /// Most reveals the grant allows.
    pub max_reveals: Option<i64>,
    /// `low`, `medium` or `high`.
    pub risk: String,
    /// The checks (JSON array).
    pub checks: String,
    /// Approvals needed.
    pub approvals_needed: i64,
    /// State.
    pub state: String,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last changed.
    pub updated_at: i64,
}

/// A stored risk assessment (PIPL Art. 55–56).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskRow {
    /// Id.
    pub id: String,
    /// The request assessed.
    pub request_id: String,
    /// `low`, `medium`, `high`.
    pub level: String,
    /// The score behind the level.
    pub score: i64,
    /// The factors (JSON).
    pub factors: String,
    /// Purpose.
    pub purpose: String,
    /// Why it is necessary.
    pub necessity: String,
    /// Impact on the people concerned.
    pub impact: String,
    /// Protective measures.
    pub measures: String,
    /// When.
    pub created_at: i64,
}

/// An approver's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRow {
    /// The request.
    pub request_id: String,
    /// Who decided.
    pub approver_id: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Why (masked).
    pub reason: String,
    /// When.
    pub decided_at: i64,
}

/// A grant: the capability an approved request yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    /// Id.
    pub id: String,
    /// The request.
    pub request_id: String,
    /// Holder.
    pub user_id: String,
    /// Customers (JSON array).
    pub customer_ids: String,
    /// Fields (JSON array).
    pub fields: String,
    /// Mode.
    pub mode: String,
    /// Purpose.
    pub purpose: String,
    /// Created.
    pub created_at: i64,
    /// Expires.
    pub expires_at: i64,
    /// Most reveals.
    pub max_reveals: Option<i64>,
    /// Reveals used.
    pub reveals_used: i64,
    /// Revoked when.
    pub revoked_at: Option<i64>,
    /// Revoked by (user id, or `system`).
    pub revoked_by: Option<String>,
    /// Why revoked.
    pub revoke_reason: Option<String>,
}

const CONSENT_COLUMNS: &str =
    "id, customer_id, purposes, fields, recipient, evidence_sha256, evidence_ref, \
     sensitive, third_party, granted_at, expires_at, withdrawn_at, recorded_by, created_at";
const REQUEST_COLUMNS: &str = "id, requester_id, requester_role, requester_team, purpose, purpose_detail, \
     legal_basis, jurisdiction, consent_ids, customer_ids, fields, mode, duration_minutes, recipient, recipient_name, \
     policy_change, max_reveals, risk, checks, approvals_needed, state, created_at, updated_at, segment_id";
const GRANT_COLUMNS: &str =
    "id, request_id, user_id, customer_ids, fields, mode, purpose, created_at, \
     expires_at, max_reveals, reveals_used, revoked_at, revoked_by, revoke_reason";

macro_rules! consent_from {
    ($row:expr) => {{
        use sqlx::Row;
        ConsentRow {
            id: $row.try_get("id")?,
            customer_id: $row.try_get("customer_id")?,
            purposes: $row.try_get("purposes")?,
            fields: $row.try_get("fields")?,
            recipient: $row.try_get("recipient")?,
            evidence_sha256: $row.try_get("evidence_sha256")?,
            evidence_ref: $row.try_get("evidence_ref")?,
            sensitive: $row.try_get("sensitive")?,
            third_party: $row.try_get("third_party")?,
            granted_at: $row.try_get("granted_at")?,
            expires_at: $row.try_get("expires_at")?,
            withdrawn_at: $row.try_get("withdrawn_at")?,
            recorded_by: $row.try_get("recorded_by")?,
            created_at: $row.try_get("created_at")?,
        }
    }};
}

macro_rules! request_from {
    ($row:expr) => {{
        use sqlx::Row;
        RequestRow {
            id: $row.try_get("id")?,
            requester_id: $row.try_get("requester_id")?,
            requester_role: $row.try_get("requester_role")?,
            requester_team: $row.try_get("requester_team")?,
            purpose: $row.try_get("purpose")?,
            purpose_detail: $row.try_get("purpose_detail")?,
            legal_basis: $row.try_get("legal_basis")?,
            jurisdiction: $row.try_get("jurisdiction")?,
            consent_ids: $row.try_get("consent_ids")?,
            customer_ids: $row.try_get("customer_ids")?,
            fields: $row.try_get("fields")?,
            mode: $row.try_get("mode")?,
            duration_minutes: $row.try_get("duration_minutes")?,
            recipient: $row.try_get("recipient")?,
            recipient_name: $row.try_get("recipient_name")?,
            segment_id: $row.try_get("segment_id")?,
            policy_change: $row.try_get("policy_change")?,
            max_reveals: $row.try_get("max_reveals")?,
            risk: $row.try_get("risk")?,
            checks: $row.try_get("checks")?,
            approvals_needed: $row.try_get("approvals_needed")?,
            state: $row.try_get("state")?,
            created_at: $row.try_get("created_at")?,
            updated_at: $row.try_get("updated_at")?,
        }
    }};
}

macro_rules! grant_from {
    ($row:expr) => {{
        use sqlx::Row;
        GrantRow {
            id: $row.try_get("id")?,
            request_id: $row.try_get("request_id")?,
            user_id: $row.try_get("user_id")?,
            customer_ids: $row.try_get("customer_ids")?,
            fields: $row.try_get("fields")?,
            mode: $row.try_get("mode")?,
            purpose: $row.try_get("purpose")?,
            created_at: $row.try_get("created_at")?,
            expires_at: $row.try_get("expires_at")?,
            max_reveals: $row.try_get("max_reveals")?,
            reveals_used: $row.try_get("reveals_used")?,
            revoked_at: $row.try_get("revoked_at")?,
            revoked_by: $row.try_get("revoked_by")?,
            revoke_reason: $row.try_get("revoke_reason")?,
        }
    }};
}

/// Inserts a risk assessment on an open transaction (a macro: a generic executor function trips the
/// compiler's `Send` inference for the handlers above it).
macro_rules! insert_risk {
    ($tx:expr, $risk:expr) => {
        sqlx::query(
            "INSERT INTO risk_assessment (id, request_id, level, score, factors, purpose, necessity, impact, \
             measures, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&$risk.id)
        .bind(&$risk.request_id)
        .bind(&$risk.level)
        .bind($risk.score)
        .bind(&$risk.factors)
        .bind(&$risk.purpose)
        .bind(&$risk.necessity)
        .bind(&$risk.impact)
        .bind(&$risk.measures)
        .bind($risk.created_at)
        .execute($tx)
        .await?
    };
}

/// Inserts a grant on an open transaction.
macro_rules! insert_grant {
    ($tx:expr, $grant:expr) => {
        sqlx::query(&format!(
            "INSERT INTO unmask_grant ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&$grant.id)
        .bind(&$grant.request_id)
        .bind(&$grant.user_id)
        .bind(&$grant.customer_ids)
        .bind(&$grant.fields)
        .bind(&$grant.mode)
        .bind(&$grant.purpose)
        .bind($grant.created_at)
        .bind($grant.expires_at)
        .bind($grant.max_reveals)
        .bind($grant.reveals_used)
        .bind($grant.revoked_at)
        .bind(&$grant.revoked_by)
        .bind(&$grant.revoke_reason)
        .execute($tx)
        .await?
    };
}

/// A JSON array pattern element for `LIKE` searches on the stored lists: `%"value"%`.
pub(crate) fn contains_pattern(value: &str) -> String {
    format!("%\"{}\"%", value.replace(['%', '_', '"', '\\'], ""))
}

impl Store {
    /// Stores a consent with its audit entry.
    pub async fn insert_consent(&self, row: &ConsentRow, audit: &[AuditEvent]) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO consent ({CONSENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ))
            .bind(&row.id)
            .bind(&row.customer_id)
            .bind(&row.purposes)
            .bind(&row.fields)
            .bind(&row.recipient)
            .bind(&row.evidence_sha256)
            .bind(&row.evidence_ref)
            .bind(row.sensitive)
            .bind(row.third_party)
            .bind(row.granted_at)
            .bind(row.expires_at)
            .bind(row.withdrawn_at)
            .bind(&row.recorded_by)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
            append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// One consent.
    pub async fn consent(&self, id: &str) -> StoreResult<Option<ConsentRow>> {
        let sql = format!("SELECT {CONSENT_COLUMNS} FROM consent WHERE id = $1");
        with_pool!(self, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(consent_from!(row))),
                None => Ok(None),
            }
        })
    }

    /// The consents of one customer, newest first.
    pub async fn consents_of(&self, customer_id: &str) -> StoreResult<Vec<ConsentRow>> {
        let sql = format!(
            "SELECT {CONSENT_COLUMNS} FROM consent WHERE customer_id = $1 ORDER BY granted_at DESC, id DESC"
        );
        with_pool!(self, |pool| {
            let rows = sqlx::query(&sql).bind(customer_id).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(consent_from!(row));
            }
            Ok::<_, StoreError>(out)
        })
    }

    /// Withdraws a consent and, in the same transaction, revokes every live grant whose request rests on consent
    /// for that customer (or names this consent), moving those requests to `revoked`. Returns the revoked grant
    /// ids, or `None` if the consent was not live.
    pub async fn withdraw_consent(
        &self,
        consent: &ConsentRow,
        now: i64,
        by: &str,
        audit: &AuditEvent,
        revoke_audit: impl Fn(&GrantRow) -> AuditEvent,
    ) -> StoreResult<Option<Vec<String>>> {
        let grant_sql = format!(
            "SELECT {GRANT_COLUMNS} FROM unmask_grant WHERE revoked_at IS NULL AND expires_at > $1 AND request_id IN \
             (SELECT id FROM unmask_request WHERE legal_basis = 'consent' AND (consent_ids LIKE $2 OR customer_ids LIKE $3))"
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let withdrawn = sqlx::query(
                "UPDATE consent SET withdrawn_at = $2 WHERE id = $1 AND withdrawn_at IS NULL",
            )
            .bind(&consent.id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if withdrawn != 1 {
                return Ok(None);
            }
            let rows = sqlx::query(&grant_sql)
                .bind(now)
                .bind(contains_pattern(&consent.id))
                .bind(contains_pattern(&consent.customer_id))
                .fetch_all(&mut *tx)
                .await?;
            let mut grants = Vec::with_capacity(rows.len());
            for row in rows {
                grants.push(grant_from!(row));
            }
            let mut events = vec![audit.clone()];
            for grant in &grants {
                sqlx::query(
                    "UPDATE unmask_grant SET revoked_at = $2, revoked_by = $3, revoke_reason = 'consent withdrawn' \
                     WHERE id = $1",
                )
                .bind(&grant.id)
                .bind(now)
                .bind(by)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE unmask_request SET state = 'revoked', updated_at = $2 WHERE id = $1",
                )
                .bind(&grant.request_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                events.push(revoke_audit(grant));
            }
            append_in(&mut *tx, &events).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(Some(grants.into_iter().map(|grant| grant.id).collect()))
        })
    }

    /// Stores a new request with its risk assessment and audit entry.
    pub async fn insert_request(
        &self,
        row: &RequestRow,
        risk: &RiskRow,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO unmask_request ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                 $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)"
            ))
            .bind(&row.id)
            .bind(&row.requester_id)
            .bind(&row.requester_role)
            .bind(&row.requester_team)
            .bind(&row.purpose)
            .bind(&row.purpose_detail)
            .bind(&row.legal_basis)
            .bind(&row.jurisdiction)
            .bind(&row.consent_ids)
            .bind(&row.customer_ids)
            .bind(&row.fields)
            .bind(&row.mode)
            .bind(row.duration_minutes)
            .bind(&row.recipient)
            .bind(&row.recipient_name)
            .bind(&row.policy_change)
            .bind(row.max_reveals)
            .bind(&row.risk)
            .bind(&row.checks)
            .bind(row.approvals_needed)
            .bind(&row.state)
            .bind(row.created_at)
            .bind(row.updated_at)
            .bind(&row.segment_id)
            .execute(&mut *tx)
            .await?;
            insert_risk!(&mut *tx, risk);
            append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// Re-evaluated checks: new checks, risk, approvals needed and state (only from `blocked` or `pending`), with
    /// a new risk assessment. Returns whether the request was still open.
    pub async fn update_request_checks(
        &self,
        row: &RequestRow,
        risk: &RiskRow,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE unmask_request SET checks = $2, risk = $3, approvals_needed = $4, state = $5, updated_at = $6 \
                 WHERE id = $1 AND state IN ('blocked', 'pending')",
            )
            .bind(&row.id)
            .bind(&row.checks)
            .bind(&row.risk)
            .bind(row.approvals_needed)
            .bind(&row.state)
            .bind(row.updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 1 {
                insert_risk!(&mut *tx, risk);
                append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<bool, StoreError>(updated == 1)
        })
    }

    /// One request.
    pub async fn request(&self, id: &str) -> StoreResult<Option<RequestRow>> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM unmask_request WHERE id = $1");
        with_pool!(self, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(request_from!(row))),
                None => Ok(None),
            }
        })
    }

    /// Requests, newest first: of one requester, or all (`None`).
    pub async fn requests(
        &self,
        requester: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<RequestRow>> {
        let sql = match requester {
            Some(_) => format!(
                "SELECT {REQUEST_COLUMNS} FROM unmask_request WHERE requester_id = $1 ORDER BY created_at DESC LIMIT $2"
            ),
            None => format!(
                "SELECT {REQUEST_COLUMNS} FROM unmask_request ORDER BY created_at DESC LIMIT $1"
            ),
        };
        with_pool!(self, |pool| {
            let mut query = sqlx::query(&sql);
            if let Some(requester) = requester {
                query = query.bind(requester);
            }
            let rows = query.bind(limit).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(request_from!(row));
            }
            Ok::<_, StoreError>(out)
        })
    }

    /// Active policy-change requests (approved and not revoked).
    pub async fn active_policy_changes(&self) -> StoreResult<Vec<RequestRow>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM unmask_request WHERE mode = 'policy_change' AND state = 'active' \
             ORDER BY created_at"
        );
        with_pool!(self, |pool| {
            let rows = sqlx::query(&sql).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(request_from!(row));
            }
            Ok::<_, StoreError>(out)
        })
    }

    /// Moves a request to `state` (from `from`), with its audit entries. Returns whether it was in `from`.
    pub async fn set_request_state(
        &self,
        id: &str,
        from: &str,
        state: &str,
        now: i64,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE unmask_request SET state = $3, updated_at = $4 WHERE id = $1 AND state = $2",
            )
            .bind(id)
            .bind(from)
            .bind(state)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 1 {
                append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<bool, StoreError>(updated == 1)
        })
    }

    /// Decisions on a request, oldest first.
    pub async fn decisions(&self, request_id: &str) -> StoreResult<Vec<DecisionRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, (String, String, String, String, i64)>(
                "SELECT request_id, approver_id, decision, reason, decided_at FROM unmask_decision \
                 WHERE request_id = $1 ORDER BY decided_at",
            )
            .bind(request_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(request_id, approver_id, decision, reason, decided_at)| DecisionRow {
                    request_id,
                    approver_id,
                    decision,
                    reason,
                    decided_at,
                },
            )
            .collect())
    }

    /// The newest risk assessment of a request.
    pub async fn risk_assessment(&self, request_id: &str) -> StoreResult<Option<RiskRow>> {
        let row = with_pool!(self, |pool| {
            sqlx::query_as::<_, (String, String, String, i64, String, String, String, String, String, i64)>(
                "SELECT id, request_id, level, score, factors, purpose, necessity, impact, measures, created_at \
                 FROM risk_assessment WHERE request_id = $1 ORDER BY created_at DESC LIMIT 1",
            )
            .bind(request_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(
            |(
                id,
                request_id,
                level,
                score,
                factors,
                purpose,
                necessity,
                impact,
                measures,
                created_at,
            )| RiskRow {
                id,
                request_id,
                level,
                score,
                factors,
                purpose,
                necessity,
                impact,
                measures,
                created_at,
            },
        ))
    }

    /// Records a decision and moves the request from `pending` to `state`, creating `grant` when given, in one
    /// transaction. A second decision by the same approver is a conflict; a request no longer pending returns
    /// `false`.
    pub async fn decide_request(
        &self,
        decision: &DecisionRow,
        state: &str,
        grant: Option<&GrantRow>,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE unmask_request SET state = $2, updated_at = $3 WHERE id = $1 AND state = 'pending'",
            )
            .bind(&decision.request_id)
            .bind(state)
            .bind(decision.decided_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO unmask_decision (request_id, approver_id, decision, reason, decided_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&decision.request_id)
            .bind(&decision.approver_id)
            .bind(&decision.decision)
            .bind(&decision.reason)
            .bind(decision.decided_at)
            .execute(&mut *tx)
            .await?;
            if let Some(grant) = grant {
                insert_grant!(&mut *tx, grant);
            }
            append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<bool, StoreError>(true)
        })
    }

    /// Stores a grant outside the approval flow (break-glass) with its audit entries.
    pub async fn insert_grant(&self, grant: &GrantRow, audit: &[AuditEvent]) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            insert_grant!(&mut *tx, grant);
            append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// Records a decision that does not change the request's state (a DPO's review of a break-glass access). A
    /// second decision by the same person is a conflict.
    pub async fn insert_decision(
        &self,
        decision: &DecisionRow,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO unmask_decision (request_id, approver_id, decision, reason, decided_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&decision.request_id)
            .bind(&decision.approver_id)
            .bind(&decision.decision)
            .bind(&decision.reason)
            .bind(decision.decided_at)
            .execute(&mut *tx)
            .await?;
            append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// Break-glass requests created before `before` that no DPO has reviewed.
    pub async fn unreviewed_break_glass(&self, before: i64) -> StoreResult<Vec<RequestRow>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM unmask_request WHERE mode = 'break_glass' AND created_at < $1 AND id NOT IN \
             (SELECT request_id FROM unmask_decision WHERE decision = 'review') ORDER BY created_at"
        );
        with_pool!(self, |pool| {
            let rows = sqlx::query(&sql).bind(before).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(request_from!(row));
            }
            Ok::<_, StoreError>(out)
        })
    }

    /// One grant.
    pub async fn grant(&self, id: &str) -> StoreResult<Option<GrantRow>> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM unmask_grant WHERE id = $1");
        with_pool!(self, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Ok(Some(grant_from!(row))),
                None => Ok(None),
            }
        })
    }

    /// The grants one holder has from one request, newest first. (An export looks its grant up this way instead of
    /// through [`Store::grants`], which would read the customer lists of every grant the holder ever had.)
    pub async fn grants_of_request(
        &self,
        request_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<GrantRow>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM unmask_grant WHERE request_id = $1 AND user_id = $2 \
             ORDER BY created_at DESC"
        );
        with_pool!(self, |pool| {
            let rows = sqlx::query(&sql)
                .bind(request_id)
                .bind(user_id)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(grant_from!(row));
            }
            Ok::<_, StoreError>(out)
        })
    }

    /// Grants, newest first: of one holder, or all (`None`).
    pub async fn grants(&self, user_id: Option<&str>, limit: i64) -> StoreResult<Vec<GrantRow>> {
        let sql = match user_id {
            Some(_) => format!(
                "SELECT {GRANT_COLUMNS} FROM unmask_grant WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2"
            ),
            None => format!("SELECT {GRANT_COLUMNS} FROM unmask_grant ORDER BY created_at DESC LIMIT $1"),
        };
        with_pool!(self, |pool| {
            let mut query = sqlx::query(&sql);
            if let Some(user) = user_id {
                query = query.bind(user);
            }
            let rows = query.bind(limit).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(grant_from!(row));
            }
            Ok::<_, StoreError>(out)
        })
    }

    /// Uses one reveal of a live grant and appends the reveal's audit entry, in one transaction: the entry is
    /// committed before any plaintext can leave. Returns `false` (nothing recorded) if the grant is revoked,
    /// expired or used up.
    pub async fn use_grant(
        &self,
        grant_id: &str,
        now: i64,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let used = sqlx::query(
                "UPDATE unmask_grant SET reveals_used = reveals_used + 1 WHERE id = $1 AND revoked_at IS NULL \
                 AND expires_at > $2 AND (max_reveals IS NULL OR reveals_used < max_reveals)",
            )
            .bind(grant_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if used != 1 {
                return Ok(false);
            }
            append_in(&mut *tx, std::slice::from_ref(audit)).await?;
            tx.commit().await?;
            Ok::<bool, StoreError>(true)
        })
    }

    /// Revokes one live grant (and its request). Returns whether it was live.
    pub async fn revoke_grant(
        &self,
        grant_id: &str,
        by: &str,
        reason: &str,
        now: i64,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let request: Option<String> = sqlx::query_scalar(
                "UPDATE unmask_grant SET revoked_at = $2, revoked_by = $3, revoke_reason = $4 \
                 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 RETURNING request_id",
            )
            .bind(grant_id)
            .bind(now)
            .bind(by)
            .bind(reason)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(request) = request else {
                return Ok(false);
            };
            sqlx::query(
                "UPDATE unmask_request SET state = 'revoked', updated_at = $2 WHERE id = $1",
            )
            .bind(&request)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<bool, StoreError>(true)
        })
    }

    /// Revokes every live grant of one user (a monitoring rule's `suspend_grants`). Returns how many.
    pub async fn revoke_user_grants(
        &self,
        user_id: &str,
        reason: &str,
        now: i64,
        audit: &[AuditEvent],
    ) -> StoreResult<u64> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE unmask_request SET state = 'revoked', updated_at = $1 WHERE id IN \
                 (SELECT request_id FROM unmask_grant WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1)",
            )
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
            let revoked = sqlx::query(
                "UPDATE unmask_grant SET revoked_at = $1, revoked_by = 'system', revoke_reason = $3 \
                 WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(user_id)
            .bind(reason)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked > 0 {
                append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, StoreError>(revoked)
        })
    }

    /// Revokes every live grant (incident lock-down). Returns how many.
    pub async fn revoke_all_grants(
        &self,
        by: &str,
        reason: &str,
        now: i64,
        audit: &[AuditEvent],
    ) -> StoreResult<u64> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE unmask_request SET state = 'revoked', updated_at = $1 WHERE id IN \
                 (SELECT request_id FROM unmask_grant WHERE revoked_at IS NULL AND expires_at > $1)",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let revoked = sqlx::query(
                "UPDATE unmask_grant SET revoked_at = $1, revoked_by = $2, revoke_reason = $3 \
                 WHERE revoked_at IS NULL AND expires_at > $1",
            )
            .bind(now)
            .bind(by)
            .bind(reason)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<u64, StoreError>(revoked)
        })
    }

    /// Marks requests whose grant has expired as `expired`; returns their grant rows (for the audit trail).
    pub async fn expire_grants(
        &self,
        now: i64,
        audit: impl Fn(&GrantRow) -> AuditEvent,
    ) -> StoreResult<Vec<GrantRow>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM unmask_grant WHERE revoked_at IS NULL AND expires_at <= $1 AND request_id IN \
             (SELECT id FROM unmask_request WHERE state = 'active')"
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(&sql).bind(now).fetch_all(&mut *tx).await?;
            let mut grants = Vec::with_capacity(rows.len());
            for row in rows {
                grants.push(grant_from!(row));
            }
            let mut events = Vec::with_capacity(grants.len());
            for grant in &grants {
                sqlx::query(
                    "UPDATE unmask_request SET state = 'expired', updated_at = $2 WHERE id = $1 AND state = 'active'",
                )
                .bind(&grant.request_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                events.push(audit(grant));
            }
            append_in(&mut *tx, &events).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(grants)
        })
    }
}
