//! The masking policy page (`/policies`, for admins, DPOs and auditors): how each personal field looks to each
//! role under the policy in force, previewed on a synthetic person (`Veil::policy_preview`, the masking engine's
//! own preview; never a customer's data), with the operator and how it can be undone.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::i18n::Tr;
use super::session::WebUser;
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// One role's view of a field, as shown.
struct Cell {
    shown: String,
    operator: &'static str,
    reversibility_key: String,
    failed: bool,
}

/// A field's row.
struct FieldRow {
    label_key: String,
    sample: String,
    cells: Vec<Cell>,
}

#[derive(Template)]
#[template(path = "policies.html")]
struct PoliciesTemplate {
    t: Tr,
    layout: Layout,
    version: i64,
    role_keys: Vec<String>,
    fields: Vec<FieldRow>,
}

/// The policy page.
pub async fn policies(State(state): State<AppState>, page: Page, user: WebUser) -> Response {
    let preview = match state.veil.policy_preview(&user.actor).await {
        Ok(preview) => preview,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let template = PoliciesTemplate {
        t: page.tr,
        layout: Layout::new(&page, Some(&user)),
        version: preview.version,
        role_keys: preview
            .roles
            .iter()
            .map(|role| format!("role.{}", role.as_str()))
            .collect(),
        fields: preview
            .fields
            .into_iter()
            .map(|field| FieldRow {
                label_key: format!("field.{}", field.field),
                sample: field.sample,
                cells: field
                    .by_role
                    .into_iter()
                    .map(|row| Cell {
                        failed: row.shown.is_none(),
                        shown: row.shown.unwrap_or_default(),
                        operator: row.operator,
                        reversibility_key: format!(
                            "policies.reversibility.{}",
                            row.reversibility.map_or("none", |value| value.as_str())
                        ),
                    })
                    .collect(),
            })
            .collect(),
    };
    render(&template, page.tr, StatusCode::OK)
}
