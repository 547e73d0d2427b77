//! Governed unmasking (取消脱敏): consents, unmask requests with their prerequisite checks and risk assessment,
//! approvals with separation of duties, time-limited grants, and the reveal they allow — the one door to plaintext.
//!
//! A request is evaluated against six checks, each reported met or unmet with its reason and stored with it:
//! 1. `legal_basis`: the purpose and legal basis go together in the jurisdiction (table in `docs/governance.md`);
//! 2. `consent`: where the basis is consent, every customer in scope has a live consent covering the purpose, the
//!    fields and the recipient, with the separate consents for sensitive kinds and third parties; the customers
//!    lacking one are listed;
//! 3. `risk_assessment`: a level computed from the number of people, sensitive kinds, mode, recipient, cross-border
//!    transfer, duration and the requester's recent history, stored as an assessment record;
//! 4. `security`: the requester uses MFA and verified it recently; storage encryption is healthy; an export names
//!    its recipient;
//! 5. `backup`: exports, policy changes and scopes over 100 people need a verified backup younger than 24 hours;
//! 6. `approval`: by a DPO or admin (a manager may approve a low-risk view of their own team's customers), never
//!    the requester; high risk needs two different approvers.
//!
//! States: `blocked` (a check of 1–5 unmet; fixable, then `recheck`), `pending`, `active` (approved: the grant
//! exists), `rejected`, `expired`, `revoked`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{ConsentRow, DecisionRow, GrantRow, RequestRow, RiskRow, SensitiveField};
use zeroize::Zeroizing;

use crate::audit::{event, EventExt, Outcome};
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::CustomerId;
use crate::users::{Actor, Role};
use crate::{format_time, now_ms, Veil};

const MINUTE_MS: i64 = 60 * 1000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
/// Longest grant.
pub const MAX_DURATION_MINUTES: i64 = 30 * 24 * 60;
/// Most customers in one request.
pub const MAX_SCOPE: usize = 10_000;
/// Scopes larger than this need a fresh verified backup.
pub const BULK_SCOPE: usize = 100;
/// How fresh that backup must be.
pub const BACKUP_MAX_AGE_MS: i64 = DAY_MS;

/// Purposes a request (and a consent) may name.
pub const PURPOSES: [&str; 8] = [
    "customer_service",
    "contract_performance",
    "audit",
    "legal_claim",
    "fraud_investigation",
    "regulatory_report",
    "marketing",
    "partner_exchange",
];

/// Legal bases, with their article per jurisdiction (`None`: not a basis there).
pub const LEGAL_BASES: [(&str, Option<&str>, Option<&str>); 7] = [
    (
        "consent",
        Some("PIPL Art. 13(1)"),
        Some("GDPR Art. 6(1)(a)"),
    ),
    (
        "contract",
        Some("PIPL Art. 13(2)"),
        Some("GDPR Art. 6(1)(b)"),
    ),
    (
        "legal_obligation",
        Some("PIPL Art. 13(3)"),
        Some("GDPR Art. 6(1)(c)"),
    ),
    (
        "vital_interests",
        Some("PIPL Art. 13(4)"),
        Some("GDPR Art. 6(1)(d)"),
    ),
    (
        "public_interest",
        Some("PIPL Art. 13(5)"),
        Some("GDPR Art. 6(1)(e)"),
    ),
    ("publicly_disclosed", Some("PIPL Art. 13(6)"), None),
    ("legitimate_interests", None, Some("GDPR Art. 6(1)(f)")),
];

/// Which bases can support which purpose (before the jurisdiction filter of [`LEGAL_BASES`]).
pub fn bases_for_purpose(purpose: &str) -> &'static [&'static str] {
    match purpose {
        "customer_service" | "contract_performance" => &["consent", "contract"],
        "audit" => &["legal_obligation", "legitimate_interests", "consent"],
        "legal_claim" => &["legal_obligation", "legitimate_interests"],
        "fraud_investigation" => &[
            "legal_obligation",
            "legitimate_interests",
            "vital_interests",
        ],
        "regulatory_report" => &["legal_obligation", "public_interest"],
        "marketing" | "partner_exchange" => &["consent"],
        _ => &[],
    }
}

/// Kinds PIPL Art. 28 treats as sensitive personal information (identity documents, financial accounts).
pub fn is_sensitive(field: SensitiveField) -> bool {
    matches!(field, SensitiveField::IdNumber | SensitiveField::BankCard)
}

mod export;
mod fields;
pub mod partner;
pub use export::{verify_export_file, ExportCheck, ExportDelivery, ExportManifest, SignedManifest};
pub use fields::{UnmaskField, CUSTOM_PREFIX};

// ---------------------------------------------------------------------------------------------------------------
// Consents

/// A consent as recorded (`POST /customers/{id}/consents`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// Purposes consented to.
    pub purposes: Vec<String>,
    /// Fields covered (`phone`, `id_number`, …, or `custom.<key>` for a sensitive custom field).
    pub fields: Vec<String>,
    /// `internal`, or the named partner receiving the data.
    pub recipient: String,
    /// SHA-256 (hex) of the signed consent document.
    #[serde(default)]
    pub evidence_sha256: Option<String>,
    /// Where the document is kept, or the e-consent event id.
    #[serde(default)]
    pub evidence_ref: Option<String>,
    /// When given (RFC 3339); default now.
    #[serde(default)]
    pub granted_at: Option<String>,
    /// When it lapses (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Separate consent for sensitive personal information (PIPL Art. 29).
    #[serde(default)]
    pub sensitive: bool,
    /// Separate consent to provide the data to another party (PIPL Art. 23).
    #[serde(default)]
    pub third_party: bool,
}

/// A consent as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    /// Id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// Purposes.
    pub purposes: Vec<String>,
    /// Fields.
    pub fields: Vec<String>,
    /// Recipient.
    pub recipient: String,
    /// Evidence fingerprint.
    pub evidence_sha256: Option<String>,
    /// Evidence reference.
    pub evidence_ref: Option<String>,
    /// Given at.
    pub granted_at: String,
    /// Lapses at.
    pub expires_at: Option<String>,
    /// Withdrawn at.
    pub withdrawn_at: Option<String>,
    /// Sensitive-data consent.
    pub sensitive: bool,
    /// Third-party consent.
    pub third_party: bool,
    /// Whether it is live now.
    pub live: bool,
}

fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn json(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

fn consent_live(row: &ConsentRow, now: i64) -> bool {
    row.withdrawn_at.is_none() && row.granted_at <= now && row.expires_at.is_none_or(|at| at > now)
}

fn consent_view(row: &ConsentRow, now: i64) -> ConsentView {
    ConsentView {
        id: row.id.clone(),
        customer_id: row.customer_id.clone(),
        purposes: list(&row.purposes),
        fields: list(&row.fields),
        recipient: row.recipient.clone(),
        evidence_sha256: row.evidence_sha256.clone(),
        evidence_ref: row.evidence_ref.clone(),
        granted_at: format_time(row.granted_at),
        expires_at: row.expires_at.map(format_time),
        withdrawn_at: row.withdrawn_at.map(format_time),
        sensitive: row.sensitive,
        third_party: row.third_party,
        live: consent_live(row, now),
    }
}

/// The built-in personal fields among `names` (a note's spans map to these alone; requests, consents and reveals
/// also take custom fields: [`Veil::parse_unmask_fields`]).
pub(crate) fn parse_fields(names: &[String], errors: &mut Vec<FieldError>) -> Vec<SensitiveField> {
    let mut fields = Vec::new();
    if names.is_empty() {
        errors.push(FieldError::new(
            "fields",
            "required",
            "name at least one field",
        ));
    }
    for name in names {
        match SensitiveField::parse(name) {
            Some(field) if !fields.contains(&field) => fields.push(field),
            Some(_) => {}
            None => errors.push(FieldError::new(
                "fields",
                "unknown",
                format!("{name} is not a personal-data field (name, birth_date, phone, id_number, email, address, bank_card)"),
            )),
        }
    }
    fields
}

fn parse_purposes(names: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if names.is_empty() {
        errors.push(FieldError::new(
            "purposes",
            "required",
            "name at least one purpose",
        ));
    }
    for name in names {
        if !PURPOSES.contains(&name.as_str()) {
            errors.push(FieldError::new(
                "purposes",
                "unknown",
                format!(
                    "{name} is not a purpose; expected one of {}",
                    PURPOSES.join(", ")
                ),
            ));
        }
    }
    names
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn valid_recipient(recipient: &str) -> bool {
    let trimmed = recipient.trim();
    !trimmed.is_empty()
        && trimmed == recipient
        && recipient.chars().count() <= 100
        && !recipient.chars().any(char::is_control)
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

/// What a request asks for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmaskRequestInput {
    /// Purpose code (see `docs/governance.md`).
    pub purpose: String,
    /// The purpose in words (personal data in it is masked before it is stored).
    pub purpose_detail: String,
    /// Legal basis code.
    pub legal_basis: String,
    /// `CN` (PIPL) or `EU` (GDPR).
    pub jurisdiction: String,
    /// Consents relied on (optional; consent coverage is checked per customer either way).
    #[serde(default)]
    pub consent_ids: Vec<String>,
    /// Which customers.
    pub scope: RequestScope,
    /// Which fields: built-in ones (`phone`, `id_number`, …) and, for a view, sensitive custom fields of the
    /// industry templates as `custom.<key>` (e.g. `custom.annual_income`).
    pub fields: Vec<String>,
    /// `view`, `export` or `policy_change` (the last two cover built-in fields only).
    pub mode: String,
    /// How long the grant lasts once approved (1 minute to 30 days).
    pub duration_minutes: i64,
    /// For an export: the age public key (`age1…`) the file is encrypted to (`null` for views).
    #[serde(default)]
    pub recipient: Option<String>,
    /// Who receives the data: `internal` (default) or the partner's name, as consents name it.
    #[serde(default)]
    pub recipient_name: Option<String>,
    /// Whether the data leaves the jurisdiction.
    #[serde(default)]
    pub cross_border: bool,
    /// Most reveals the grant allows (default unlimited within its time).
    #[serde(default)]
    pub max_reveals: Option<i64>,
    /// Why the access is necessary (for the risk assessment).
    #[serde(default)]
    pub necessity: Option<String>,
    /// For `policy_change`: which field, for which role, becomes what.
    #[serde(default)]
    pub policy_change: Option<PolicyChangeInput>,
}

/// A change of one field's rule for one role (`mode: "policy_change"`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyChangeInput {
    /// The policy field (`phone`, `id_number`, …).
    pub field: String,
    /// The role (`sales`, `manager`, … or a custom role).
    pub role: String,
    /// The new rule: `{"op": "plaintext"}` (masking off) or an operator such as `{"op": "redact"}`.
    #[schema(value_type = Object)]
    pub rule: serde_json::Value,
}

/// A stored policy change: the input plus the rule it replaces (for rollback).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPolicyChange {
    field: String,
    role: String,
    rule: serde_json::Value,
    previous: Option<serde_json::Value>,
}

/// The customers a request covers.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestScope {
    /// Explicit customer ids.
    #[serde(default)]
    pub customer_ids: Vec<String>,
    /// Or one of the requester's saved segments (`GET /api/v1/segments`): its customers in the requester's scope
    /// are resolved when the request is made and stored with it, so approvers decide on a fixed list.
    #[serde(default)]
    pub segment: Option<String>,
}

/// One prerequisite check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// `legal_basis`, `consent`, `risk_assessment`, `security`, `backup` or `approval`.
    pub name: String,
    /// Whether it is met.
    pub met: bool,
    /// Why (and, when unmet, what to do).
    pub reason: String,
    /// Customers lacking consent (for `consent`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customers: Vec<String>,
    /// The reason as a stable code (`consent.lacking`, `backup.stale`, …) with its values in `params`, so a user
    /// interface can word it in the user's language; `reason` is the English wording of the same. Empty on checks
    /// stored before codes existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub code: String,
    /// The values the coded reason names (`{"lacking": "2", "total": "5"}`): counts, names, times; never personal
    /// data.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// A check whose reason is `code` with `params`, worded in English as `reason`.
fn check(
    name: &str,
    met: bool,
    code: &str,
    params: &[(&str, String)],
    reason: impl Into<String>,
) -> Check {
    Check {
        name: name.to_owned(),
        met,
        reason: reason.into(),
        customers: Vec::new(),
        code: format!("{name}.{code}"),
        params: params
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect(),
    }
}

/// How each requested field's masking is undone, shown before anyone asks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reversal {
    /// Field.
    pub field: String,
    /// How it is undone, or why it cannot be.
    pub how: String,
    /// Whether it can be undone at all.
    pub reversible: bool,
}

/// A request as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnmaskRequestView {
    /// Id.
    pub id: String,
    /// Requester user id.
    pub requester_id: String,
    /// Requester role.
    pub requester_role: String,
    /// Purpose.
    pub purpose: String,
    /// Purpose in words (masked).
    pub purpose_detail: String,
    /// Legal basis.
    pub legal_basis: String,
    /// Jurisdiction.
    pub jurisdiction: String,
    /// Consents named.
    pub consent_ids: Vec<String>,
    /// Customers.
    pub customer_ids: Vec<String>,
    /// The saved segment the customers were resolved from, if any.
    pub segment: Option<String>,
    /// Fields.
    pub fields: Vec<String>,
    /// Mode.
    pub mode: String,
    /// Grant length.
    pub duration_minutes: i64,
    /// Export recipient's age key.
    pub recipient: Option<String>,
    /// Who receives the data (`internal` or a partner).
    pub recipient_name: Option<String>,
    /// For a policy change: field, role, new rule and the rule it replaces.
    #[schema(value_type = Object)]
    pub policy_change: Option<serde_json::Value>,
    /// Most reveals.
    pub max_reveals: Option<i64>,
    /// `low`, `medium`, `high`.
    pub risk: String,
    /// The prerequisite checks.
    pub checks: Vec<Check>,
    /// Approvals needed.
    pub approvals_needed: i64,
    /// Approvals given so far.
    pub approvals: Vec<Decision>,
    /// `blocked`, `pending`, `approved`, `rejected`, `active`, `expired`, `revoked`.
    pub state: String,
    /// How each field is undone.
    pub reversal: Vec<Reversal>,
    /// The grant, once approved.
    pub grant_id: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

/// An approver's decision as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Decision {
    /// Approver user id.
    pub approver_id: String,
    /// `approve` or `reject`.
    pub decision: String,
    /// Why (masked).
    pub reason: String,
    /// When.
    pub decided_at: String,
}

/// A decision's input.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// Why (required).
    pub reason: String,
}

/// A grant as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantView {
    /// Id.
    pub id: String,
    /// The request.
    pub request_id: String,
    /// Holder.
    pub user_id: String,
    /// Customers.
    pub customer_ids: Vec<String>,
    /// Fields.
    pub fields: Vec<String>,
    /// Mode.
    pub mode: String,
    /// Purpose.
    pub purpose: String,
    /// Created.
    pub created_at: String,
    /// Expires.
    pub expires_at: String,
    /// Seconds left (0 once expired or revoked).
    pub seconds_left: i64,
    /// Most reveals.
    pub max_reveals: Option<i64>,
    /// Reveals used.
    pub reveals_used: i64,
    /// Revoked at.
    pub revoked_at: Option<String>,
    /// Why revoked.
    pub revoke_reason: Option<String>,
    /// Whether it can be used now.
    pub live: bool,
}

fn grant_live(row: &GrantRow, now: i64) -> bool {
    row.revoked_at.is_none()
        && row.expires_at > now
        && row.max_reveals.is_none_or(|max| row.reveals_used < max)
}

fn grant_view(row: &GrantRow, now: i64) -> GrantView {
    let live = grant_live(row, now);
    GrantView {
        id: row.id.clone(),
        request_id: row.request_id.clone(),
        user_id: row.user_id.clone(),
        customer_ids: list(&row.customer_ids),
        fields: list(&row.fields),
        mode: row.mode.clone(),
        purpose: row.purpose.clone(),
        created_at: format_time(row.created_at),
        expires_at: format_time(row.expires_at),
        seconds_left: if live {
            (row.expires_at - now) / 1000
        } else {
            0
        },
        max_reveals: row.max_reveals,
        reveals_used: row.reveals_used,
        revoked_at: row.revoked_at.map(format_time),
        revoke_reason: row.revoke_reason.clone(),
        live,
    }
}

/// The reveal input (`POST /customers/{id}/reveal`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealInput {
    /// Fields to reveal: built-in ones (`phone`, `id_number`, …) and sensitive custom fields as `custom.<key>`.
    pub fields: Vec<String>,
    /// The grant to use (default: any live grant of the caller covering the customer and fields).
    #[serde(default)]
    pub grant_id: Option<String>,
}

/// The inputs of the risk score, stored with the assessment.
#[derive(Debug, Clone, Serialize)]
struct RiskFactors {
    people: usize,
    sensitive_fields: Vec<String>,
    mode: String,
    external_recipient: bool,
    cross_border: bool,
    duration_minutes: i64,
    requester_reveals_30d: usize,
    requester_rejections_90d: usize,
    score: i64,
}

fn risk_level(score: i64) -> &'static str {
    match score {
        ..=2 => "low",
        3..=5 => "medium",
        _ => "high",
    }
}

/// A request's evaluation before it is submitted ([`Veil::preview_unmask_request`]).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestPreview {
    /// The prerequisite checks, as the submitted request would record them.
    pub checks: Vec<Check>,
    /// `low`, `medium` or `high`.
    pub risk: String,
    /// How many people other than the requester must approve.
    pub approvals_needed: i64,
    /// Whether the request would be blocked (an unmet prerequisite its requester must fix).
    pub blocked: bool,
}

struct Evaluation {
    checks: Vec<Check>,
    risk: RiskRow,
    approvals_needed: i64,
    blocked: bool,
}

impl Veil {
    // ------------------------------------------------------------------ consents

    /// Records a consent for a customer the caller can see (admins, managers, salespeople).
    pub async fn record_consent(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        input: &ConsentInput,
    ) -> AppResult<ConsentView> {
        let id = customer_id.to_string();
        let row = self
            .store()
            .masked_customer(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, Action::ConsentWrite, Some((&row.id, &row.profile)))
            .await?;
        let mut errors = Vec::new();
        let purposes = parse_purposes(&input.purposes, &mut errors);
        let fields = self.parse_unmask_fields(&input.fields, &mut errors).await?;
        if !valid_recipient(&input.recipient) {
            errors.push(FieldError::new(
                "recipient",
                "invalid",
                "`internal` or a partner's name, 1 to 100 characters",
            ));
        }
        if let Some(hash) = &input.evidence_sha256 {
            if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                errors.push(FieldError::new(
                    "evidence_sha256",
                    "invalid",
                    "must be 64 hexadecimal characters (a SHA-256)",
                ));
            }
        }
        if input.evidence_sha256.is_none() && input.evidence_ref.is_none() {
            errors.push(FieldError::new(
                "evidence_sha256",
                "required",
                "give the evidence: the signed document's SHA-256 or an e-consent reference",
            ));
        }
        let now = now_ms();
        let granted_at = match &input.granted_at {
            Some(text) => match crate::audit::parse_time("granted_at", text) {
                Ok(at) if at <= now + 5 * MINUTE_MS => Some(at),
                Ok(_) => {
                    errors.push(FieldError::new(
                        "granted_at",
                        "future",
                        "cannot be in the future",
                    ));
                    None
                }
                Err(_) => {
                    errors.push(FieldError::new(
                        "granted_at",
                        "invalid",
                        "expected an RFC 3339 time",
                    ));
                    None
                }
            },
            None => Some(now),
        };
        let expires_at = match &input.expires_at {
            Some(text) => match crate::audit::parse_time("expires_at", text) {
                Ok(at) if granted_at.is_none_or(|granted| at > granted) => Some(at),
                Ok(_) => {
                    errors.push(FieldError::new(
                        "expires_at",
                        "invalid",
                        "must be after granted_at",
                    ));
                    None
                }
                Err(_) => {
                    errors.push(FieldError::new(
                        "expires_at",
                        "invalid",
                        "expected an RFC 3339 time",
                    ));
                    None
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let field_names: Vec<String> = fields.iter().map(UnmaskField::name).collect();
        let consent = ConsentRow {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: id.clone(),
            purposes: json(&purposes),
            fields: json(&field_names),
            recipient: input.recipient.clone(),
            evidence_sha256: input
                .evidence_sha256
                .as_ref()
                .map(|hash| hash.to_ascii_lowercase()),
            evidence_ref: input
                .evidence_ref
                .as_deref()
                .map(|text| crate::notes::mask_text(text).body),
            sensitive: input.sensitive,
            third_party: input.third_party,
            granted_at: granted_at.unwrap_or(now),
            expires_at,
            withdrawn_at: None,
            recorded_by: Some(actor.user_id.to_string()),
            created_at: now,
        };
        let entry = event(Some(actor), "consent.record", Outcome::Ok)
            .customers([id])
            .fields(field_names)
            .detail(serde_json::json!({"consent_id": consent.id, "purposes": purposes,
                "recipient": consent.recipient, "sensitive": consent.sensitive, "third_party": consent.third_party}));
        self.store().insert_consent(&consent, &[entry]).await?;
        Ok(consent_view(&consent, now))
    }

    /// A customer's consents (the caller's customers; DPOs and auditors see any customer's).
    pub async fn list_consents(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
    ) -> AppResult<Vec<ConsentView>> {
        let id = customer_id.to_string();
        if matches!(actor.role, Role::Dpo | Role::Auditor) {
            self.permit_recorded(actor, Action::ConsentRead, Some(&id))
                .await?;
        } else {
            let row = self
                .store()
                .masked_customer(&id)
                .await?
                .ok_or(AppError::NotFound)?;
            self.authorize(actor, Action::ConsentRead, Some((&row.id, &row.profile)))
                .await?;
        }
        let now = now_ms();
        Ok(self
            .store()
            .consents_of(&id)
            .await?
            .iter()
            .map(|row| consent_view(row, now))
            .collect())
    }

    /// Withdraws a consent at once: every live grant that relied on it is revoked in the same transaction.
    pub async fn withdraw_consent(
        &self,
        actor: &Actor,
        consent_id: &str,
    ) -> AppResult<ConsentView> {
        let consent = self
            .store()
            .consent(consent_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let customer = self
            .store()
            .masked_customer(&consent.customer_id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(
            actor,
            Action::ConsentWrite,
            Some((&customer.id, &customer.profile)),
        )
        .await?;
        let now = now_ms();
        let entry = event(Some(actor), "consent.withdraw", Outcome::Ok)
            .customers([consent.customer_id.clone()])
            .fields(list(&consent.fields))
            .detail(serde_json::json!({"consent_id": consent.id}));
        let revoke_entry = |grant: &GrantRow| {
            event(Some(actor), "grant.revoke", Outcome::Ok)
                .customers(list(&grant.customer_ids))
                .fields(list(&grant.fields))
                .detail(
                    serde_json::json!({"grant_id": grant.id, "request_id": grant.request_id,
                                           "reason": "consent withdrawn"}),
                )
        };
        let revoked = self
            .store()
            .withdraw_consent(
                &consent,
                now,
                &actor.user_id.to_string(),
                &entry,
                revoke_entry,
            )
            .await?
            .ok_or_else(|| AppError::Conflict("the consent was already withdrawn".to_owned()))?;
        tracing::info!(consent = %consent.id, grants_revoked = revoked.len(), "consent withdrawn");
        let mut row = consent;
        row.withdrawn_at = Some(now);
        Ok(consent_view(&row, now))
    }

    // ------------------------------------------------------------------ requests

    /// Creates an unmask request and evaluates its checks. `token` is the caller's session token (for the MFA
    /// freshness check); `None` from the command line.
    pub async fn create_unmask_request(
        &self,
        actor: &Actor,
        token: Option<&str>,
        input: &UnmaskRequestInput,
    ) -> AppResult<UnmaskRequestView> {
        self.permit_recorded(actor, Action::UnmaskRequest, None)
            .await?;
        let (mut row, evaluation) = self.evaluate_request_input(actor, token, input).await?;
        let customer_ids = list(&row.customer_ids);
        let field_names = list(&row.fields);
        row.checks = serde_json::to_string(&evaluation.checks).unwrap_or_else(|_| "[]".to_owned());
        row.risk = evaluation.risk.level.clone();
        row.approvals_needed = evaluation.approvals_needed;
        row.state = if evaluation.blocked {
            "blocked"
        } else {
            "pending"
        }
        .to_owned();
        let entry = event(Some(actor), "unmask.request", Outcome::Ok)
            .customers(customer_ids.clone())
            .fields(field_names)
            .detail(serde_json::json!({"request_id": row.id, "mode": row.mode, "legal_basis": row.legal_basis,
                "risk": row.risk, "state": row.state, "unmet": unmet_names(&evaluation.checks)}));
        let mut entry = entry;
        entry.purpose = Some(row.purpose.clone());
        self.store()
            .insert_request(&row, &evaluation.risk, &[entry])
            .await?;
        self.request_view(&row).await
    }

    /// What submitting `input` would give — the same validation, the same checks, risk level and approvals
    /// needed — without storing or auditing anything: the unmask form's live checks, recomputed as it is filled
    /// in. A role that may not request is refused (and that refusal is recorded) like a submission.
    pub async fn preview_unmask_request(
        &self,
        actor: &Actor,
        token: Option<&str>,
        input: &UnmaskRequestInput,
    ) -> AppResult<RequestPreview> {
        self.permit_recorded(actor, Action::UnmaskRequest, None)
            .await?;
        let (_, evaluation) = self.evaluate_request_input(actor, token, input).await?;
        Ok(RequestPreview {
            checks: evaluation.checks,
            risk: evaluation.risk.level,
            approvals_needed: evaluation.approvals_needed,
            blocked: evaluation.blocked,
        })
    }

    /// Validates a request's input and evaluates its checks: the request row (not yet stored; its checks, risk
    /// and state still empty) and the evaluation.
    async fn evaluate_request_input(
        &self,
        actor: &Actor,
        token: Option<&str>,
        input: &UnmaskRequestInput,
    ) -> AppResult<(RequestRow, Evaluation)> {
        let mut errors = Vec::new();
        if !PURPOSES.contains(&input.purpose.as_str()) {
            errors.push(FieldError::new(
                "purpose",
                "unknown",
                format!("expected one of {}", PURPOSES.join(", ")),
            ));
        }
        if !LEGAL_BASES
            .iter()
            .any(|(name, _, _)| *name == input.legal_basis)
        {
            errors.push(FieldError::new(
                "legal_basis",
                "unknown",
                format!(
                    "expected one of {}",
                    LEGAL_BASES
                        .iter()
                        .map(|(name, _, _)| *name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if !matches!(input.jurisdiction.as_str(), "CN" | "EU") {
            errors.push(FieldError::new(
                "jurisdiction",
                "unknown",
                "expected CN (PIPL) or EU (GDPR)",
            ));
        }
        if input.purpose_detail.trim().is_empty() || input.purpose_detail.chars().count() > 1000 {
            errors.push(FieldError::new(
                "purpose_detail",
                "invalid_length",
                "1 to 1000 characters",
            ));
        }
        let fields = self.parse_unmask_fields(&input.fields, &mut errors).await?;
        // Custom fields are revealed through view grants only: the export's columns and the masking policy cover
        // the built-in fields alone.
        let custom: Vec<String> = fields
            .iter()
            .filter(|field| matches!(field, UnmaskField::Custom(_)))
            .map(UnmaskField::name)
            .collect();
        match input.mode.as_str() {
            "export" if !custom.is_empty() => errors.push(FieldError::new(
                "fields",
                "view_only",
                format!(
                    "{}: sensitive custom fields are revealed through a view grant only; an export carries the \
                     built-in fields",
                    custom.join(", ")
                ),
            )),
            "policy_change" if !custom.is_empty() => errors.push(FieldError::new(
                "fields",
                "view_only",
                format!(
                    "{}: the masking policy covers the built-in fields only; a sensitive custom field is revealed \
                     through a view grant",
                    custom.join(", ")
                ),
            )),
            _ => {}
        }
        if let Some(name) = &input.recipient_name {
            if !valid_recipient(name) {
                errors.push(FieldError::new(
                    "recipient_name",
                    "invalid",
                    "`internal` or a partner's name, 1 to 100 characters",
                ));
            }
        }
        match input.mode.as_str() {
            "view" => {
                if input.recipient.is_some() {
                    errors.push(FieldError::new(
                        "recipient",
                        "unexpected",
                        "a view has no recipient; use mode export to send data to someone",
                    ));
                }
            }
            "export" => match input.recipient.as_deref() {
                Some(key) if key.parse::<age::x25519::Recipient>().is_ok() => {}
                Some(_) => errors.push(FieldError::new(
                    "recipient",
                    "invalid",
                    "an export's recipient is the age public key (age1…) the file is encrypted to",
                )),
                None => errors.push(FieldError::new(
                    "recipient",
                    "required",
                    "an export names the age public key (age1…) of its recipient",
                )),
            },
            "policy_change" => {
                if input.policy_change.is_none() {
                    errors.push(FieldError::new(
                        "policy_change",
                        "required",
                        "name the field, the role and the new rule",
                    ));
                }
            }
            _ => errors.push(FieldError::new(
                "mode",
                "unknown",
                "expected view, export or policy_change",
            )),
        }
        if !(1..=MAX_DURATION_MINUTES).contains(&input.duration_minutes) {
            errors.push(FieldError::new(
                "duration_minutes",
                "out_of_range",
                format!("1 to {MAX_DURATION_MINUTES} minutes"),
            ));
        }
        if input.max_reveals.is_some_and(|max| max < 1) {
            errors.push(FieldError::new("max_reveals", "out_of_range", "at least 1"));
        }
        let mut customers = BTreeSet::new();
        let segment_id = match &input.scope.segment {
            None => None,
            Some(_) if !input.scope.customer_ids.is_empty() => {
                errors.push(FieldError::new(
                    "scope",
                    "ambiguous",
                    "give customer_ids or segment, not both",
                ));
                None
            }
            Some(segment) => match self.segment_members(actor, segment, MAX_SCOPE + 1).await? {
                Some(members) => {
                    customers.extend(members);
                    Some(segment.clone())
                }
                None => {
                    errors.push(FieldError::new(
                        "scope.segment",
                        "unknown",
                        "no saved segment of yours has this id",
                    ));
                    None
                }
            },
        };
        for text in &input.scope.customer_ids {
            match text.parse::<CustomerId>() {
                Ok(id) => {
                    customers.insert(id.to_string());
                }
                Err(_) => errors.push(FieldError::new(
                    "scope.customer_ids",
                    "invalid",
                    "every entry must be a customer id",
                )),
            }
        }
        let policy_change = match (&input.policy_change, input.mode.as_str()) {
            (Some(change), "policy_change") => {
                let (_, mut policy) = self.current_policy().await?;
                let previous = policy
                    .fields
                    .get(&change.field)
                    .and_then(|rules| rules.roles.get(&change.role))
                    .and_then(|rule| serde_json::to_value(rule).ok());
                match serde_json::from_value::<veil_mask::Rule>(change.rule.clone()) {
                    Err(error) => errors.push(FieldError::new(
                        "policy_change.rule",
                        "invalid",
                        format!("not a rule: {error}"),
                    )),
                    Ok(rule) => match policy.fields.get_mut(&change.field) {
                        None => errors.push(FieldError::new(
                            "policy_change.field",
                            "unknown",
                            "no such field in the policy in force",
                        )),
                        Some(rules) => {
                            rules.roles.insert(change.role.clone(), rule);
                            if let Err(problem) = policy.validate() {
                                errors.push(FieldError::new(
                                    "policy_change",
                                    "invalid_policy",
                                    problem.to_string(),
                                ));
                            }
                        }
                    },
                }
                if fields.len() != 1 || fields[0].name() != change.field {
                    errors.push(FieldError::new(
                        "fields",
                        "mismatch",
                        "a policy change names exactly its field in fields",
                    ));
                }
                Some(StoredPolicyChange {
                    field: change.field.clone(),
                    role: change.role.clone(),
                    rule: change.rule.clone(),
                    previous,
                })
            }
            (Some(_), _) => {
                errors.push(FieldError::new(
                    "policy_change",
                    "unexpected",
                    "only a policy_change request carries a policy change",
                ));
                None
            }
            (None, _) => None,
        };
        let whole_base = input.mode == "policy_change";
        if (!whole_base && customers.is_empty()) || customers.len() > MAX_SCOPE {
            errors.push(match &segment_id {
                Some(_) => FieldError::new(
                    "scope.segment",
                    "invalid_length",
                    format!("the segment must hold 1 to {MAX_SCOPE} customers in your scope"),
                ),
                None => FieldError::new(
                    "scope.customer_ids",
                    "invalid_length",
                    format!("1 to {MAX_SCOPE} customers"),
                ),
            });
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        // Every customer must exist and be one the requester may work with (a DPO may ask about anyone). A
        // segment's members were read inside that scope already.
        let scope = self.customer_scope(actor).await?;
        let explicit = if segment_id.is_some() {
            &BTreeSet::new()
        } else {
            &customers
        };
        for id in explicit {
            let row = self.store().masked_customer(id).await?;
            let visible = match &row {
                Some(row) if actor.role == Role::Dpo => row.id == *id,
                Some(row) => {
                    let linked = match &scope.linked_user {
                        Some(user) => self.store().is_linked(id, user).await?,
                        None => true,
                    };
                    linked && crate::authz::in_scope(&scope, &row.profile)
                }
                None => false,
            };
            if !visible {
                return Err(AppError::Validation(vec![FieldError::new(
                    "scope.customer_ids",
                    "unknown",
                    format!("no customer {id} in your scope"),
                )]));
            }
        }
        let now = now_ms();
        let field_names: Vec<String> = fields.iter().map(UnmaskField::name).collect();
        let customer_ids: Vec<String> = customers.into_iter().collect();
        let row = RequestRow {
            id: uuid::Uuid::now_v7().to_string(),
            requester_id: actor.user_id.to_string(),
            requester_role: actor.role.as_str().to_owned(),
            requester_team: actor.team.clone(),
            purpose: input.purpose.clone(),
            purpose_detail: crate::notes::mask_text(input.purpose_detail.trim()).body,
            legal_basis: input.legal_basis.clone(),
            jurisdiction: input.jurisdiction.clone(),
            consent_ids: json(&input.consent_ids),
            customer_ids: json(&customer_ids),
            fields: json(&field_names),
            mode: input.mode.clone(),
            duration_minutes: input.duration_minutes,
            recipient: input.recipient.clone(),
            recipient_name: Some(
                input
                    .recipient_name
                    .clone()
                    .unwrap_or_else(|| "internal".to_owned()),
            ),
            policy_change: policy_change
                .as_ref()
                .map(|change| serde_json::to_string(change).unwrap_or_default()),
            segment_id: segment_id.clone(),
            // An export runs once unless the request says otherwise.
            max_reveals: input.max_reveals.or((input.mode == "export").then_some(1)),
            risk: String::new(),
            checks: String::new(),
            approvals_needed: 1,
            state: String::new(),
            created_at: now,
            updated_at: now,
        };
        let mfa_recent = match token {
            Some(token) => {
                self.recent_mfa(token, crate::mfa::STEP_UP_WINDOW_MS)
                    .await?
            }
            None => false,
        };
        let necessity = input
            .necessity
            .as_deref()
            .map(|text| crate::notes::mask_text(text).body)
            .unwrap_or_else(|| row.purpose_detail.clone());
        let evaluation = self
            .evaluate(actor, &row, mfa_recent, input.cross_border, &necessity)
            .await?;
        Ok((row, evaluation))
    }

    /// Evaluates checks 1–6 for a request.
    async fn evaluate(
        &self,
        requester: &Actor,
        row: &RequestRow,
        mfa_recent: bool,
        cross_border: bool,
        necessity: &str,
    ) -> AppResult<Evaluation> {
        let now = now_ms();
        let customers = list(&row.customer_ids);
        let field_names = list(&row.fields);
        // Stored names were checked when the request was made; a custom field counts as a sensitive kind.
        let fields: Vec<UnmaskField> = field_names
            .iter()
            .filter_map(|name| match name.strip_prefix(CUSTOM_PREFIX) {
                Some(key) => Some(UnmaskField::Custom(key.to_owned())),
                None => SensitiveField::parse(name).map(UnmaskField::Builtin),
            })
            .collect();
        let mut checks = Vec::new();

        // 1. Purpose and legal basis.
        let article = LEGAL_BASES
            .iter()
            .find(|(name, _, _)| *name == row.legal_basis)
            .and_then(|(_, pipl, gdpr)| {
                if row.jurisdiction == "CN" {
                    *pipl
                } else {
                    *gdpr
                }
            });
        let allowed = bases_for_purpose(&row.purpose).contains(&row.legal_basis.as_str());
        let law = if row.jurisdiction == "CN" {
            "PIPL"
        } else {
            "GDPR"
        };
        checks.push(match (article, allowed) {
            (Some(article), true) => check(
                "legal_basis",
                true,
                "supported",
                &[
                    ("basis", row.legal_basis.clone()),
                    ("article", article.to_owned()),
                    ("purpose", row.purpose.clone()),
                ],
                format!(
                    "{} ({article}) supports the purpose {}",
                    row.legal_basis, row.purpose
                ),
            ),
            (None, _) => check(
                "legal_basis",
                false,
                "unknown",
                &[("basis", row.legal_basis.clone()), ("law", law.to_owned())],
                format!("{} is not a legal basis under {law}", row.legal_basis,),
            ),
            (Some(_), false) => check(
                "legal_basis",
                false,
                "not_for_purpose",
                &[
                    ("basis", row.legal_basis.clone()),
                    ("purpose", row.purpose.clone()),
                    ("allowed", bases_for_purpose(&row.purpose).join(",")),
                ],
                format!(
                    "{} does not support the purpose {}; it can rest on: {}",
                    row.legal_basis,
                    row.purpose,
                    bases_for_purpose(&row.purpose).join(", ")
                ),
            ),
        });

        // 2. Consent coverage.
        let recipient = row
            .recipient_name
            .clone()
            .unwrap_or_else(|| "internal".to_owned());
        let external = recipient != "internal";
        let needs_sensitive = fields.iter().any(UnmaskField::is_sensitive_kind);
        let whole_base = row.mode == "policy_change";
        let people = if whole_base {
            self.count_customers().await?.max(0) as usize
        } else {
            customers.len()
        };
        if whole_base && row.legal_basis == "consent" {
            checks.push(check(
                "consent",
                false,
                "policy_change",
                &[],
                "a policy change applies to every customer and cannot rest on individual consents: choose another \
                 legal basis",
            ));
        } else if row.legal_basis == "consent" {
            let named: BTreeSet<String> = list(&row.consent_ids).into_iter().collect();
            let mut lacking = Vec::new();
            for customer in &customers {
                let consents = self.store().consents_of(customer).await?;
                let covered = consents.iter().any(|consent| {
                    consent_live(consent, now)
                        && (named.is_empty() || named.contains(&consent.id))
                        && list(&consent.purposes).contains(&row.purpose)
                        && field_names
                            .iter()
                            .all(|field| list(&consent.fields).contains(field))
                        && consent.recipient == recipient
                        && (!needs_sensitive || consent.sensitive)
                        && (!external || consent.third_party)
                });
                if !covered {
                    lacking.push(customer.clone());
                }
            }
            let mut consent_check = if lacking.is_empty() {
                check("consent", true, "all_covered", &[("total", customers.len().to_string())], format!("all {} customer(s) have a live consent covering the purpose, fields and recipient", customers.len()))
            } else {
                let code = match (needs_sensitive, external) {
                    (false, false) => "lacking",
                    (true, false) => "lacking_sensitive",
                    (false, true) => "lacking_third_party",
                    (true, true) => "lacking_sensitive_third_party",
                };
                check("consent", false, code, &[
                    ("lacking", lacking.len().to_string()),
                    ("total", customers.len().to_string()),
                    ("fields", field_names.join(",")),
                    ("purpose", row.purpose.clone()),
                ], format!(
                    "{} of {} customer(s) lack a live consent covering {} for {}{}{}: record one, then recheck",
                    lacking.len(), customers.len(), field_names.join(", "), row.purpose,
                    if needs_sensitive { " (with the separate consent for sensitive data)" } else { "" },
                    if external { " (with the separate consent for a third party)" } else { "" }))
            };
            consent_check.customers = lacking;
            checks.push(consent_check);
        } else {
            checks.push(check(
                "consent",
                true,
                "not_required",
                &[("basis", row.legal_basis.clone())],
                format!("not required: the basis is {}", row.legal_basis),
            ));
        }

        // 3. Risk assessment.
        let reveals_30d = self
            .store()
            .query_audit(
                &veil_store::AuditFilter {
                    actor_id: Some(row.requester_id.clone()),
                    action: Some("customer.reveal".to_owned()),
                    from: Some(now - 30 * DAY_MS),
                    ..Default::default()
                },
                1000,
            )
            .await?
            .iter()
            .filter(|entry| entry.event.outcome == "ok")
            .count();
        let rejections_90d = self
            .store()
            .requests(Some(&row.requester_id), 500)
            .await?
            .iter()
            .filter(|other| other.state == "rejected" && other.created_at >= now - 90 * DAY_MS)
            .count();
        let mut score = match people {
            0 | 1 => 0,
            2..=10 => 1,
            11..=100 => 2,
            _ => 3,
        };
        let sensitive_fields: Vec<String> = fields
            .iter()
            .filter(|field| field.is_sensitive_kind())
            .map(UnmaskField::name)
            .collect();
        if !sensitive_fields.is_empty() {
            score += 2;
        }
        score += match row.mode.as_str() {
            "export" => 2,
            "policy_change" => 3,
            _ => 0,
        };
        if external {
            score += 2;
        }
        if cross_border {
            score += 2;
        }
        score += match row.duration_minutes {
            ..=1440 => 0,
            1441..=10_080 => 1,
            _ => 2,
        };
        if reveals_30d > 100 {
            score += 1;
        }
        if rejections_90d >= 2 {
            score += 1;
        }
        let level = risk_level(score);
        let factors = RiskFactors {
            people,
            sensitive_fields: sensitive_fields.clone(),
            mode: row.mode.clone(),
            external_recipient: external,
            cross_border,
            duration_minutes: row.duration_minutes,
            requester_reveals_30d: reveals_30d,
            requester_rejections_90d: rejections_90d,
            score,
        };
        let risk = RiskRow {
            id: uuid::Uuid::now_v7().to_string(),
            request_id: row.id.clone(),
            level: level.to_owned(),
            score,
            factors: serde_json::to_string(&factors).unwrap_or_else(|_| "{}".to_owned()),
            purpose: format!("{}: {}", row.purpose, row.purpose_detail),
            necessity: necessity.to_owned(),
            impact: format!(
                "{} person(s); {} field(s){}; {} for {} minutes{}",
                people,
                field_names.len(),
                if sensitive_fields.is_empty() { String::new() } else { format!(" incl. sensitive {}", sensitive_fields.join(", ")) },
                row.mode,
                row.duration_minutes,
                if external { format!("; recipient {recipient}") } else { String::new() }
            ),
            measures: "grant limited to the named customers and fields and to its time; every reveal audited before \
                       plaintext leaves; MFA step-up required; revocable at once; incident lock-down revokes all"
                .to_owned(),
            created_at: now,
        };
        checks.push(check(
            "risk_assessment",
            true,
            "assessed",
            &[
                ("level", level.to_owned()),
                ("score", score.to_string()),
                ("people", people.to_string()),
                ("fields", field_names.len().to_string()),
                ("mode", row.mode.clone()),
                ("minutes", row.duration_minutes.to_string()),
            ],
            format!("risk {level} (score {score}): {}", risk.impact),
        ));

        // 4. Security.
        let mfa_enrolled = self.active_mfa(&row.requester_id).await?.is_some();
        let keys_ok = self.keyring().has_kek(self.keyring().current_kek_version());
        // Each problem as (code, English wording).
        let mut problems: Vec<(&str, &str)> = Vec::new();
        if !mfa_enrolled {
            problems.push((
                "no_mfa",
                "the requester has no MFA: enrol with POST /api/v1/auth/mfa/enroll",
            ));
        } else if !mfa_recent {
            problems.push((
                "mfa_not_recent",
                "no recent second factor: verify with POST /api/v1/auth/mfa/verify, then recheck",
            ));
        }
        if !keys_ok {
            problems.push((
                "keys_unhealthy",
                "storage encryption is not healthy (no active key-encryption key)",
            ));
        }
        if row.mode == "export" && row.recipient.is_none() {
            problems.push(("no_recipient", "an export must name its recipient's key"));
        }
        checks.push(if problems.is_empty() {
            check(
                "security",
                true,
                "ok",
                &[],
                "MFA verified recently; storage encryption healthy",
            )
        } else {
            let codes: Vec<&str> = problems.iter().map(|(code, _)| *code).collect();
            let words: Vec<&str> = problems.iter().map(|(_, words)| *words).collect();
            check(
                "security",
                false,
                "problems",
                &[("problems", codes.join(","))],
                words.join("; "),
            )
        });

        // 5. Backup.
        let needs_backup = row.mode != "view" || people > BULK_SCOPE;
        checks.push(if !needs_backup {
            check("backup", true, "not_required", &[("people", people.to_string()), ("limit", BULK_SCOPE.to_string())],
                format!("not required for a view of {people} ≤ {BULK_SCOPE} people"))
        } else {
            match self.newest_verified_backup_at().await? {
                Some(at) if now - at <= BACKUP_MAX_AGE_MS => check(
                    "backup", true, "verified", &[("at", format_time(at))], format!("a backup verified at {} exists", format_time(at))),
                Some(at) => check("backup", false, "stale", &[("at", format_time(at))], format!(
                    "the newest verified backup ({}) is older than 24 hours: take and verify one (veil backup create, verify)",
                    format_time(at))),
                None => check("backup", false, "none", &[],
                    "no verified backup: bulk and persistent unmasking need one younger than 24 hours"),
            }
        });

        // 6. Approval.
        let approvals_needed = if level == "high" { 2 } else { 1 };
        let manager_may = level == "low" && row.mode == "view";
        let approvals = self
            .store()
            .decisions(&row.id)
            .await?
            .iter()
            .filter(|decision| decision.decision == "approve")
            .count() as i64;
        checks.push(check(
            "approval",
            approvals >= approvals_needed,
            if manager_may { "count_or_manager" } else { "count" },
            &[
                ("approvals", approvals.to_string()),
                ("needed", approvals_needed.to_string()),
                ("requester", requester.username.clone()),
            ],
            format!(
                "{approvals} of {approvals_needed} approval(s) from a DPO or admin{}; the requester ({}) cannot approve",
                if manager_may { " (or a manager of the customers' team)" } else { "" },
                requester.username
            ),
        ));
        let blocked = checks
            .iter()
            .filter(|check| check.name != "approval")
            .any(|check| !check.met);
        Ok(Evaluation {
            checks,
            risk,
            approvals_needed,
            blocked,
        })
    }

    /// When the snapshot of the newest backup whose latest verification passed was taken.
    pub async fn newest_verified_backup_at(&self) -> AppResult<Option<i64>> {
        Ok(self.store().newest_verified_backup().await?)
    }

    /// Closes expired grants every minute until the process ends (several servers may all run it).
    pub fn spawn_grant_expiry(veil: std::sync::Arc<Veil>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                match veil.expire_grants().await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "expired grants closed"),
                    Err(error) => tracing::error!(%error, "closing expired grants failed"),
                }
                match veil.escalate_break_glass().await {
                    Ok(0) => {}
                    Ok(count) => tracing::warn!(
                        count,
                        "break-glass access awaiting DPO review for over 24 hours"
                    ),
                    Err(error) => tracing::error!(%error, "break-glass escalation failed"),
                }
            }
        })
    }

    async fn request_view(&self, row: &RequestRow) -> AppResult<UnmaskRequestView> {
        let decisions = self.store().decisions(&row.id).await?;
        let grant_id = if matches!(row.state.as_str(), "active" | "expired" | "revoked") {
            self.store()
                .grants(Some(&row.requester_id), 1000)
                .await?
                .into_iter()
                .find(|grant| grant.request_id == row.id)
                .map(|grant| grant.id)
        } else {
            None
        };
        let (_, policy) = self.current_policy().await?;
        let reversal = list(&row.fields)
            .into_iter()
            .map(|field| {
                let operator = policy.fields.get(&field).map(|rules| rules.display.clone());
                let (how, reversible) = match operator.as_ref().map(veil_mask::Operator::reversibility) {
                    Some(veil_mask::Reversibility::Irreversible) => (
                        "the display is irreversible (fake or hash): the original is shown from its ciphertext under the grant".to_owned(),
                        true,
                    ),
                    _ => (
                        "masked on display; the stored ciphertext is decrypted with the customer's data key under the grant".to_owned(),
                        true,
                    ),
                };
                Reversal { field, how, reversible }
            })
            .collect();
        Ok(UnmaskRequestView {
            id: row.id.clone(),
            requester_id: row.requester_id.clone(),
            requester_role: row.requester_role.clone(),
            purpose: row.purpose.clone(),
            purpose_detail: row.purpose_detail.clone(),
            legal_basis: row.legal_basis.clone(),
            jurisdiction: row.jurisdiction.clone(),
            consent_ids: list(&row.consent_ids),
            customer_ids: list(&row.customer_ids),
            segment: row.segment_id.clone(),
            fields: list(&row.fields),
            mode: row.mode.clone(),
            duration_minutes: row.duration_minutes,
            recipient: row.recipient.clone(),
            recipient_name: row.recipient_name.clone(),
            policy_change: row
                .policy_change
                .as_deref()
                .and_then(|text| serde_json::from_str(text).ok()),
            max_reveals: row.max_reveals,
            risk: row.risk.clone(),
            checks: serde_json::from_str(&row.checks).unwrap_or_default(),
            approvals_needed: row.approvals_needed,
            approvals: decisions
                .iter()
                .map(|decision| Decision {
                    approver_id: decision.approver_id.clone(),
                    decision: decision.decision.clone(),
                    reason: decision.reason.clone(),
                    decided_at: format_time(decision.decided_at),
                })
                .collect(),
            state: row.state.clone(),
            reversal,
            grant_id,
            created_at: format_time(row.created_at),
            updated_at: format_time(row.updated_at),
        })
    }

    /// Whether `actor` may see `row`: its requester, and anyone who may approve requests.
    fn may_see_request(actor: &Actor, row: &RequestRow) -> bool {
        row.requester_id == actor.user_id.to_string()
            || matches!(actor.role, Role::Dpo | Role::Admin | Role::Auditor)
            || (actor.role == Role::Manager
                && actor.team.is_some()
                && actor.team == row.requester_team)
    }

    /// One request (its requester, approvers, auditors); expiry is applied first.
    pub async fn get_unmask_request(
        &self,
        actor: &Actor,
        id: &str,
    ) -> AppResult<UnmaskRequestView> {
        self.expire_grants().await?;
        let row = self.store().request(id).await?.ok_or(AppError::NotFound)?;
        if !Self::may_see_request(actor, &row) {
            return Err(AppError::NotFound);
        }
        self.request_view(&row).await
    }

    /// Requests: the caller's own, or (DPOs, admins, auditors, managers for their team) everyone's.
    pub async fn list_unmask_requests(&self, actor: &Actor) -> AppResult<Vec<UnmaskRequestView>> {
        self.permit_recorded(actor, Action::UnmaskRequest, None)
            .await
            .or_else(|error| {
                if actor.role == Role::Auditor {
                    Ok(())
                } else {
                    Err(error)
                }
            })?;
        self.expire_grants().await?;
        let all = matches!(
            actor.role,
            Role::Dpo | Role::Admin | Role::Auditor | Role::Manager
        );
        let user = actor.user_id.to_string();
        let rows = self
            .store()
            .requests(if all { None } else { Some(&user) }, 500)
            .await?;
        let mut out = Vec::new();
        for row in rows.iter().filter(|row| Self::may_see_request(actor, row)) {
            out.push(self.request_view(row).await?);
        }
        Ok(out)
    }

    /// Re-evaluates a blocked (or pending) request after its requester fixed something (consent recorded, MFA
    /// verified). `token` as for creation.
    pub async fn recheck_unmask_request(
        &self,
        actor: &Actor,
        token: Option<&str>,
        id: &str,
    ) -> AppResult<UnmaskRequestView> {
        let mut row = self.store().request(id).await?.ok_or(AppError::NotFound)?;
        if row.requester_id != actor.user_id.to_string() {
            return Err(if Self::may_see_request(actor, &row) {
                AppError::Forbidden("only the requester can recheck a request")
            } else {
                AppError::NotFound
            });
        }
        if !matches!(row.state.as_str(), "blocked" | "pending") {
            return Err(AppError::Conflict(format!("the request is {}", row.state)));
        }
        let mfa_recent = match token {
            Some(token) => {
                self.recent_mfa(token, crate::mfa::STEP_UP_WINDOW_MS)
                    .await?
            }
            None => false,
        };
        let cross_border = self
            .store()
            .risk_assessment(&row.id)
            .await?
            .and_then(|risk| serde_json::from_str::<serde_json::Value>(&risk.factors).ok())
            .and_then(|factors| factors["cross_border"].as_bool())
            .unwrap_or(false);
        let necessity = self
            .store()
            .risk_assessment(&row.id)
            .await?
            .map(|risk| risk.necessity)
            .unwrap_or_default();
        let evaluation = self
            .evaluate(actor, &row, mfa_recent, cross_border, &necessity)
            .await?;
        row.checks = serde_json::to_string(&evaluation.checks).unwrap_or_else(|_| "[]".to_owned());
        row.risk = evaluation.risk.level.clone();
        row.approvals_needed = evaluation.approvals_needed;
        row.state = if evaluation.blocked {
            "blocked"
        } else {
            "pending"
        }
        .to_owned();
        row.updated_at = now_ms();
        let entry = event(Some(actor), "unmask.recheck", Outcome::Ok)
            .customers(list(&row.customer_ids))
            .fields(list(&row.fields))
            .detail(
                serde_json::json!({"request_id": row.id, "risk": row.risk, "state": row.state,
                                       "unmet": unmet_names(&evaluation.checks)}),
            );
        if !self
            .store()
            .update_request_checks(&row, &evaluation.risk, &[entry])
            .await?
        {
            return Err(AppError::Conflict(
                "the request was decided meanwhile".to_owned(),
            ));
        }
        self.request_view(&row).await
    }

    /// Approves or rejects a pending request. Separation of duties: never the requester; DPOs and admins, or a
    /// manager for a low-risk view of their own team's customers; each approver once; high risk needs two.
    pub async fn decide_unmask_request(
        &self,
        actor: &Actor,
        id: &str,
        approve: bool,
        input: &DecisionInput,
    ) -> AppResult<UnmaskRequestView> {
        let row = self.store().request(id).await?.ok_or(AppError::NotFound)?;
        if !Self::may_see_request(actor, &row) {
            return Err(AppError::NotFound);
        }
        self.permit_recorded(actor, Action::UnmaskApprove, None)
            .await?;
        let who = actor.user_id.to_string();
        let action = if approve {
            "unmask.approve"
        } else {
            "unmask.reject"
        };
        if row.requester_id == who {
            return self
                .refuse_decision(
                    actor,
                    action,
                    &row,
                    "separation of duties: you cannot decide on your own request",
                )
                .await;
        }
        if actor.role == Role::Manager {
            let low_view = row.risk == "low" && row.mode == "view";
            let scope = self.customer_scope(actor).await?;
            let mut in_team = true;
            for customer in list(&row.customer_ids) {
                let visible = match self.store().masked_customer(&customer).await? {
                    Some(found) => crate::authz::in_scope(&scope, &found.profile),
                    None => false,
                };
                in_team &= visible;
            }
            if !(low_view && in_team) {
                return self
                    .refuse_decision(
                        actor,
                        action,
                        &row,
                        "a manager may only decide low-risk view requests for their own team's customers",
                    )
                    .await;
            }
        }
        if row.state == "blocked" {
            let view = self.request_view(&row).await?;
            let unmet: Vec<String> = view
                .checks
                .iter()
                .filter(|check| !check.met && check.name != "approval")
                .map(|check| format!("{}: {}", check.name, check.reason))
                .collect();
            return Err(AppError::Conflict(format!(
                "the request is blocked by unmet checks; the requester must fix them and recheck ({})",
                unmet.join("; ")
            )));
        }
        if row.state != "pending" {
            return Err(AppError::Conflict(format!("the request is {}", row.state)));
        }
        let decisions = self.store().decisions(&row.id).await?;
        if decisions.iter().any(|decision| decision.approver_id == who) {
            return Err(AppError::Conflict(
                "you have already decided on this request; another approver must give the next approval".to_owned(),
            ));
        }
        let reason = crate::notes::mask_text(input.reason.trim()).body;
        if reason.is_empty() {
            return Err(AppError::Validation(vec![FieldError::new(
                "reason",
                "required",
                "give the reason for the decision",
            )]));
        }
        let now = now_ms();
        let approvals = decisions
            .iter()
            .filter(|decision| decision.decision == "approve")
            .count() as i64
            + i64::from(approve);
        let (state, grant) = if !approve {
            ("rejected", None)
        } else if approvals >= row.approvals_needed && row.mode == "policy_change" {
            // The change itself is the outcome: applied below once the decision is committed.
            ("active", None)
        } else if approvals >= row.approvals_needed {
            let grant = GrantRow {
                id: uuid::Uuid::now_v7().to_string(),
                request_id: row.id.clone(),
                user_id: row.requester_id.clone(),
                customer_ids: row.customer_ids.clone(),
                fields: row.fields.clone(),
                mode: row.mode.clone(),
                purpose: row.purpose.clone(),
                created_at: now,
                expires_at: now + row.duration_minutes * MINUTE_MS,
                max_reveals: row.max_reveals,
                reveals_used: 0,
                revoked_at: None,
                revoked_by: None,
                revoke_reason: None,
            };
            ("active", Some(grant))
        } else {
            ("pending", None)
        };
        let decision = DecisionRow {
            request_id: row.id.clone(),
            approver_id: who,
            decision: if approve { "approve" } else { "reject" }.to_owned(),
            reason: reason.clone(),
            decided_at: now,
        };
        let mut events = vec![event(Some(actor), action, Outcome::Ok)
            .customers(list(&row.customer_ids))
            .fields(list(&row.fields))
            .detail(
                serde_json::json!({"request_id": row.id, "reason": reason, "state": state,
                                       "approvals": approvals, "needed": row.approvals_needed}),
            )];
        if let Some(grant) = &grant {
            let mut entry = event(Some(actor), "grant.create", Outcome::Ok)
                .customers(list(&grant.customer_ids))
                .fields(list(&grant.fields))
                .detail(
                    serde_json::json!({"request_id": row.id, "holder": grant.user_id,
                                           "expires_at": format_time(grant.expires_at)}),
                );
            entry.grant_id = Some(grant.id.clone());
            entry.purpose = Some(grant.purpose.clone());
            events.push(entry);
        }
        if !self
            .store()
            .decide_request(&decision, state, grant.as_ref(), &events)
            .await?
        {
            return Err(AppError::Conflict(
                "the request was decided meanwhile".to_owned(),
            ));
        }
        if state == "active" && row.mode == "policy_change" {
            self.apply_policy_change(actor, &row, false).await?;
        }
        let row = self.store().request(id).await?.ok_or(AppError::NotFound)?;
        self.request_view(&row).await
    }

    /// Applies an approved policy change (or, with `rollback`, puts the replaced rule back) as a new policy
    /// version whose reason names the request.
    async fn apply_policy_change(
        &self,
        actor: &Actor,
        row: &RequestRow,
        rollback: bool,
    ) -> AppResult<()> {
        let change: StoredPolicyChange = row
            .policy_change
            .as_deref()
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| {
                AppError::Internal("a policy_change request without its change".to_owned())
            })?;
        let (_, mut policy) = self.current_policy().await?;
        let rules = policy.fields.get_mut(&change.field).ok_or_else(|| {
            AppError::Conflict(format!(
                "the field {} is no longer in the policy",
                change.field
            ))
        })?;
        let target = if rollback {
            change.previous.clone()
        } else {
            Some(change.rule.clone())
        };
        match target {
            None => {
                rules.roles.remove(&change.role);
            }
            Some(value) => {
                let rule: veil_mask::Rule = serde_json::from_value(value)
                    .map_err(|error| AppError::Internal(format!("stored rule: {error}")))?;
                rules.roles.insert(change.role.clone(), rule);
            }
        }
        policy.validate().map_err(|problem| {
            AppError::Conflict(format!(
                "the policy changed since the request and the change no longer fits: {problem}"
            ))
        })?;
        let reason = if rollback {
            format!(
                "rollback of unmask request {} ({} for {})",
                row.id, change.field, change.role
            )
        } else {
            format!(
                "unmask request {} approved: {} for {} ({}: {})",
                row.id, change.field, change.role, row.purpose, row.purpose_detail
            )
        };
        self.store_policy_version(Some(actor), policy, &reason)
            .await?;
        Ok(())
    }

    /// Whether an active policy-change request turned masking off for `field` and `role`.
    pub(crate) async fn approved_plaintext(&self) -> AppResult<Vec<(String, String, String)>> {
        let mut out = Vec::new();
        for row in self.store().active_policy_changes().await? {
            if let Some(change) = row
                .policy_change
                .as_deref()
                .and_then(|text| serde_json::from_str::<StoredPolicyChange>(text).ok())
            {
                if change.rule.get("op").and_then(|op| op.as_str()) == Some("plaintext") {
                    out.push((change.field, change.role, row.id.clone()));
                }
            }
        }
        Ok(out)
    }

    async fn refuse_decision(
        &self,
        actor: &Actor,
        action: &str,
        row: &RequestRow,
        reason: &'static str,
    ) -> AppResult<UnmaskRequestView> {
        let entry = event(Some(actor), action, Outcome::Denied)
            .customers(list(&row.customer_ids))
            .detail(serde_json::json!({"request_id": row.id, "reason": reason}));
        self.record_best_effort(&[entry]).await;
        Err(AppError::Forbidden(reason))
    }

    /// Revokes the grant of a request (requester, an approver of it, DPO, admin).
    pub async fn revoke_unmask_request(
        &self,
        actor: &Actor,
        id: &str,
    ) -> AppResult<UnmaskRequestView> {
        let row = self.store().request(id).await?.ok_or(AppError::NotFound)?;
        if !Self::may_see_request(actor, &row) {
            return Err(AppError::NotFound);
        }
        if row.mode == "policy_change" {
            // Revoking a policy change rolls it back: the replaced rule returns as a new version.
            let approver = self
                .store()
                .decisions(&row.id)
                .await?
                .iter()
                .any(|decision| decision.approver_id == actor.user_id.to_string());
            if !(approver
                || row.requester_id == actor.user_id.to_string()
                || matches!(actor.role, Role::Dpo | Role::Admin))
            {
                return Err(AppError::NotFound);
            }
            let entry = event(Some(actor), "unmask.revoke", Outcome::Ok)
                .fields(list(&row.fields))
                .detail(serde_json::json!({"request_id": row.id, "rollback": true}));
            if !self
                .store()
                .set_request_state(&row.id, "active", "revoked", now_ms(), &[entry])
                .await?
            {
                return Err(AppError::Conflict(format!("the request is {}", row.state)));
            }
            self.apply_policy_change(actor, &row, true).await?;
            let row = self.store().request(id).await?.ok_or(AppError::NotFound)?;
            return self.request_view(&row).await;
        }
        let grant = self
            .store()
            .grants(Some(&row.requester_id), 1000)
            .await?
            .into_iter()
            .find(|grant| grant.request_id == row.id)
            .ok_or_else(|| {
                AppError::Conflict(format!(
                    "the request is {}; there is no grant to revoke",
                    row.state
                ))
            })?;
        self.revoke_grant(actor, &grant.id).await?;
        let row = self.store().request(id).await?.ok_or(AppError::NotFound)?;
        self.request_view(&row).await
    }

    // ------------------------------------------------------------------ grants

    /// Grants: the caller's own; DPOs, admins and auditors see all.
    pub async fn list_grants(&self, actor: &Actor) -> AppResult<Vec<GrantView>> {
        self.expire_grants().await?;
        let all = matches!(actor.role, Role::Dpo | Role::Admin | Role::Auditor);
        let user = actor.user_id.to_string();
        let now = now_ms();
        Ok(self
            .store()
            .grants(if all { None } else { Some(&user) }, 1000)
            .await?
            .iter()
            .map(|row| grant_view(row, now))
            .collect())
    }

    /// Revokes a live grant: its holder, an approver of its request, a DPO or an admin.
    pub async fn revoke_grant(&self, actor: &Actor, grant_id: &str) -> AppResult<GrantView> {
        let grant = self
            .store()
            .grant(grant_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let who = actor.user_id.to_string();
        let approver = self
            .store()
            .decisions(&grant.request_id)
            .await?
            .iter()
            .any(|decision| decision.approver_id == who);
        let allowed =
            grant.user_id == who || approver || matches!(actor.role, Role::Dpo | Role::Admin);
        if !allowed {
            return Err(AppError::NotFound);
        }
        let now = now_ms();
        let mut entry = event(Some(actor), "grant.revoke", Outcome::Ok)
            .customers(list(&grant.customer_ids))
            .fields(list(&grant.fields))
            .detail(serde_json::json!({"request_id": grant.request_id, "reason": "revoked"}));
        entry.grant_id = Some(grant.id.clone());
        if !self
            .store()
            .revoke_grant(&grant.id, &who, "revoked", now, &[entry])
            .await?
        {
            return Err(AppError::Conflict("the grant is no longer live".to_owned()));
        }
        let grant = self
            .store()
            .grant(grant_id)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(grant_view(&grant, now))
    }

    /// Revokes every live grant (incident lock-down). Returns how many.
    pub async fn revoke_all_grants(&self, actor: Option<&Actor>, reason: &str) -> AppResult<u64> {
        let by = actor.map_or_else(|| "system".to_owned(), |actor| actor.user_id.to_string());
        let entry = event(actor, "grant.revoke_all", Outcome::Ok)
            .detail(serde_json::json!({"reason": reason}));
        Ok(self
            .store()
            .revoke_all_grants(&by, reason, now_ms(), &[entry])
            .await?)
    }

    /// Marks requests whose grants ran out as `expired` (also run periodically by the server).
    pub async fn expire_grants(&self) -> AppResult<usize> {
        let expired = self
            .store()
            .expire_grants(now_ms(), |grant| {
                let mut entry = event(None, "grant.expire", Outcome::Ok)
                    .customers(list(&grant.customer_ids))
                    .fields(list(&grant.fields))
                    .detail(serde_json::json!({"request_id": grant.request_id}));
                entry.grant_id = Some(grant.id.clone());
                entry
            })
            .await?;
        Ok(expired.len())
    }

    // ------------------------------------------------------------------ reveal

    /// The governed reveal: a live grant of the caller covering the customer and fields, a recent MFA step-up,
    /// no incident. The reveal's audit entry and the grant's use commit together before anything is decrypted;
    /// without a grant the answer is [`AppError::GrantRequired`]. Built-in fields and sensitive custom fields
    /// (`custom.<key>`, opened from `custom_sealed` with the same customer key) go through the same checks and the
    /// same audit entry; the answer holds the fields that have a value, by the names asked for.
    pub async fn reveal_customer(
        &self,
        actor: &Actor,
        token: Option<&str>,
        customer_id: CustomerId,
        input: &RevealInput,
    ) -> AppResult<BTreeMap<String, Zeroizing<String>>> {
        let id = customer_id.to_string();
        let mut errors = Vec::new();
        let fields = self.parse_unmask_fields(&input.fields, &mut errors).await?;
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        self.permit_recorded(actor, Action::Reveal, Some(&id))
            .await?;
        let field_names: Vec<String> = fields.iter().map(UnmaskField::name).collect();
        self.use_view_grant(
            actor,
            token,
            &id,
            &field_names,
            input.grant_id.as_deref(),
            None,
        )
        .await?;
        let row = self
            .store()
            .customer_row(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        let key_row = self
            .store()
            .customer_key(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        let authority = crate::customers::reveal::RevealAuthority::granted();
        let mut builtin = Vec::new();
        let mut custom = Vec::new();
        for field in fields {
            match field {
                UnmaskField::Builtin(field) => builtin.push(field),
                UnmaskField::Custom(key) => custom.push(key),
            }
        }
        let mut revealed: BTreeMap<String, Zeroizing<String>> =
            crate::customers::reveal::open_fields(self, &authority, &row, &key_row, &builtin)?
                .into_iter()
                .map(|(field, value)| (field.as_str().to_owned(), value))
                .collect();
        if !custom.is_empty() {
            let dek = self.unwrap_customer_key(&key_row).await?;
            let opened = crate::industries::open_custom(
                &authority,
                &dek,
                &id,
                row.dek_version,
                row.custom_sealed.as_deref(),
                &custom,
            )?;
            revealed.extend(
                opened
                    .into_iter()
                    .map(|(key, value)| (format!("{CUSTOM_PREFIX}{key}"), value)),
            );
        }
        Ok(revealed)
    }

    /// The checks every governed reveal passes, and its record: no incident lock-down, a second factor verified
    /// in the last 10 minutes (`token`'s session), the customer still in the caller's scope (else not found), and
    /// a live `view` grant of the caller (`grant_id`, or any)
    /// covering customer `id` and `field_names`; then the grant's use and the reveal's audit entry
    /// (`customer.reveal`, with `detail`) commit together. Refusals are recorded as denials. Nothing is decrypted
    /// here: callers decrypt only after this returns.
    pub(crate) async fn use_view_grant(
        &self,
        actor: &Actor,
        token: Option<&str>,
        id: &str,
        field_names: &[String],
        grant_id: Option<&str>,
        detail: Option<serde_json::Value>,
    ) -> AppResult<()> {
        let deny = |reason: &str| {
            let mut details = serde_json::json!({"reason": reason});
            if let (Some(extra), Some(map)) = (detail.as_ref(), details.as_object_mut()) {
                map.insert("context".to_owned(), extra.clone());
            }
            event(Some(actor), "customer.reveal", Outcome::Denied)
                .customers([id.to_owned()])
                .fields(field_names.iter().cloned())
                .detail(details)
        };
        if let Err(refusal) = self.ensure_not_locked_down().await {
            self.record_best_effort(&[deny("incident lock-down")]).await;
            return Err(refusal);
        }
        let fresh = match token {
            Some(token) => {
                self.recent_mfa(token, crate::mfa::STEP_UP_WINDOW_MS)
                    .await?
            }
            None => false,
        };
        if !fresh {
            self.record_best_effort(&[deny("no recent MFA step-up")])
                .await;
            return Err(AppError::Forbidden(
                "a reveal needs a second factor verified in the last 10 minutes: POST /api/v1/auth/mfa/verify",
            ));
        }
        // A grant covers a customer only while the caller still sees it: a customer who went back to the pool
        // or to another owner is not found for the previous owner, grant or not. Checked after the step-up, so
        // that without one nobody learns whether a customer exists.
        let profile = self
            .store()
            .masked_customer(id)
            .await?
            .ok_or(AppError::NotFound)?
            .profile;
        self.authorize(actor, Action::Reveal, Some((id, &profile)))
            .await?;
        let now = now_ms();
        let user = actor.user_id.to_string();
        let grants = self.store().grants(Some(&user), 1000).await?;
        let grant = grants.into_iter().find(|grant| {
            grant_id.is_none_or(|wanted| wanted == grant.id)
                && grant.mode == "view"
                && grant_live(grant, now)
                && list(&grant.customer_ids)
                    .iter()
                    .any(|customer| customer == id)
                && field_names
                    .iter()
                    .all(|field| list(&grant.fields).contains(field))
        });
        let Some(grant) = grant else {
            self.record_best_effort(&[deny("no live grant covers this customer and these fields")])
                .await;
            return Err(AppError::GrantRequired);
        };
        let mut entry = event(Some(actor), "customer.reveal", Outcome::Ok)
            .customers([id.to_owned()])
            .fields(field_names.iter().cloned());
        if let Some(detail) = detail {
            entry = entry.detail(detail);
        }
        entry.grant_id = Some(grant.id.clone());
        entry.purpose = Some(grant.purpose.clone());
        if !self
            .store()
            .use_grant(&grant.id, now, &entry)
            .await
            .map_err(|error| {
                tracing::error!(%error, "reveal: audit write failed");
                AppError::AuditUnavailable
            })?
        {
            return Err(AppError::GrantRequired);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Break-glass

/// Longest break-glass access.
pub const BREAK_GLASS_MAX_MINUTES: i64 = 15;
/// A DPO must review a break-glass access within this long, or it escalates to the admins.
pub const BREAK_GLASS_REVIEW_MS: i64 = DAY_MS;

/// An emergency view of one customer without prior approval (`POST /api/v1/break-glass`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassInput {
    /// The customer.
    pub customer_id: String,
    /// Fields to see (built-in, or `custom.<key>` for a sensitive custom field).
    pub fields: Vec<String>,
    /// The emergency, in words (personal data in it is masked before it is stored).
    pub reason: String,
    /// How long (1 to 15 minutes; default 15).
    #[serde(default)]
    pub minutes: Option<i64>,
}

impl Veil {
    /// Opens a break-glass view: a grant of at most 15 minutes on one customer, with no prior approval, for a
    /// user who may work with that customer and verified MFA recently. The DPO is alerted at once (a security
    /// alert, delivered like every other) and must review it within 24 hours, or it escalates to the admins.
    pub async fn break_glass(
        &self,
        actor: &Actor,
        token: Option<&str>,
        input: &BreakGlassInput,
    ) -> AppResult<UnmaskRequestView> {
        let mut errors = Vec::new();
        let fields = self.parse_unmask_fields(&input.fields, &mut errors).await?;
        let reason = input.reason.trim();
        if reason.chars().count() < 10 || reason.chars().count() > 1000 {
            errors.push(FieldError::new(
                "reason",
                "invalid_length",
                "describe the emergency: 10 to 1000 characters",
            ));
        }
        let minutes = input.minutes.unwrap_or(BREAK_GLASS_MAX_MINUTES);
        if !(1..=BREAK_GLASS_MAX_MINUTES).contains(&minutes) {
            errors.push(FieldError::new(
                "minutes",
                "out_of_range",
                format!("1 to {BREAK_GLASS_MAX_MINUTES} minutes"),
            ));
        }
        let customer_id: CustomerId = match input.customer_id.parse() {
            Ok(id) => id,
            Err(_) => {
                errors.push(FieldError::new(
                    "customer_id",
                    "invalid",
                    "not a customer id",
                ));
                CustomerId::default()
            }
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let id = customer_id.to_string();
        let customer = self
            .store()
            .masked_customer(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(
            actor,
            Action::Reveal,
            Some((&customer.id, &customer.profile)),
        )
        .await?;
        self.ensure_not_locked_down().await?;
        let fresh = match token {
            Some(token) => {
                self.recent_mfa(token, crate::mfa::STEP_UP_WINDOW_MS)
                    .await?
            }
            None => false,
        };
        if !fresh {
            return Err(AppError::Forbidden(
                "break-glass needs a second factor verified in the last 10 minutes: POST /api/v1/auth/mfa/verify",
            ));
        }
        let now = now_ms();
        let field_names: Vec<String> = fields.iter().map(UnmaskField::name).collect();
        let masked_reason = crate::notes::mask_text(reason).body;
        let checks = vec![
            check(
                "legal_basis",
                true,
                "emergency",
                &[],
                "emergency access (PIPL Art. 13(4) / GDPR Art. 6(1)(d)), reviewed after the fact",
            ),
            check(
                "approval",
                false,
                "break_glass",
                &[],
                "break-glass: no prior approval; the DPO must review it within 24 hours",
            ),
        ];
        let row = RequestRow {
            id: uuid::Uuid::now_v7().to_string(),
            requester_id: actor.user_id.to_string(),
            requester_role: actor.role.as_str().to_owned(),
            requester_team: actor.team.clone(),
            purpose: "break_glass".to_owned(),
            purpose_detail: masked_reason.clone(),
            legal_basis: "vital_interests".to_owned(),
            jurisdiction: "CN".to_owned(),
            consent_ids: "[]".to_owned(),
            customer_ids: json(std::slice::from_ref(&id)),
            fields: json(&field_names),
            mode: "break_glass".to_owned(),
            duration_minutes: minutes,
            recipient: None,
            recipient_name: Some("internal".to_owned()),
            policy_change: None,
            segment_id: None,
            max_reveals: None,
            risk: "high".to_owned(),
            checks: serde_json::to_string(&checks).unwrap_or_else(|_| "[]".to_owned()),
            approvals_needed: 0,
            state: "active".to_owned(),
            created_at: now,
            updated_at: now,
        };
        let risk = RiskRow {
            id: uuid::Uuid::now_v7().to_string(),
            request_id: row.id.clone(),
            level: "high".to_owned(),
            score: 6,
            factors: serde_json::json!({"break_glass": true, "minutes": minutes}).to_string(),
            purpose: format!("break-glass: {masked_reason}"),
            necessity: masked_reason.clone(),
            impact: format!("1 person; fields {}; {minutes} minutes without prior approval", field_names.join(", ")),
            measures: "at most 15 minutes; DPO alerted at once and reviews within 24 hours, else escalation to the \
                       admins; every reveal audited"
                .to_owned(),
            created_at: now,
        };
        let mut opened = event(Some(actor), "unmask.break_glass", Outcome::Ok)
            .customers([id.clone()])
            .fields(field_names.clone())
            .detail(serde_json::json!({"request_id": row.id, "minutes": minutes, "reason": masked_reason}));
        opened.purpose = Some("break_glass".to_owned());
        self.store().insert_request(&row, &risk, &[opened]).await?;
        let grant = GrantRow {
            id: uuid::Uuid::now_v7().to_string(),
            request_id: row.id.clone(),
            user_id: row.requester_id.clone(),
            customer_ids: row.customer_ids.clone(),
            fields: row.fields.clone(),
            mode: "view".to_owned(),
            purpose: "break_glass".to_owned(),
            created_at: now,
            expires_at: now + minutes * MINUTE_MS,
            max_reveals: None,
            reveals_used: 0,
            revoked_at: None,
            revoked_by: None,
            revoke_reason: None,
        };
        let mut created = event(Some(actor), "grant.create", Outcome::Ok)
            .customers([id.clone()])
            .fields(field_names.clone())
            .detail(
                serde_json::json!({"request_id": row.id, "break_glass": true,
                                       "expires_at": format_time(grant.expires_at)}),
            );
        created.grant_id = Some(grant.id.clone());
        self.store().insert_grant(&grant, &[created]).await?;
        self.raise_alert(
            "break_glass",
            "high",
            Some(actor),
            &row.id,
            format!(
                "break-glass: {} opened a {minutes}-minute view of one customer's {} without approval; DPO review due within 24 hours",
                actor.username,
                field_names.join(", ")
            ),
            serde_json::json!({"request_id": row.id}),
        )
        .await?;
        tracing::warn!(request = %row.id, user = %actor.user_id, "break-glass access opened");
        self.request_view(&row).await
    }

    /// The DPO's review of a break-glass access (recorded; stops the escalation).
    pub async fn review_break_glass(
        &self,
        actor: &Actor,
        id: &str,
        input: &DecisionInput,
    ) -> AppResult<UnmaskRequestView> {
        let row = self.store().request(id).await?.ok_or(AppError::NotFound)?;
        if actor.role != Role::Dpo {
            return Err(if Self::may_see_request(actor, &row) {
                AppError::Forbidden("only the DPO reviews break-glass access")
            } else {
                AppError::NotFound
            });
        }
        if row.mode != "break_glass" {
            return Err(AppError::Conflict(
                "only break-glass access is reviewed after the fact".to_owned(),
            ));
        }
        let reason = crate::notes::mask_text(input.reason.trim()).body;
        if reason.is_empty() {
            return Err(AppError::Validation(vec![FieldError::new(
                "reason",
                "required",
                "give the review's finding",
            )]));
        }
        let decision = DecisionRow {
            request_id: row.id.clone(),
            approver_id: actor.user_id.to_string(),
            decision: "review".to_owned(),
            reason: reason.clone(),
            decided_at: now_ms(),
        };
        let entry = event(Some(actor), "unmask.break_glass.review", Outcome::Ok)
            .customers(list(&row.customer_ids))
            .detail(serde_json::json!({"request_id": row.id, "finding": reason}));
        self.store()
            .insert_decision(&decision, &[entry])
            .await
            .map_err(|error| match error {
                veil_store::StoreError::Conflict(_) => {
                    AppError::Conflict("already reviewed".to_owned())
                }
                other => other.into(),
            })?;
        self.request_view(&row).await
    }

    /// Raises an alert for every break-glass access unreviewed after 24 hours (once each); returns how many
    /// are overdue. Run by the server's grant job and counted by `veil doctor`.
    pub async fn escalate_break_glass(&self) -> AppResult<usize> {
        let overdue = self
            .store()
            .unreviewed_break_glass(now_ms() - BREAK_GLASS_REVIEW_MS)
            .await?;
        for row in &overdue {
            let requester = Actor {
                user_id: row.requester_id.parse().unwrap_or_default(),
                username: self
                    .store()
                    .user_by_id(&row.requester_id)
                    .await?
                    .map(|user| user.username)
                    .unwrap_or_default(),
                role: row.requester_role.parse().unwrap_or(Role::Sales),
                team: row.requester_team.clone(),
                scopes: None,
                source_ip: None,
            };
            self.raise_alert(
                "break_glass_unreviewed",
                "high",
                Some(&requester),
                &row.id,
                format!(
                    "escalation to the admins: the break-glass access {} by {} opened {} is still unreviewed by the DPO after 24 hours",
                    row.id,
                    requester.username,
                    format_time(row.created_at)
                ),
                serde_json::json!({"request_id": row.id}),
            )
            .await?;
        }
        Ok(overdue.len())
    }

    /// Stores a security alert (delivered like the monitor's) with its `security.alert` audit entry, whose detail
    /// carries the rule, the alert id and `evidence`'s fields. `subject` de-duplicates: one alert per rule and
    /// subject.
    pub(crate) async fn raise_alert(
        &self,
        rule: &str,
        severity: &str,
        actor: Option<&Actor>,
        subject: &str,
        summary: String,
        evidence: serde_json::Value,
    ) -> AppResult<()> {
        let now = now_ms();
        let alert = veil_store::AlertRow {
            id: uuid::Uuid::now_v7().to_string(),
            rule: rule.to_owned(),
            severity: severity.to_owned(),
            user_id: actor.map(|actor| actor.user_id.to_string()),
            username: actor.map(|actor| actor.username.clone()),
            source_ip: actor.and_then(|actor| actor.source_ip.clone()),
            subject: subject.to_owned(),
            trigger_seq: 0,
            triggered_at: now,
            summary,
            evidence: evidence.to_string(),
            actions_taken: serde_json::json!([{"action": "alert", "result": "raised"}]).to_string(),
            created_at: now,
            acknowledged_by: None,
            acknowledged_at: None,
            webhook_delivered_at: None,
            webhook_attempts: 0,
            email_delivered_at: None,
            email_attempts: 0,
        };
        let mut detail = serde_json::json!({"rule": rule, "alert_id": alert.id});
        if let (Some(detail), serde_json::Value::Object(extra)) = (detail.as_object_mut(), evidence)
        {
            detail.extend(extra);
        }
        let entry = event(None, "security.alert", Outcome::Ok).detail(detail);
        self.store().insert_security_alert(&alert, &[entry]).await?;
        Ok(())
    }
}

fn unmet_names(checks: &[Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|check| !check.met && check.name != "approval")
        .map(|check| check.name.clone())
        .collect()
}

#[cfg(test)]
fn _futures_are_send(veil: &Veil, actor: &Actor, input: &UnmaskRequestInput) {
    fn assert_send<T: Send>(_: T) {}
    assert_send(veil.create_unmask_request(actor, None, input));
}
