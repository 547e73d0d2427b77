//! Teams (a hierarchy that scopes managers) and ownership transfers (an explicit, recorded operation — for
//! example when a salesperson leaves and their customers move to a colleague).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{StoreError, TeamRow, TransferRow};

use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::{CustomerId, UserId};
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// A team.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TeamView {
    /// Name.
    pub name: String,
    /// Parent team.
    pub parent: Option<String>,
}

/// Moves one customer to another owner.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    /// The new owner's user id.
    pub owner: String,
    /// The new team; defaults to the new owner's team.
    pub team: Option<String>,
    /// Why (kept with the transfer).
    pub reason: String,
}

/// A recorded transfer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransferView {
    /// Previous owner.
    pub from_owner: Option<String>,
    /// New owner.
    pub to_owner: Option<String>,
    /// Previous team.
    pub from_team: Option<String>,
    /// New team.
    pub to_team: Option<String>,
    /// Who moved it.
    pub actor: Option<String>,
    /// Why.
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

/// How long a server trusts its cached team tree.
pub const TEAM_CACHE_MS: i64 = 5_000;

fn valid_team_name(name: &str) -> bool {
    (1..=64).contains(&name.chars().count())
        && !name
            .chars()
            .any(|character| character.is_control() || character == '/')
        && name.trim() == name
}

impl Veil {
    /// Each known team's parent. Cached for a few seconds: managers' scopes need it on every request, teams
    /// change rarely, and another server's new team becomes visible here within [`TEAM_CACHE_MS`].
    pub(crate) async fn team_parents(&self) -> AppResult<Arc<HashMap<String, Option<String>>>> {
        if let Some((loaded_at, parents)) = self.team_cache().clone() {
            if now_ms() - loaded_at < TEAM_CACHE_MS {
                return Ok(parents);
            }
        }
        let parents: Arc<HashMap<String, Option<String>>> = Arc::new(
            self.store()
                .list_teams()
                .await?
                .into_iter()
                .map(|team| (team.name, team.parent))
                .collect(),
        );
        *self.team_cache() = Some((now_ms(), parents.clone()));
        Ok(parents)
    }

    /// Adds a team under an existing parent (admin only).
    pub async fn add_team(
        &self,
        actor: &Actor,
        name: &str,
        parent: Option<&str>,
    ) -> AppResult<TeamView> {
        self.permit_recorded(actor, Action::TeamManage, None)
            .await?;
        if !valid_team_name(name) {
            return Err(AppError::Validation(vec![FieldError::new(
                "name",
                "invalid",
                "1 to 64 characters, no control characters or '/', no surrounding spaces",
            )]));
        }
        if let Some(parent) = parent {
            if !self.team_parents().await?.contains_key(parent) {
                return Err(AppError::Validation(vec![FieldError::new(
                    "parent",
                    "unknown",
                    "no such team; create the parent first",
                )]));
            }
        }
        let row = TeamRow {
            name: name.to_owned(),
            parent: parent.map(str::to_owned),
        };
        *self.team_cache() = None;
        let entry = crate::audit::EventExt::detail(
            crate::audit::event(Some(actor), "team.add", crate::audit::Outcome::Ok),
            serde_json::json!({"team": row.name, "parent": row.parent}),
        );
        self.store()
            .insert_team(&row, now_ms(), &[entry])
            .await
            .map_err(|error| match error {
                StoreError::Conflict(_) => AppError::Conflict(format!("team {name} exists")),
                other => other.into(),
            })?;
        Ok(TeamView {
            name: row.name,
            parent: row.parent,
        })
    }

    /// Every team.
    pub async fn list_teams(&self) -> AppResult<Vec<TeamView>> {
        Ok(self
            .store()
            .list_teams()
            .await?
            .into_iter()
            .map(|team| TeamView {
                name: team.name,
                parent: team.parent,
            })
            .collect())
    }

    async fn transfer_target(
        &self,
        actor: &Actor,
        owner: UserId,
        team: Option<&str>,
        reason: &str,
    ) -> AppResult<TransferRow> {
        if reason.trim().is_empty() {
            return Err(AppError::Validation(vec![FieldError::new(
                "reason",
                "required",
                "a transfer needs a reason",
            )]));
        }
        let new_owner = self
            .store()
            .user_by_id(&owner.to_string())
            .await?
            .filter(|user| !user.disabled)
            .ok_or_else(|| {
                AppError::Validation(vec![FieldError::new(
                    "owner",
                    "unknown",
                    "no such active user",
                )])
            })?;
        let to_team = team.map(str::to_owned).or(new_owner.team);
        // A manager may only move customers into their own part of the tree.
        let scope = self.customer_scope(actor).await?;
        if let Some(teams) = &scope.teams {
            if !to_team.as_ref().is_some_and(|team| teams.contains(team)) {
                return Err(AppError::Forbidden(
                    "managers can only transfer customers within their own teams",
                ));
            }
        }
        Ok(TransferRow {
            customer_id: String::new(),
            from_owner: None,
            to_owner: Some(owner.to_string()),
            from_team: None,
            to_team,
            actor_id: Some(actor.user_id.to_string()),
            reason: reason.trim().to_owned(),
            created_at: now_ms(),
        })
    }

    /// Moves one customer to another owner (and team), recording who, when and why.
    pub async fn transfer_customer(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        input: &TransferInput,
    ) -> AppResult<Vec<TransferView>> {
        let id = customer_id.to_string();
        let profile = self
            .store()
            .masked_customer(&id)
            .await?
            .ok_or(AppError::NotFound)?
            .profile;
        self.authorize(actor, Action::CustomerTransfer, Some((&id, &profile)))
            .await?;
        let owner: UserId = input.owner.parse().map_err(|_| {
            AppError::Validation(vec![FieldError::new(
                "owner",
                "invalid",
                "must be a user id",
            )])
        })?;
        let transfer = self
            .transfer_target(actor, owner, input.team.as_deref(), &input.reason)
            .await?;
        let entry = transfer_event(actor, &transfer);
        self.store()
            .transfer_customers(std::slice::from_ref(&id), None, &transfer, &entry)
            .await?;
        tracing::info!(customer = %id, actor = %actor.user_id, "customer transferred");
        self.transfer_history(actor, customer_id).await
    }

    /// Moves every customer of one user to another (admin only: a salesperson leaving). Returns how many moved.
    pub async fn transfer_all_customers(
        &self,
        actor: &Actor,
        from: UserId,
        to: UserId,
        reason: &str,
    ) -> AppResult<u64> {
        // Moving a whole portfolio is user management: admins only, never through an API token.
        self.permit_recorded(actor, Action::UserManage, None)
            .await?;
        let transfer = self.transfer_target(actor, to, None, reason).await?;
        let moved = self
            .store()
            .transfer_customers(
                &[],
                Some(&from.to_string()),
                &transfer,
                &transfer_event(actor, &transfer),
            )
            .await?;
        tracing::info!(moved, actor = %actor.user_id, "customers transferred in bulk");
        Ok(moved)
    }

    /// A customer's transfer history (for callers who can see the customer).
    pub async fn transfer_history(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
    ) -> AppResult<Vec<TransferView>> {
        self.get_customer(actor, customer_id).await?;
        Ok(self
            .store()
            .customer_transfers(&customer_id.to_string())
            .await?
            .into_iter()
            .map(|row| TransferView {
                from_owner: row.from_owner,
                to_owner: row.to_owner,
                from_team: row.from_team,
                to_team: row.to_team,
                actor: row.actor_id,
                reason: row.reason,
                at: format_time(row.created_at),
            })
            .collect())
    }
}

/// The audit entry of a transfer (the store fills in the customers that moved).
fn transfer_event(actor: &Actor, transfer: &TransferRow) -> veil_store::AuditEvent {
    crate::audit::EventExt::detail(
        crate::audit::event(Some(actor), "customer.transfer", crate::audit::Outcome::Ok),
        serde_json::json!({
            "to_owner": transfer.to_owner,
            "to_team": transfer.to_team,
            "reason": crate::notes::mask_text(&transfer.reason).body,
        }),
    )
}
