//! Deal pages: the Kanban board at `/deals` (one column per stage of the chosen pipeline, with each column's
//! count and total, cards with the title, amount in the locale's format, the customer's masked name and the
//! expected close date, and the sales funnel above), a deal's page (details, stage history, edit, won/lost), and
//! the new-deal form.
//!
//! Moving a card is a plain form per card (a stage `<select>` and a button, with the CSRF token and the version
//! the card was drawn at), so it works from the keyboard and without script; `veil.js` adds drag and drop that
//! fills and submits that same form. Every read and write calls the domain (`Veil::list_deals`, `deal_funnel`,
//! `get_deal`, `create_deal`, `update_deal`, `move_deal`), which decides visibility, masks and audits; a stale
//! version comes back as the 409 page.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use veil_app::deals::{
    pipeline, DealInput, DealPatch, DealQuery, DealStatus, DealView, StageMove, PIPELINES,
};
use veil_app::AppError;

use super::dashboard::{horizontal_bars, Chart};
use super::i18n::{Locale, Tr};
use super::session::{SignedForm, WebUser};
use super::tickets::usernames;
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// An amount in minor units in the locale's style: `¥3,500,000.00` (English), `¥350.00万` (Chinese, from
/// ten thousand yuan up), other currencies with their code.
pub fn format_amount(tr: Tr, minor: i64, currency: &str) -> String {
    let grouped = |whole: i64| {
        let digits = whole.abs().to_string();
        let mut out = String::new();
        for (index, digit) in digits.chars().enumerate() {
            if index > 0 && (digits.len() - index).is_multiple_of(3) {
                out.push(',');
            }
            out.push(digit);
        }
        out
    };
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.abs();
    let prefix = match currency {
        "CNY" => "¥".to_owned(),
        other => format!("{other} "),
    };
    if tr.locale == Locale::Zh && currency == "CNY" && minor >= 1_000_000 {
        // 万 (ten thousand yuan = 1,000,000 fen), two decimals.
        let hundredths = minor / 10_000;
        return format!(
            "{sign}{prefix}{}.{:02}万",
            grouped(hundredths / 100),
            hundredths % 100
        );
    }
    format!("{sign}{prefix}{}.{:02}", grouped(minor / 100), minor % 100)
}

/// Parses an amount typed in major units (`3500000`, `3,500,000.5`, `12.34`) into minor units.
pub fn parse_amount(text: &str) -> Option<i64> {
    let text: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, ',' | ' ' | '¥'))
        .collect();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || fraction.len() > 2
        || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(fraction)
}

fn stage_key(pipeline: &str, stage: &str) -> String {
    format!("stage.{pipeline}.{stage}")
}

/// An option of a `<select>`.
pub struct Choice {
    value: String,
    label: String,
    selected: bool,
}

/// A card of the board.
pub struct Card {
    id: String,
    title: String,
    amount: String,
    customer_name: String,
    close: String,
    version: i64,
    stages: Vec<Choice>,
}

/// A column of the board: one stage.
pub struct Column {
    key: String,
    name: String,
    count: i64,
    count_label: String,
    total: String,
    cards: Vec<Card>,
}

/// A pipeline link of the chooser.
pub struct PipelineLink {
    key: String,
    name: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "deals.html")]
struct BoardTemplate {
    t: Tr,
    layout: Layout,
    pipelines: Vec<PipelineLink>,
    pipeline: String,
    pipeline_name: String,
    columns: Vec<Column>,
    funnel: Chart,
    notice: Option<String>,
    truncated: bool,
}

fn totals(tr: Tr, amounts: &BTreeMap<String, i64>) -> String {
    if amounts.is_empty() {
        return format_amount(tr, 0, "CNY");
    }
    amounts
        .iter()
        .map(|(currency, minor)| format_amount(tr, *minor, currency))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The board's query.
#[derive(Debug, Default, Deserialize)]
pub struct BoardParams {
    #[serde(default)]
    pipeline: String,
    #[serde(default)]
    done: String,
}

/// The Kanban board of one pipeline.
pub async fn board(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<BoardParams>,
) -> Response {
    let tr = page.tr;
    let actor = &user.actor;
    // The pipeline asked for; else that of the newest open deal the caller sees; else the first template.
    let key = match pipeline(&params.pipeline) {
        Some(template) => template.key,
        None => {
            let newest = state
                .veil
                .list_deals(
                    actor,
                    &DealQuery {
                        status: Some(DealStatus::Open),
                        limit: 1,
                        ..DealQuery::default()
                    },
                )
                .await;
            match newest {
                Ok(page_of) => {
                    page_of
                        .items
                        .first()
                        .and_then(|deal| pipeline(&deal.pipeline))
                        .unwrap_or(&PIPELINES[0])
                        .key
                }
                Err(error) => return error_page(&page, Some(&user), &error),
            }
        }
    };
    let template = pipeline(key).unwrap_or(&PIPELINES[0]);
    let deals = match state
        .veil
        .list_deals(
            actor,
            &DealQuery {
                pipeline: Some(key.to_owned()),
                status: Some(DealStatus::Open),
                limit: veil_app::deals::MAX_DEALS,
                ..DealQuery::default()
            },
        )
        .await
    {
        Ok(deals) => deals,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let funnel = match state.veil.deal_funnel(actor, key).await {
        Ok(funnel) => funnel,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let stage_choices = |current: &str| -> Vec<Choice> {
        template
            .stages
            .iter()
            .map(|(stage, _, _)| Choice {
                value: (*stage).to_owned(),
                label: tr.get(&stage_key(key, stage)).to_owned(),
                selected: *stage == current,
            })
            .collect()
    };
    let columns: Vec<Column> = funnel
        .iter()
        .map(|total| Column {
            key: total.stage.clone(),
            name: tr.get(&stage_key(key, &total.stage)).to_owned(),
            count: total.deals,
            count_label: tr.fill("deals.count", &[("count", &total.deals.to_string())]),
            total: totals(tr, &total.amounts),
            cards: deals
                .items
                .iter()
                .filter(|deal| deal.stage == total.stage)
                .map(|deal| Card {
                    id: deal.id.clone(),
                    title: deal.title.clone(),
                    amount: format_amount(tr, deal.amount_minor, &deal.currency),
                    customer_name: deal.customer_name.clone(),
                    close: deal.expected_close.clone().unwrap_or_default(),
                    version: deal.version,
                    stages: stage_choices(&deal.stage),
                })
                .collect(),
        })
        .collect();
    let bars = horizontal_bars(
        &columns
            .iter()
            .map(|column| (column.name.clone(), column.count))
            .collect::<Vec<_>>(),
    );
    let notice = match params.done.as_str() {
        "moved" => Some(tr.get("deals.moved").to_owned()),
        _ => None,
    };
    let board = BoardTemplate {
        t: tr,
        layout: Layout::new(&page, Some(&user)),
        pipelines: PIPELINES
            .iter()
            .map(|other| PipelineLink {
                key: other.key.to_owned(),
                name: tr.get(&format!("pipeline.{}", other.key)).to_owned(),
                current: other.key == key,
            })
            .collect(),
        pipeline: key.to_owned(),
        pipeline_name: tr.get(&format!("pipeline.{key}")).to_owned(),
        funnel: Chart {
            height: bars.len() as i64 * 28 + 8,
            bars,
        },
        columns,
        notice,
        truncated: deals.next_cursor.is_some(),
    };
    render(&board, tr, StatusCode::OK)
}

/// A stage move or close, from a card of the board or a deal's page.
#[derive(Debug, Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    version: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    lost_reason: String,
    /// `board` to come back to the board, else the deal's page.
    #[serde(default)]
    back: String,
}

fn invalid(field: &str) -> AppError {
    AppError::Validation(vec![veil_app::FieldError::new(
        field,
        "invalid",
        "not a valid value",
    )])
}

/// Moves a deal (a card's form or the deal page's status form).
pub async fn move_deal(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<MoveForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let Ok(version) = form.version.trim().parse::<i64>() else {
        return error_page(&page, Some(&user), &invalid("version"));
    };
    let status = match form.status.as_str() {
        "" => None,
        text => match DealStatus::parse(text) {
            Some(status) => Some(status),
            None => return error_page(&page, Some(&user), &invalid("status")),
        },
    };
    let input = StageMove {
        version,
        stage: (!form.stage.is_empty()).then(|| form.stage.clone()),
        status,
        lost_reason: (!form.lost_reason.trim().is_empty()).then(|| form.lost_reason.clone()),
    };
    match state.veil.move_deal(&user.actor, &id, &input).await {
        Ok(deal) if form.back == "board" => Redirect::to(&format!(
            "/deals?pipeline={}&done=moved#stage-{}",
            deal.pipeline, deal.stage
        ))
        .into_response(),
        Ok(deal) => Redirect::to(&format!("/deals/{}?done=moved", deal.id)).into_response(),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

/// One entry of the history as shown.
pub struct HistoryLine {
    at: String,
    by: String,
    from: String,
    to: String,
}

#[derive(Template)]
#[template(path = "deal.html")]
struct DealTemplate {
    t: Tr,
    layout: Layout,
    deal: DealView,
    pipeline_name: String,
    stage_name: String,
    status_key: String,
    amount: String,
    amount_input: String,
    stages: Vec<Choice>,
    history: Vec<HistoryLine>,
    notice: Option<String>,
}

fn describe(tr: Tr, pipeline: &str, stage: Option<&str>, status: Option<&str>) -> String {
    match (stage, status) {
        (Some(stage), Some(status)) => format!(
            "{} · {}",
            tr.get(&stage_key(pipeline, stage)),
            tr.get(&format!("deals.status.{status}"))
        ),
        _ => tr.get("deals.entered").to_owned(),
    }
}

/// The page's query.
#[derive(Debug, Default, Deserialize)]
pub struct DetailParams {
    #[serde(default)]
    done: String,
}

/// A deal's page.
pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Path(id): Path<String>,
    Query(params): Query<DetailParams>,
) -> Response {
    let tr = page.tr;
    let deal = match state.veil.get_deal(&user.actor, &id).await {
        Ok(deal) => deal,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let names = usernames(&state).await;
    let history = deal
        .history
        .iter()
        .flatten()
        .map(|change| HistoryLine {
            at: tr.datetime(&change.at),
            by: super::tickets::name_of(&names, change.by.as_deref()),
            from: match &change.from_stage {
                Some(_) => describe(
                    tr,
                    &deal.pipeline,
                    change.from_stage.as_deref(),
                    change.from_status.as_deref(),
                ),
                None => String::new(),
            },
            to: describe(
                tr,
                &deal.pipeline,
                Some(&change.to_stage),
                Some(&change.to_status),
            ),
        })
        .collect();
    let stages = pipeline(&deal.pipeline)
        .map(|template| {
            template
                .stages
                .iter()
                .map(|(stage, _, _)| Choice {
                    value: (*stage).to_owned(),
                    label: tr.get(&stage_key(&deal.pipeline, stage)).to_owned(),
                    selected: *stage == deal.stage,
                })
                .collect()
        })
        .unwrap_or_default();
    let template = DealTemplate {
        t: tr,
        layout: Layout::new(&page, Some(&user)),
        pipeline_name: tr.get(&format!("pipeline.{}", deal.pipeline)).to_owned(),
        stage_name: tr.get(&stage_key(&deal.pipeline, &deal.stage)).to_owned(),
        status_key: format!("deals.status.{}", deal.status),
        amount: format_amount(tr, deal.amount_minor, &deal.currency),
        amount_input: format!("{}.{:02}", deal.amount_minor / 100, deal.amount_minor % 100),
        stages,
        history,
        notice: match params.done.as_str() {
            "moved" | "updated" | "created" => Some(tr.get("deals.saved").to_owned()),
            _ => None,
        },
        deal,
    };
    render(&template, tr, StatusCode::OK)
}

/// The edit form of a deal's page.
#[derive(Debug, Deserialize)]
pub struct EditForm {
    #[serde(default)]
    version: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    expected_close: String,
}

/// Saves a deal's details.
pub async fn edit(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<String>,
    signed: SignedForm<EditForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let Ok(version) = form.version.trim().parse::<i64>() else {
        return error_page(&page, Some(&user), &invalid("version"));
    };
    let Some(amount) = parse_amount(&form.amount) else {
        return error_page(&page, Some(&user), &invalid("amount_minor"));
    };
    let patch = DealPatch {
        version,
        title: Some(form.title),
        amount_minor: Some(amount),
        currency: None,
        expected_close: Some(form.expected_close),
    };
    match state.veil.update_deal(&user.actor, &id, &patch).await {
        Ok(_) => Redirect::to(&format!("/deals/{id}?done=updated")).into_response(),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

#[derive(Template)]
#[template(path = "deal_new.html")]
struct NewTemplate {
    t: Tr,
    layout: Layout,
    customer: String,
    title: String,
    amount: String,
    expected_close: String,
    pipelines: Vec<Choice>,
    errors: Vec<String>,
}

/// The new-deal form's query.
#[derive(Debug, Default, Deserialize)]
pub struct NewParams {
    #[serde(default)]
    customer: String,
    #[serde(default)]
    pipeline: String,
}

fn pipeline_choices(tr: Tr, selected: &str) -> Vec<Choice> {
    let mut choices = vec![Choice {
        value: String::new(),
        label: tr.get("deals.pipeline_default").to_owned(),
        selected: selected.is_empty(),
    }];
    choices.extend(PIPELINES.iter().map(|template| Choice {
        value: template.key.to_owned(),
        label: tr.get(&format!("pipeline.{}", template.key)).to_owned(),
        selected: template.key == selected,
    }));
    choices
}

/// The new-deal form.
pub async fn new_form(page: Page, user: WebUser, Query(params): Query<NewParams>) -> Response {
    let template = NewTemplate {
        t: page.tr,
        layout: Layout::new(&page, Some(&user)),
        customer: params.customer,
        title: String::new(),
        amount: String::new(),
        expected_close: String::new(),
        pipelines: pipeline_choices(page.tr, &params.pipeline),
        errors: Vec::new(),
    };
    render(&template, page.tr, StatusCode::OK)
}

/// The new-deal form as posted.
#[derive(Debug, Deserialize)]
pub struct NewForm {
    #[serde(default)]
    customer: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    expected_close: String,
    #[serde(default)]
    pipeline: String,
}

/// Enters a deal; invalid input comes back in the form with each problem named.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    signed: SignedForm<NewForm>,
) -> Response {
    let SignedForm { user, form } = signed;
    let tr = page.tr;
    let amount = parse_amount(&form.amount);
    let result = match amount {
        None => Err(AppError::Validation(vec![veil_app::FieldError::new(
            "amount_minor",
            "invalid",
            "not an amount",
        )])),
        Some(amount) => {
            let input = DealInput {
                customer_id: form.customer.clone(),
                title: form.title.clone(),
                amount_minor: amount,
                currency: None,
                expected_close: (!form.expected_close.trim().is_empty())
                    .then(|| form.expected_close.clone()),
                pipeline: (!form.pipeline.is_empty()).then(|| form.pipeline.clone()),
                stage: None,
            };
            state.veil.create_deal(&user.actor, &input).await
        }
    };
    match result {
        Ok(deal) => Redirect::to(&format!("/deals/{}?done=created", deal.id)).into_response(),
        Err(AppError::Validation(errors)) => {
            let template = NewTemplate {
                t: tr,
                layout: Layout::new(&page, Some(&user)),
                errors: errors
                    .iter()
                    .map(|error| {
                        format!(
                            "{}: {}",
                            tr.get(&format!("deals.field.{}", error.field)),
                            tr.field_error(&error.code)
                        )
                    })
                    .collect(),
                customer: form.customer,
                title: form.title,
                amount: form.amount,
                expected_close: form.expected_close,
                pipelines: pipeline_choices(tr, &form.pipeline),
            };
            render(&template, tr, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_per_locale() {
        let en = Tr::new(Locale::En);
        let zh = Tr::new(Locale::Zh);
        assert_eq!(format_amount(en, 350_000_000, "CNY"), "¥3,500,000.00");
        assert_eq!(format_amount(zh, 350_000_000, "CNY"), "¥350.00万");
        assert_eq!(format_amount(zh, 12_345, "CNY"), "¥123.45");
        assert_eq!(format_amount(en, 99, "USD"), "USD 0.99");
        assert_eq!(parse_amount("3,500,000.5"), Some(350_000_050));
        assert_eq!(parse_amount("12"), Some(1200));
        assert_eq!(parse_amount("1.234"), None);
        assert_eq!(parse_amount("-1"), None);
        assert_eq!(parse_amount(""), None);
    }

    #[test]
    fn every_pipeline_and_stage_is_translated() {
        for locale in Locale::ALL {
            let tr = Tr::new(locale);
            for template in PIPELINES {
                let key = format!("pipeline.{}", template.key);
                assert_ne!(tr.get(&key), key, "{key}");
                for (stage, _, _) in template.stages {
                    let key = stage_key(template.key, stage);
                    assert_ne!(tr.get(&key), key, "{key} in {}", locale.code());
                }
            }
        }
    }
}
