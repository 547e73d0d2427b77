//! `/survey/{token}`: the public page where a customer answers a CSAT or NPS survey — no sign-in, no personal
//! data shown (only the question). The form is protected against cross-site posting by a nonce cookie
//! (`SameSite=Strict`, scoped to `/survey`) that the hidden `csrf` field must match, as on the sign-in form; the
//! token in the path is itself unguessable and works once. Like every anonymous request, it is charged to the
//! client address's rate-limit budget.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use veil_app::feedback::{FeedbackKind, PublicSurveyState, SurveyAnswer};
use veil_app::AppError;

use super::i18n::Tr;
use super::session::{cookie, random_token, read_form, same_token, set_cookie};
use super::{error_page, message_page, render, Layout, Page};
use crate::AppState;

/// The survey form's nonce cookie.
pub const SURVEY_NONCE_COOKIE: &str = "veil_survey";
const SURVEY_NONCE_SECS: i64 = 3600;

/// One score to pick.
pub struct ScoreChoice {
    /// The score.
    pub value: i64,
    /// Its words (`survey.csat.1` …), if any.
    pub label_key: Option<&'static str>,
    /// Picked before (the form is shown again after an error).
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "survey.html")]
struct SurveyTemplate {
    t: Tr,
    layout: Layout,
    action: String,
    nonce: String,
    question_key: &'static str,
    scale_key: &'static str,
    scores: Vec<ScoreChoice>,
    comment: String,
    error_key: Option<&'static str>,
}

fn choices(kind: FeedbackKind, picked: Option<i64>) -> Vec<ScoreChoice> {
    const CSAT: [&str; 5] = [
        "survey.csat.1",
        "survey.csat.2",
        "survey.csat.3",
        "survey.csat.4",
        "survey.csat.5",
    ];
    let (low, high) = kind.range();
    (low..=high)
        .map(|value| ScoreChoice {
            value,
            label_key: match kind {
                FeedbackKind::Csat => CSAT.get((value - 1) as usize).copied(),
                FeedbackKind::Nps => None,
            },
            checked: picked == Some(value),
        })
        .collect()
}

/// What a refused answer brings back to the form: the score picked, the comment and why it was refused.
struct Refill {
    picked: Option<i64>,
    comment: String,
    error_key: &'static str,
}

/// The form, fresh (200) or shown again after a refused answer (422).
fn form_page(
    state: &AppState,
    page: &Page,
    token: &str,
    kind: FeedbackKind,
    refill: Option<Refill>,
) -> Response {
    let status = if refill.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let (picked, comment, error_key) = match refill {
        Some(refill) => (refill.picked, refill.comment, Some(refill.error_key)),
        None => (None, String::new(), None),
    };
    let nonce = random_token();
    let (question_key, scale_key) = match kind {
        FeedbackKind::Csat => ("survey.csat_question", "survey.csat_scale"),
        FeedbackKind::Nps => ("survey.nps_question", "survey.nps_scale"),
    };
    let template = SurveyTemplate {
        t: page.tr,
        layout: Layout::new(page, None),
        action: format!("/survey/{token}"),
        nonce: nonce.clone(),
        question_key,
        scale_key,
        scores: choices(kind, picked),
        comment,
        error_key,
    };
    let mut response = render(&template, page.tr, status);
    if let Some(value) = set_cookie(
        SURVEY_NONCE_COOKIE,
        &nonce,
        "/survey",
        SURVEY_NONCE_SECS,
        true,
        state.tls,
    ) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn closed_page(page: &Page, state: PublicSurveyState) -> Response {
    match state {
        PublicSurveyState::Expired => message_page(
            page,
            None,
            StatusCode::GONE,
            "survey.title",
            "survey.expired",
        ),
        _ => message_page(
            page,
            None,
            StatusCode::CONFLICT,
            "survey.title",
            "survey.already_answered",
        ),
    }
}

fn not_found(page: &Page) -> Response {
    message_page(
        page,
        None,
        StatusCode::NOT_FOUND,
        "survey.title",
        "survey.not_found",
    )
}

/// The survey form (or why it cannot be answered).
pub async fn form(
    State(state): State<AppState>,
    page: Page,
    Path(token): Path<String>,
) -> Response {
    match state.veil.public_survey(&token).await {
        Ok(survey) if survey.state == PublicSurveyState::Open => {
            form_page(&state, &page, &token, survey.kind, None)
        }
        Ok(survey) => closed_page(&page, survey.state),
        Err(AppError::NotFound) => not_found(&page),
        Err(error) => error_page(&page, None, &error),
    }
}

#[derive(Deserialize)]
struct AnswerForm {
    #[serde(default)]
    score: String,
    #[serde(default)]
    comment: String,
}

/// Records the answer, once.
pub async fn answer(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let page = Page::of(&request);
    let (parts, form, csrf) = match read_form::<AnswerForm>(request, page.tr).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let nonce_ok = cookie(&parts.headers, SURVEY_NONCE_COOKIE)
        .is_some_and(|expected| !csrf.is_empty() && same_token(&csrf, expected));
    if !nonce_ok {
        tracing::warn!("web: survey form refused, nonce missing or wrong");
        return message_page(
            &page,
            None,
            StatusCode::FORBIDDEN,
            "survey.title",
            "survey.stale_form",
        );
    }
    let survey = match state.veil.public_survey(&token).await {
        Ok(survey) if survey.state == PublicSurveyState::Open => survey,
        Ok(survey) => return closed_page(&page, survey.state),
        Err(AppError::NotFound) => return not_found(&page),
        Err(error) => return error_page(&page, None, &error),
    };
    let Ok(score) = form.score.trim().parse::<i64>() else {
        let refill = Refill {
            picked: None,
            comment: form.comment,
            error_key: "survey.pick_score",
        };
        return form_page(&state, &page, &token, survey.kind, Some(refill));
    };
    let answer = SurveyAnswer {
        score,
        comment: Some(form.comment.clone()),
    };
    match state.veil.answer_survey(&token, &answer).await {
        Ok(()) => message_page(
            &page,
            None,
            StatusCode::OK,
            "survey.thanks_title",
            "survey.thanks",
        ),
        Err(AppError::NotFound) => not_found(&page),
        Err(AppError::Conflict(_)) => closed_page(&page, PublicSurveyState::Answered),
        Err(AppError::Validation(errors)) => {
            let error_key = if errors.iter().any(|error| error.field == "comment") {
                "survey.comment_too_long"
            } else {
                "survey.pick_score"
            };
            let refill = Refill {
                picked: Some(score),
                comment: form.comment,
                error_key,
            };
            form_page(&state, &page, &token, survey.kind, Some(refill))
        }
        Err(error) => error_page(&page, None, &error),
    }
}
