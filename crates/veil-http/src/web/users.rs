//! The administrators' users and teams page (`/users`): every account with its role, team, second factor,
//! lock-out and disabled state; adding an account; changing its role and team; disabling and enabling it; the
//! team tree and adding a team under a parent.
//!
//! Each action is the domain's call (`user_overview`, `add_user_as`, `change_user_role`, `set_user_disabled`,
//! `add_team`), which checks the role and records who did it; this module only turns forms into calls and errors
//! into messages next to the field, in the user's language. A password typed into the form is never put back
//! into the page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::error::FieldError;
use veil_app::users::{Password, Role};
use veil_app::AppError;

use super::admin::EmptyForm;
use super::i18n::Tr;
use super::session::{SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// One option of a `<select>`.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// An account as shown.
struct UserRow {
    username: String,
    role_key: String,
    team: String,
    mfa_key: &'static str,
    status_key: &'static str,
    locked_for: Option<String>,
    disabled: bool,
    is_self: bool,
    roles: Vec<Choice>,
    teams: Vec<Choice>,
}

/// A team as shown.
struct TeamRow {
    name: String,
    parent: String,
}

/// What the add-user form shows again after a refusal (never the password).
#[derive(Default)]
struct NewUserForm {
    username: String,
    username_error: Option<String>,
    password_error: Option<String>,
    role_error: Option<String>,
    team_error: Option<String>,
}

/// What the add-team form shows again after a refusal.
#[derive(Default)]
struct NewTeamForm {
    name: String,
    name_error: Option<String>,
    parent_error: Option<String>,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersTemplate {
    t: Tr,
    layout: Layout,
    users: Vec<UserRow>,
    teams: Vec<TeamRow>,
    new_roles: Vec<Choice>,
    new_teams: Vec<Choice>,
    parents: Vec<Choice>,
    new_user: NewUserForm,
    new_team: NewTeamForm,
    notice: Option<String>,
    error: Option<String>,
}

/// What to show besides the lists.
#[derive(Default)]
struct Outcome {
    notice: Option<String>,
    error: Option<String>,
    new_user: NewUserForm,
    new_team: NewTeamForm,
    /// The role and team picked in the add-user form, kept after a refusal.
    picked: Option<(String, String)>,
    /// The parent picked in the add-team form.
    parent: String,
}

fn role_choices(tr: Tr, selected: &str) -> Vec<Choice> {
    Role::ALL
        .iter()
        .map(|role| Choice {
            value: role.as_str().to_owned(),
            label: tr.get(&format!("role.{}", role.as_str())).to_owned(),
            selected: role.as_str() == selected,
        })
        .collect()
}

fn team_choices(tr: Tr, teams: &[TeamRow], selected: &str) -> Vec<Choice> {
    std::iter::once(Choice {
        value: String::new(),
        label: tr.get("users.no_team").to_owned(),
        selected: selected.is_empty(),
    })
    .chain(teams.iter().map(|team| Choice {
        value: team.name.clone(),
        label: team.name.clone(),
        selected: team.name == selected,
    }))
    .collect()
}

async fn users_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    outcome: Outcome,
    status: StatusCode,
) -> Response {
    let tr = page.tr;
    let overview = match state.veil.user_overview(&user.actor).await {
        Ok(overview) => overview,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let teams: Vec<TeamRow> = match state.veil.list_teams().await {
        Ok(teams) => teams
            .into_iter()
            .map(|team| TeamRow {
                name: team.name,
                parent: team.parent.unwrap_or_default(),
            })
            .collect(),
        Err(error) => return error_page(page, Some(user), &error),
    };
    let users = overview
        .iter()
        .map(|row| {
            let team = row.user.team.clone().unwrap_or_default();
            let locked_minutes = row
                .locked_for_ms
                .map(|remaining| (remaining + 59_999) / 60_000);
            UserRow {
                username: row.user.username.clone(),
                role_key: format!("role.{}", row.user.role.as_str()),
                mfa_key: if row.mfa_enabled {
                    "users.mfa_on"
                } else if row.mfa_missing {
                    "users.mfa_missing"
                } else {
                    "users.mfa_off"
                },
                status_key: if row.user.disabled {
                    "users.disabled"
                } else if locked_minutes.is_some() {
                    "users.locked"
                } else {
                    "users.active"
                },
                locked_for: locked_minutes
                    .filter(|_| !row.user.disabled)
                    .map(|minutes| tr.fill("users.locked_for", &[("n", &minutes.to_string())])),
                disabled: row.user.disabled,
                is_self: row.user.id == user.actor.user_id,
                roles: role_choices(tr, row.user.role.as_str()),
                teams: team_choices(tr, &teams, &team),
                team,
            }
        })
        .collect();
    let (picked_role, picked_team) = outcome
        .picked
        .unwrap_or_else(|| (Role::Sales.as_str().to_owned(), String::new()));
    let template = UsersTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        users,
        new_roles: role_choices(tr, &picked_role),
        new_teams: team_choices(tr, &teams, &picked_team),
        parents: team_choices(tr, &teams, &outcome.parent),
        teams,
        new_user: outcome.new_user,
        new_team: outcome.new_team,
        notice: outcome.notice,
        error: outcome.error,
    };
    render(&template, tr, status)
}

/// `?done=…` after an action.
#[derive(Deserialize)]
pub struct DoneParams {
    done: Option<String>,
}

/// The users and teams page.
pub async fn list(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<DoneParams>,
) -> Response {
    let notice = match params.done.as_deref() {
        Some("added") => Some("users.done_added"),
        Some("changed") => Some("users.done_changed"),
        Some("disabled") => Some("users.done_disabled"),
        Some("enabled") => Some("users.done_enabled"),
        Some("team") => Some("users.done_team"),
        _ => None,
    }
    .map(|key| page.tr.get(key).to_owned());
    let outcome = Outcome {
        notice,
        ..Outcome::default()
    };
    users_page(&state, &page, &user, outcome, StatusCode::OK).await
}

/// The message for the first error on `field`, in the page's language.
fn error_on(tr: Tr, errors: &[FieldError], field: &str) -> Option<String> {
    errors
        .iter()
        .find(|error| error.field == field)
        .map(|error| tr.field_error(&error.code).to_owned())
}

/// One line for errors shown above the lists: "field: message" for each.
fn summary(tr: Tr, username: &str, errors: &[FieldError]) -> String {
    let messages: Vec<String> = errors
        .iter()
        .map(|error| tr.field_error(&error.code).to_owned())
        .collect();
    tr.fill(
        "users.refused",
        &[("user", username), ("reason", &messages.join(" "))],
    )
}

fn parse_role(value: &str) -> Result<Role, Vec<FieldError>> {
    value
        .parse::<Role>()
        .map_err(|_| vec![FieldError::new("role", "unknown", "no such role")])
}

fn optional_text(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|value| !value.is_empty())
}

/// The add-user form.
#[derive(Deserialize)]
pub struct NewUserInput {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    team: String,
}

/// Adds an account, or shows the form again with each problem next to its field.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<NewUserInput>,
) -> Response {
    let SignedForm { user, form } = signed;
    let tr = page.tr;
    let password = Password::new(form.password);
    let result = match parse_role(&form.role) {
        Ok(role) => state
            .veil
            .add_user_as(
                &user.actor,
                form.username.trim(),
                role,
                optional_text(&form.team),
                &password,
            )
            .await
            .map(|_| ()),
        Err(errors) => Err(AppError::Validation(errors)),
    };
    let errors = match result {
        Ok(()) => return Redirect::to("/users?done=added").into_response(),
        Err(AppError::Validation(errors)) => errors,
        Err(AppError::Conflict(_)) => vec![FieldError::new("username", "taken", "taken")],
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let outcome = Outcome {
        new_user: NewUserForm {
            username: form.username,
            username_error: error_on(tr, &errors, "username"),
            password_error: error_on(tr, &errors, "password"),
            role_error: error_on(tr, &errors, "role"),
            team_error: error_on(tr, &errors, "team"),
        },
        error: Some(tr.get("users.fix_errors").to_owned()),
        picked: Some((form.role, form.team)),
        ..Outcome::default()
    };
    users_page(
        &state,
        &page,
        &user,
        outcome,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// The role-and-team form of one account.
#[derive(Deserialize)]
pub struct RoleInput {
    #[serde(default)]
    role: String,
    #[serde(default)]
    team: String,
}

async fn refused(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    username: &str,
    error: AppError,
) -> Response {
    match error {
        AppError::Validation(errors) => {
            let outcome = Outcome {
                error: Some(summary(page.tr, username, &errors)),
                ..Outcome::default()
            };
            users_page(state, page, user, outcome, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        error => error_page(page, Some(user), &error),
    }
}

/// Changes an account's role and team.
pub async fn change_role(
    State(state): State<AppState>,
    page: Page,
    Path(username): Path<String>,
    signed: SignedForm<RoleInput>,
) -> Response {
    let SignedForm { user, form } = signed;
    let result = match parse_role(&form.role) {
        Ok(role) => state
            .veil
            .change_user_role(&user.actor, &username, role, optional_text(&form.team))
            .await
            .map(|_| ()),
        Err(errors) => Err(AppError::Validation(errors)),
    };
    match result {
        Ok(()) => Redirect::to("/users?done=changed").into_response(),
        Err(error) => refused(&state, &page, &user, &username, error).await,
    }
}

async fn set_disabled(
    state: AppState,
    page: Page,
    username: String,
    user: WebUser,
    disabled: bool,
) -> Response {
    match state
        .veil
        .set_user_disabled(&user.actor, &username, disabled)
        .await
    {
        Ok(()) if disabled => Redirect::to("/users?done=disabled").into_response(),
        Ok(()) => Redirect::to("/users?done=enabled").into_response(),
        Err(error) => refused(&state, &page, &user, &username, error).await,
    }
}

/// Disables an account (its sessions end at once).
pub async fn disable(
    State(state): State<AppState>,
    page: Page,
    Path(username): Path<String>,
    signed: SignedForm<EmptyForm>,
) -> Response {
    set_disabled(state, page, username, signed.user, true).await
}

/// Enables an account again.
pub async fn enable(
    State(state): State<AppState>,
    page: Page,
    Path(username): Path<String>,
    signed: SignedForm<EmptyForm>,
) -> Response {
    set_disabled(state, page, username, signed.user, false).await
}

/// The add-team form.
#[derive(Deserialize)]
pub struct NewTeamInput {
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent: String,
}

/// Adds a team under an existing parent (or at the top).
pub async fn create_team(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<NewTeamInput>,
) -> Response {
    let SignedForm { user, form } = signed;
    let tr = page.tr;
    let errors = match state
        .veil
        .add_team(&user.actor, &form.name, optional_text(&form.parent))
        .await
    {
        Ok(_) => return Redirect::to("/users?done=team").into_response(),
        Err(AppError::Validation(errors)) => errors,
        Err(AppError::Conflict(_)) => vec![FieldError::new("name", "taken", "exists")],
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let outcome = Outcome {
        new_team: NewTeamForm {
            name: form.name,
            name_error: error_on(tr, &errors, "name"),
            parent_error: error_on(tr, &errors, "parent"),
        },
        error: Some(tr.get("users.fix_errors").to_owned()),
        parent: form.parent,
        ..Outcome::default()
    };
    users_page(
        &state,
        &page,
        &user,
        outcome,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}
