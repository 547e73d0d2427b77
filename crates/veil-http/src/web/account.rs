//! The signed-in user's own account: two-step verification (enrolment with a QR code drawn on the server,
//! confirmation, recovery codes shown once) and changing the password.
//!
//! The QR code is an SVG path built from the code's modules here, so the page needs no script, no image request
//! and no `safe` filter: the path data is digits and letters, escaped like everything else. The enrolment page
//! carries the user's own TOTP secret (for typing it in by hand); like every page it is `no-store`.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::users::Password;
use veil_app::AppError;
use zeroize::Zeroizing;

use super::i18n::Tr;
use super::session::{clear_session_cookies, SignedForm, WebUser};
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// A QR code as SVG path data, with its side in modules (quiet zone included).
pub struct QrPath {
    /// `M4 4h1v1h-1z…`, one unit square per dark module.
    pub path: String,
    /// The side of the square `viewBox`.
    pub side: usize,
}

/// Modules of white border the QR specification asks for around the code.
const QUIET_ZONE: usize = 4;

/// Encodes `text` as a QR code and draws it as one SVG path; `None` if it is too long for a QR code.
pub fn qr_path(text: &str) -> Option<QrPath> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let width = code.width();
    let mut path = String::new();
    for (index, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (index % width + QUIET_ZONE, index / width + QUIET_ZONE);
            path.push_str(&format!("M{x} {y}h1v1h-1z"));
        }
    }
    Some(QrPath {
        path,
        side: width + 2 * QUIET_ZONE,
    })
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountTemplate {
    t: Tr,
    layout: Layout,
    mfa_enabled: bool,
    mfa_required: bool,
    enrolment: Option<Enrolment>,
    recovery_codes: Vec<String>,
    mfa_error: Option<String>,
    password_errors: Vec<String>,
}

/// An enrolment in progress: the QR code and the secret for typing in by hand.
struct Enrolment {
    qr: Option<QrPath>,
    secret: Zeroizing<String>,
}

async fn account_page(
    state: &AppState,
    page: &Page,
    user: &WebUser,
    build: impl FnOnce(&mut AccountTemplate),
    status: StatusCode,
) -> Response {
    let mfa = match state.veil.mfa_status(&user.actor).await {
        Ok(mfa) => mfa,
        Err(error) => return error_page(page, Some(user), &error),
    };
    let mut template = AccountTemplate {
        t: page.tr,
        layout: Layout::new(page, Some(user)),
        mfa_enabled: mfa.enabled,
        mfa_required: mfa.enrollment_required,
        enrolment: None,
        recovery_codes: Vec::new(),
        mfa_error: None,
        password_errors: Vec::new(),
    };
    build(&mut template);
    render(&template, page.tr, status)
}

/// The account page.
pub async fn account(State(state): State<AppState>, page: Page, user: WebUser) -> Response {
    account_page(&state, &page, &user, |_| {}, StatusCode::OK).await
}

/// A button's form: the token only.
#[derive(Deserialize)]
pub struct EmptyForm {}

/// Starts (or restarts) an enrolment: a new secret, shown as a QR code until confirmed.
pub async fn enroll(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<EmptyForm>,
) -> Response {
    let SignedForm { user, .. } = signed;
    match state.veil.enroll_mfa(&user.actor).await {
        Ok(enrolment) => {
            let qr = qr_path(&enrolment.otpauth_uri);
            let secret = enrolment.secret.clone();
            account_page(
                &state,
                &page,
                &user,
                |template| template.enrolment = Some(Enrolment { qr, secret }),
                StatusCode::OK,
            )
            .await
        }
        Err(AppError::Conflict(_)) => {
            let message = page.tr.get("account.mfa_already").to_owned();
            account_page(
                &state,
                &page,
                &user,
                |template| template.mfa_error = Some(message),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// The first code from the app.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
}

/// Confirms the enrolment with a first code; shows the recovery codes once.
pub async fn confirm(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<ConfirmForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    match state.veil.confirm_mfa(&user.actor, form.code.trim()).await {
        Ok(codes) => {
            let codes = codes.expose();
            account_page(
                &state,
                &page,
                &user,
                |template| template.recovery_codes = codes,
                StatusCode::OK,
            )
            .await
        }
        Err(AppError::Validation(_) | AppError::Conflict(_) | AppError::Unauthenticated) => {
            let message = page.tr.get("account.code_wrong").to_owned();
            account_page(
                &state,
                &page,
                &user,
                |template| template.mfa_error = Some(message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// The change-password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    repeat_password: String,
}

/// Changes the password, then signs the browser out (every session of the user has ended).
pub async fn change_password(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<PasswordForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let tr = page.tr;
    // Into zeroizing wrappers at once; the repeat is only compared.
    let repeat = Zeroizing::new(form.repeat_password);
    let current = Password::new(form.current_password);
    let new = Password::new(form.new_password);
    if new.expose() != repeat.as_str() {
        let message = tr.get("account.password_repeat_differs").to_owned();
        return account_page(
            &state,
            &page,
            &user,
            |template| template.password_errors = vec![message],
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match state
        .veil
        .change_password(&user.actor, &current, &new)
        .await
    {
        Ok(()) => {
            let mut response = Redirect::to("/login").into_response();
            clear_session_cookies(response.headers_mut());
            response
        }
        Err(AppError::Validation(errors)) => {
            let messages = errors
                .iter()
                .map(|error| {
                    let field = if error.field == "current_password" {
                        "account.current_password"
                    } else {
                        "account.new_password"
                    };
                    let text = if error.field == "current_password" {
                        tr.get("account.current_wrong")
                    } else {
                        tr.get("account.password_weak")
                    };
                    format!("{}: {text}", tr.get(field))
                })
                .collect();
            account_page(
                &state,
                &page,
                &user,
                |template| template.password_errors = messages,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_codes_are_squares_of_unit_modules() {
        let qr = qr_path("otpauth://totp/Veil:sally?secret=JBSWY3DPEHPK3PXP&issuer=Veil").unwrap();
        // Version 4 or so: 33 modules and the quiet zone on each side.
        assert!(qr.side > 2 * QUIET_ZONE + 20, "{}", qr.side);
        assert!(qr
            .path
            .starts_with(&format!("M{QUIET_ZONE} {QUIET_ZONE}h1v1h-1z")));
        assert!(qr
            .path
            .chars()
            .all(|c| c.is_ascii_digit() || "Mhvz -".contains(c)));
    }
}
