//! What an administrator does to other staff accounts (the web UI's users page): see every account with its role,
//! team, second factor and lock-out, add one, change its role and team, disable and enable it.
//!
//! Each call is checked against [`Action::UserManage`] (admins only) and recorded with the acting admin; the work
//! itself is the operator's own path ([`Veil::add_user`], [`Veil::disable_user`]) with an actor attached, so the
//! web and the command line cannot drift apart. An admin cannot change their own role or disable themselves:
//! there is always an admin left who can undo a mistake.

use serde::Serialize;
use utoipa::ToSchema;

use super::lockout::ACCOUNT_THROTTLE;
use super::{Actor, Password, Role, UserView};
use crate::audit::{event, EventExt, Outcome};
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::{now_ms, Veil};

/// An account as an admin sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserOverview {
    /// The account.
    #[serde(flatten)]
    pub user: UserView,
    /// Whether a second factor (TOTP) is enrolled and confirmed.
    pub mfa_enabled: bool,
    /// Whether the role must use a second factor and the user has not enrolled yet.
    pub mfa_missing: bool,
    /// Milliseconds left of a lock-out after failed sign-ins, if the account is locked now.
    pub locked_for_ms: Option<i64>,
}

impl Veil {
    /// Every account with its role, team, second factor, lock-out and disabled state (admins only).
    pub async fn user_overview(&self, actor: &Actor) -> AppResult<Vec<UserOverview>> {
        self.permit_recorded(actor, Action::UserManage, None)
            .await?;
        let keys = self.mfa_keys().await?;
        let required = self.mfa_required_roles().await?;
        let now = now_ms();
        let mut overview = Vec::new();
        for user in self.list_users().await? {
            let mfa_enabled = self.active_mfa(&user.id.to_string()).await?.is_some();
            let subject = keys.subject(ACCOUNT_THROTTLE.scope, &user.username);
            let locked_for_ms = self
                .lock_remaining(&[(ACCOUNT_THROTTLE, subject)], now)
                .await?;
            overview.push(UserOverview {
                mfa_missing: !mfa_enabled && required.contains(&user.role),
                mfa_enabled,
                locked_for_ms,
                user,
            });
        }
        Ok(overview)
    }

    /// Adds an account (admins only): the username and password rules of [`Veil::add_user`], and the team must
    /// exist.
    pub async fn add_user_as(
        &self,
        actor: &Actor,
        username: &str,
        role: Role,
        team: Option<&str>,
        password: &Password,
    ) -> AppResult<UserView> {
        self.permit_recorded(actor, Action::UserManage, None)
            .await?;
        match self.known_team(team).await {
            Ok(()) => {}
            // Every problem of the form at once: the name and password rules too.
            Err(AppError::Validation(mut errors)) => {
                if let Err(AppError::Validation(more)) = super::validate_username(username) {
                    errors.extend(more);
                }
                if let Err(AppError::Validation(more)) =
                    super::validate_password(password, username).await
                {
                    errors.extend(more);
                }
                return Err(AppError::Validation(errors));
            }
            Err(other) => return Err(other),
        }
        self.insert_new_user(Some(actor), username, role, team, password)
            .await
    }

    /// Changes an account's role and team (admins only; not one's own). The new role applies from the user's
    /// next request.
    pub async fn change_user_role(
        &self,
        actor: &Actor,
        username: &str,
        role: Role,
        team: Option<&str>,
    ) -> AppResult<UserView> {
        self.permit_recorded(actor, Action::UserManage, None)
            .await?;
        let user = self
            .store()
            .user_by_username(username)
            .await?
            .ok_or(AppError::NotFound)?;
        if user.id == actor.user_id.to_string() && role.as_str() != user.role {
            return Err(own_account("role"));
        }
        self.known_team(team).await?;
        let entry = event(Some(actor), "user.change_role", Outcome::Ok).detail(serde_json::json!({
            "user_id": user.id, "username": user.username,
            "from": {"role": user.role, "team": user.team},
            "to": {"role": role.as_str(), "team": team},
        }));
        if !self
            .store()
            .update_user_role_team(&user.id, role.as_str(), team, now_ms(), &[entry])
            .await?
        {
            return Err(AppError::NotFound);
        }
        tracing::info!(user = %user.id, role = role.as_str(), "user role changed");
        self.list_users()
            .await?
            .into_iter()
            .find(|view| view.username == username)
            .ok_or(AppError::NotFound)
    }

    /// Disables an account, ending its sessions, or enables it again (admins only; not one's own).
    pub async fn set_user_disabled(
        &self,
        actor: &Actor,
        username: &str,
        disabled: bool,
    ) -> AppResult<()> {
        self.permit_recorded(actor, Action::UserManage, None)
            .await?;
        if username == actor.username {
            return Err(own_account("username"));
        }
        self.set_disabled(Some(actor), username, disabled).await
    }

    /// Refuses a team that does not exist (`None` is fine: no team).
    async fn known_team(&self, team: Option<&str>) -> AppResult<()> {
        match team {
            Some(team) if !self.team_parents().await?.contains_key(team) => {
                Err(AppError::Validation(vec![FieldError::new(
                    "team",
                    "unknown",
                    "no such team; create it first",
                )]))
            }
            _ => Ok(()),
        }
    }
}

fn own_account(field: &str) -> AppError {
    AppError::Validation(vec![FieldError::new(
        field,
        "own_account",
        "an admin cannot change their own role or disable themselves; ask another admin",
    )])
}
