//! The masking policy in force, its history, and recorded changes.
//!
//! A policy document (see [`veil_mask::policy`]) says how each field appears to each role and in each export
//! profile. Versions are append-only. Changing the policy will go through a governed unmask request
//! (`mode: "policy_change"`); until that workflow exists, an admin records a change with a reason, and the change
//! is kept with who made it and when.
//!
//! Reads serve displays computed at write time (principle 2: the masked view needs no key): the default display on
//! the customer row, and every other rule's output in `customer_display` (see [`crate::displays`]); after a change
//! the re-mask job computes the new rules' displays for customers written before it.

use serde::Serialize;
use utoipa::ToSchema;
use veil_mask::policy::{self, Policy, PreviewRow};
use veil_store::{PolicyRow, StoreError};

use crate::authz::Action;
use crate::demo_data::DemoGenerator;
use crate::error::{AppError, AppResult, FieldError};
use crate::users::{Actor, Role};
use crate::{format_time, now_ms, Veil};

/// Seed of the synthetic people that previews show. Not the demo data's seed: a preview never shows a customer
/// of a demo database, let alone of a real one.
pub const PREVIEW_SEED: u64 = 7_357_001;

/// `count` synthetic people (checksum-valid, none real) as preview samples: each a value for every built-in
/// personal field, in the order the customer form has them. Only generated people with every field are taken, so
/// no fixed stand-in value (which a test customer might share) is ever needed.
pub fn preview_samples(count: usize) -> Vec<Vec<(&'static str, String)>> {
    let mut generator = DemoGenerator::new(PREVIEW_SEED);
    std::iter::from_fn(|| Some(generator.next_customer()))
        .filter_map(|person| {
            Some(vec![
                ("name", person.name),
                ("birth_date", person.birth_date.to_string()),
                ("phone", person.phone),
                ("id_number", person.id_number),
                ("email", person.email?),
                ("address", person.address),
                ("bank_card", person.bank_card?),
            ])
        })
        .take(count)
        .collect()
}

/// How one synthetic value of a field looks to each role under the policy in force.
#[derive(Debug, Clone)]
pub struct FieldPreview {
    /// The field.
    pub field: &'static str,
    /// The synthetic value (see [`preview_samples`]).
    pub sample: String,
    /// One row per role of [`PolicyPreview::roles`], in that order.
    pub by_role: Vec<PreviewRow>,
}

/// The policy in force, previewed on a synthetic person for every role.
#[derive(Debug, Clone)]
pub struct PolicyPreview {
    /// Version in force (0: the built-in default).
    pub version: i64,
    /// The roles, in column order.
    pub roles: Vec<Role>,
    /// One per field.
    pub fields: Vec<FieldPreview>,
}

/// A policy version, as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyVersion {
    /// Version number (0 is the built-in default, never recorded).
    pub version: i64,
    /// Why it was changed.
    pub reason: String,
    /// Who changed it.
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// The policy in force with its history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyState {
    /// Version in force (0: the built-in default).
    pub version: i64,
    /// The document in force.
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    /// Every recorded version, newest first.
    pub history: Vec<PolicyVersion>,
}

fn version_of(row: &PolicyRow) -> PolicyVersion {
    PolicyVersion {
        version: row.version,
        reason: row.reason.clone(),
        created_by: row.created_by.clone(),
        created_at: format_time(row.created_at),
    }
}

impl Veil {
    /// The policy in force and its version (0 when none was ever recorded: the built-in default).
    pub async fn current_policy(&self) -> AppResult<(i64, Policy)> {
        match self.store().current_policy().await? {
            Some(row) => {
                let policy = Policy::from_json(&row.document).map_err(|error| {
                    AppError::Internal(format!(
                        "stored policy v{} is invalid: {error}",
                        row.version
                    ))
                })?;
                Ok((row.version, policy))
            }
            None => Ok((0, Policy::default_policy())),
        }
    }

    /// The policy in force with its history. Admins, DPOs and auditors may read it.
    pub async fn policy_state(&self, actor: &Actor) -> AppResult<PolicyState> {
        self.permit_recorded(actor, Action::PolicyRead, None)
            .await?;
        let (version, policy) = self.current_policy().await?;
        let history = self
            .store()
            .policy_history()
            .await?
            .iter()
            .map(version_of)
            .collect();
        Ok(PolicyState {
            version,
            document: serde_json::from_str(&policy.to_json())
                .map_err(|error| AppError::Internal(error.to_string()))?,
            history,
        })
    }

    /// How each field of a synthetic person looks to each role under the policy in force (admins, DPOs and
    /// auditors, like reading the policy). Only [`preview_samples`] are shown: never a customer's data.
    pub async fn policy_preview(&self, actor: &Actor) -> AppResult<PolicyPreview> {
        self.permit_recorded(actor, Action::PolicyRead, None)
            .await?;
        let (version, policy) = self.current_policy().await?;
        let person = preview_samples(1).remove(0);
        let samples: Vec<(&str, &str)> = person
            .iter()
            .map(|(field, value)| (*field, value.as_str()))
            .collect();
        let today = crate::today();
        let by_role: Vec<Vec<PreviewRow>> = Role::ALL
            .iter()
            .map(|role| policy::preview(&policy, role.as_str(), &samples, today))
            .collect();
        let fields = person
            .iter()
            .enumerate()
            .map(|(index, (field, sample))| FieldPreview {
                field,
                sample: sample.clone(),
                by_role: by_role.iter().map(|rows| rows[index].clone()).collect(),
            })
            .collect();
        Ok(PolicyPreview {
            version,
            roles: Role::ALL.to_vec(),
            fields,
        })
    }

    /// Records a new policy version (admin only, with a reason). The document is validated first; an invalid
    /// one is refused with every problem listed.
    pub async fn record_policy_change(
        &self,
        actor: &Actor,
        document: &str,
        reason: &str,
    ) -> AppResult<PolicyVersion> {
        self.permit_recorded(actor, Action::PolicyChange, None)
            .await?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AppError::Validation(vec![FieldError::new(
                "reason",
                "required",
                "a policy change needs a reason",
            )]));
        }
        let policy = Policy::from_json(document).map_err(|error| {
            AppError::Validation(vec![FieldError::new(
                "document",
                "invalid_policy",
                error.to_string(),
            )])
        })?;
        // Turning masking off for a role is the governed "switch in the settings": only an approved
        // policy_change unmask request may add a plaintext rule.
        let (_, current) = self.current_policy().await?;
        let mut added = Vec::new();
        for (field, rules) in &policy.fields {
            for (role, rule) in &rules.roles {
                let before = current
                    .fields
                    .get(field)
                    .and_then(|old| old.roles.get(role));
                if matches!(rule, veil_mask::Rule::Plaintext)
                    && !matches!(before, Some(veil_mask::Rule::Plaintext))
                {
                    added.push(format!("{field} for {role}"));
                }
            }
        }
        if !added.is_empty() {
            return Err(AppError::Validation(vec![FieldError::new(
                "document",
                "plaintext_needs_approval",
                format!(
                    "showing {} in plaintext needs an approved policy_change unmask request                      (POST /api/v1/unmask-requests with mode policy_change)",
                    added.join(", ")
                ),
            )]));
        }
        self.store_policy_version(Some(actor), policy, reason).await
    }

    /// Stores `policy` as the next version (no permission check: callers decide who may), with its audit entry.
    pub(crate) async fn store_policy_version(
        &self,
        actor: Option<&Actor>,
        mut policy: Policy,
        reason: &str,
    ) -> AppResult<PolicyVersion> {
        let (current, _) = self.current_policy().await?;
        // The document's own revision follows the stored version, so an exported document says which it is.
        policy.version = (current + 1) as u64;
        let row = PolicyRow {
            version: current + 1,
            document: policy.to_json(),
            reason: reason.to_owned(),
            created_by: actor.map(|actor| actor.user_id.to_string()),
            created_at: now_ms(),
        };
        let entry = crate::audit::EventExt::detail(
            crate::audit::event(actor, "policy.change", crate::audit::Outcome::Ok),
            serde_json::json!({"version": row.version, "reason": crate::notes::mask_text(reason).body}),
        );
        self.store()
            .insert_policy(&row, &[entry])
            .await
            .map_err(|error| match error {
                StoreError::Conflict(_) => AppError::Conflict(
                    "the policy was changed concurrently; reload and retry".to_owned(),
                ),
                other => other.into(),
            })?;
        tracing::info!(version = row.version, "masking policy changed");
        self.wake_remask();
        Ok(version_of(&row))
    }
}
