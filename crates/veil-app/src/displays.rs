//! Per-rule displays: every role's view of a field, computed when the value is written (principle 2: the masked
//! view needs no key), and the re-mask job that computes them for every customer after a policy change.
//!
//! The customer row keeps each field's default display. A policy rule whose operator is anything else — a
//! different `mask`, `generalize`, `hash`, `fpe`, `encrypt`, an unseeded `replace_fake` — has its output stored in
//! `customer_display`, keyed by the operator's canonical JSON; reads look it up and never decrypt. `tokenize`
//! records its tokens in the database vault ([`crate::vault`]) in the same transaction. `replace_fake` with a kept
//! mapping produces nothing here (its small value space makes collisions with other customers' fakes likely, which
//! a write cannot see in advance) and reads as fully masked (fail safe), as does any display the re-mask job has
//! not reached yet.
//!
//! The job ([`Veil::remask`]) walks customers in id order in batches, decrypts each batch under a
//! [`RevealAuthority::remask`](crate::customers::reveal::RevealAuthority) after its audit entry is committed,
//! stores the outputs and its cursor in one transaction, and so resumes where it stopped. The server runs it in
//! the background whenever the policy in force has displays not yet computed; `veil policy remask` runs it with a
//! progress bar.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use veil_mask::policy::Policy;
use veil_mask::{Operator, OperatorKeys, Rule};
use veil_store::{DisplayRow, RemaskProgress, SensitiveField};

use crate::audit::{self, EventExt, Outcome};
use crate::customers::{field_kind, reveal};
use crate::error::{AppError, AppResult};
use crate::vault::StagedVault;
use crate::{now_ms, today, Veil};
use veil_mask::operator::SurrogateKind;
use veil_mask::VaultScope;

/// The keyring purpose whose key the keyed display operators (`hash`, `fpe`, `encrypt`, seeded fakes) derive
/// their keys from.
const OPERATOR_PURPOSE: &str = "operator";
/// Customers per re-mask batch (one audit entry and one transaction each).
const REMASK_BATCH: i64 = 500;

/// The canonical key of an operator in `customer_display.rule`.
pub fn rule_key(operator: &Operator) -> String {
    serde_json::to_string(operator).unwrap_or_default()
}

/// Whether `operator`'s output must be computed from the original and stored (everything except the field's
/// default display, kept on the customer row, and `redact`, a constant).
fn needs_stored_display(operator: &Operator) -> bool {
    !matches!(operator, Operator::DefaultMask | Operator::Redact { .. })
}

/// The operators of a policy whose displays are stored, per built-in sensitive field.
#[derive(Debug, Clone, Default)]
pub struct StoredRules {
    rules: Vec<(SensitiveField, Operator, String)>,
}

impl StoredRules {
    /// Every operator of `policy` (field defaults and per-role rules) whose display is stored.
    pub fn of(policy: &Policy) -> Self {
        let mut seen = BTreeSet::new();
        let mut rules = Vec::new();
        for (name, field_rules) in &policy.fields {
            let Some(field) = SensitiveField::parse(name) else {
                continue;
            };
            let operators = std::iter::once(&field_rules.display).chain(
                field_rules.roles.values().filter_map(|rule| match rule {
                    Rule::Apply(operator) => Some(operator),
                    Rule::Plaintext => None,
                }),
            );
            for operator in operators {
                if !needs_stored_display(operator) {
                    continue;
                }
                let key = rule_key(operator);
                if seen.insert((field, key.clone())) {
                    rules.push((field, operator.clone(), key));
                }
            }
        }
        StoredRules { rules }
    }

    /// `(field, rule key)` pairs in force.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.rules
            .iter()
            .map(|(field, _, key)| (field.as_str().to_owned(), key.clone()))
            .collect()
    }

    /// Whether no display needs storing.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether some rule records tokens in the vault.
    pub fn uses_vault(&self) -> bool {
        self.rules
            .iter()
            .any(|(_, operator, _)| matches!(operator, Operator::Tokenize { .. }))
    }

    /// Prepares `vault` for [`StoredRules::compute`] on `field`: deterministic tokens already issued for `value`.
    pub async fn prefetch(
        &self,
        veil: &Veil,
        vault: &mut StagedVault,
        field: SensitiveField,
        value: &str,
    ) -> AppResult<()> {
        for (rule_field, operator, _) in &self.rules {
            if *rule_field == field
                && matches!(
                    operator,
                    Operator::Tokenize {
                        deterministic: true
                    }
                )
            {
                let scope = VaultScope {
                    surrogate: SurrogateKind::Token,
                    kind: Some(field_kind(field)),
                    context: field.as_str(),
                };
                vault.prefetch(veil, &scope, value).await?;
            }
        }
        Ok(())
    }

    /// The stored displays of one customer's `field` whose normalised value is `normalized`. An operator that
    /// cannot make a display (no vault, value outside its domain) gives none: the read then fails safe.
    pub fn compute(
        &self,
        keys: &OperatorKeys,
        customer_id: &str,
        field: SensitiveField,
        normalized: &str,
        vault: Option<&mut StagedVault>,
        out: &mut Vec<DisplayRow>,
    ) {
        self.compute_missing(keys, customer_id, field, normalized, vault, &|_| false, out)
    }

    /// [`StoredRules::compute`] for the rules `stored(rule key)` says are not stored yet.
    #[allow(clippy::too_many_arguments)]
    pub fn compute_missing(
        &self,
        keys: &OperatorKeys,
        customer_id: &str,
        field: SensitiveField,
        normalized: &str,
        mut vault: Option<&mut StagedVault>,
        stored: &dyn Fn(&str) -> bool,
        out: &mut Vec<DisplayRow>,
    ) {
        for (rule_field, operator, key) in &self.rules {
            if *rule_field != field || stored(key) {
                continue;
            }
            let mut context = veil_mask::OperatorContext::new(keys, field.as_str(), today());
            if let (Operator::Tokenize { .. }, Some(vault)) = (operator, vault.as_deref_mut()) {
                context = context.with_vault(vault);
            }
            match veil_mask::operator::apply(operator, field_kind(field), normalized, &mut context)
            {
                Ok(display) => out.push(DisplayRow {
                    customer_id: customer_id.to_owned(),
                    field: field.as_str().to_owned(),
                    rule: key.clone(),
                    display,
                }),
                Err(error) => {
                    // The error names the operator and kind, never the value.
                    tracing::debug!(field = field.as_str(), %error, "no stored display for this rule");
                }
            }
        }
    }
}

/// Where the re-mask job stands for the policy in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RemaskStatus {
    /// The policy version in force.
    pub policy_version: i64,
    /// How many stored displays that policy needs per customer and field (0: nothing to compute).
    pub rules: usize,
    /// Customers done so far for this version.
    pub done: i64,
    /// Whether every customer has this version's displays.
    pub finished: bool,
}

impl Veil {
    /// The keys of the keyed display operators, derived from the keyring's `operator` key (created on first
    /// use, wrapped by the master key like every keyring row).
    pub(crate) async fn operator_keys(&self) -> AppResult<Arc<OperatorKeys>> {
        self.operator_keys
            .get_or_try_init(|| async {
                let (_, root) = self
                    .keyring()
                    .purpose_key(self.store(), OPERATOR_PURPOSE)
                    .await?;
                Ok::<_, AppError>(Arc::new(OperatorKeys::derive(&root)))
            })
            .await
            .cloned()
    }

    /// The stored-display rules of the policy in force, with the keys to compute them.
    pub(crate) async fn display_rules(&self) -> AppResult<(StoredRules, Arc<OperatorKeys>)> {
        let (_, policy) = self.current_policy().await?;
        let rules = StoredRules::of(&policy);
        let keys = if rules.is_empty() {
            Arc::new(OperatorKeys::none())
        } else {
            self.operator_keys().await?
        };
        Ok((rules, keys))
    }

    /// Where the re-mask job stands for the policy in force.
    pub async fn remask_status(&self) -> AppResult<RemaskStatus> {
        let (version, policy) = self.current_policy().await?;
        let rules = StoredRules::of(&policy);
        let progress = self.store().remask_progress(version).await?;
        Ok(RemaskStatus {
            policy_version: version,
            rules: rules.pairs().len(),
            done: progress.as_ref().map_or(0, |progress| progress.done),
            // Version 0 is the built-in default: its displays are all on the customer row.
            finished: version == 0
                || rules.is_empty()
                || progress.is_some_and(|progress| progress.finished_at.is_some()),
        })
    }

    /// Computes the stored displays of the policy in force for every customer, resuming after the last batch a
    /// previous run committed. Each batch's audit entry (`policy.remask`: customers, fields, policy version) is
    /// committed before it is decrypted; nothing decrypted leaves this function. `on_progress(done, total)` is
    /// called after each batch. Returns the final status.
    pub async fn remask(&self, on_progress: &(dyn Fn(u64, u64) + Sync)) -> AppResult<RemaskStatus> {
        let (version, policy) = self.current_policy().await?;
        let rules = StoredRules::of(&policy);
        if version == 0 {
            return self.remask_status().await;
        }
        let mut progress = match self.store().remask_progress(version).await? {
            Some(progress) if progress.finished_at.is_some() => return self.remask_status().await,
            Some(progress) => progress,
            None => RemaskProgress {
                policy_version: version,
                cursor: None,
                done: 0,
                started_at: now_ms(),
                finished_at: None,
            },
        };
        let keys = if rules.is_empty() {
            Arc::new(OperatorKeys::none())
        } else {
            self.operator_keys().await?
        };
        let keep = rules.pairs();
        let total = self.store().count_customers().await?.max(0) as u64;
        let fields: Vec<SensitiveField> = SensitiveField::ALL
            .into_iter()
            .filter(|field| keep.iter().any(|(name, _)| name == field.as_str()))
            .collect();
        let authority = reveal::RevealAuthority::remask();
        loop {
            let batch = self
                .store()
                .customer_rows_after(progress.cursor.as_deref(), REMASK_BATCH)
                .await?;
            let Some(last) = batch.last() else {
                break;
            };
            let last = last.id.clone();
            let ids: Vec<String> = batch.iter().map(|row| row.id.clone()).collect();
            // Displays already stored (rules unchanged by this version) are kept, tokens included.
            let existing = self.store().displays_for(&ids, &keep).await?;
            let mut rows = Vec::new();
            let mut vault = match rules.uses_vault() {
                true => Some(StagedVault::new(self.vault_keys().await?, None)),
                false => None,
            };
            if !fields.is_empty() {
                let entry = audit::event(None, "policy.remask", Outcome::Ok)
                    .customers(ids.iter().cloned())
                    .fields(fields.iter().map(|field| field.as_str()))
                    .detail(serde_json::json!({"policy_version": version}));
                self.record(&[entry]).await?;
                for row in &batch {
                    let Some(key_row) = self.store().customer_key(&row.id).await? else {
                        continue;
                    };
                    let opened = reveal::open_fields(self, &authority, row, &key_row, &fields)?;
                    if let Some(vault) = vault.as_mut() {
                        vault.set_customer(Some(row.id.clone()));
                    }
                    for (field, value) in &opened {
                        if let Some(vault) = vault.as_mut() {
                            rules.prefetch(self, vault, *field, value).await?;
                        }
                        let stored = |rule: &str| {
                            existing.contains_key(&(
                                row.id.clone(),
                                field.as_str().to_owned(),
                                rule.to_owned(),
                            ))
                        };
                        rules.compute_missing(
                            &keys,
                            &row.id,
                            *field,
                            value,
                            vault.as_mut(),
                            &stored,
                            &mut rows,
                        );
                    }
                }
            }
            progress.cursor = Some(last);
            progress.done += batch.len() as i64;
            let vault_rows = vault.map(StagedVault::into_rows).unwrap_or_default();
            self.store()
                .save_remask_batch(&progress, &rows, &vault_rows, &ids, &keep)
                .await?;
            on_progress(progress.done as u64, total.max(progress.done as u64));
        }
        progress.finished_at = Some(now_ms());
        self.store()
            .save_remask_batch(&progress, &[], &[], &[], &keep)
            .await?;
        tracing::info!(version, customers = progress.done, "re-mask finished");
        self.remask_status().await
    }

    /// Wakes the background re-mask loop (after a policy change).
    pub(crate) fn wake_remask(&self) {
        self.remask_wake.notify_one();
    }

    /// Runs the re-mask job whenever the policy in force has displays not yet computed: at start (resuming an
    /// interrupted run), after every policy change, and every `interval` in case another server changed it.
    pub fn spawn_remask(
        veil: Arc<Veil>,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match veil.remask_status().await {
                    Ok(status) if !status.finished => {
                        if let Err(error) = veil.remask(&|_, _| {}).await {
                            tracing::warn!(%error, "re-mask job failed; retrying later");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "re-mask status unavailable"),
                }
                tokio::select! {
                    _ = veil.remask_wake.notified() => {}
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        })
    }
}
