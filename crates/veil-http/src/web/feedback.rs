//! `/feedback`: the feedback analysis in the browser — the monthly CSAT and NPS trend as server-drawn SVG charts,
//! the breakdown by month, agent, channel or product, and the most frequent complaint terms. It calls
//! `Veil::feedback_summary`, so visibility and audit are the API's.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use veil_app::feedback::{FeedbackSummary, GroupBy, ScoreStats, SummaryQuery, TermCount};

use super::i18n::Tr;
use super::session::WebUser;
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// Chart geometry (SVG user units).
const COLUMN: i64 = 44;
const PLOT_HEIGHT: i64 = 120;
const TOP: i64 = 18;
const LEFT: i64 = 6;

/// One month's bar of a trend chart.
pub struct TrendBar {
    /// `YYYY-MM`.
    pub label: String,
    /// The figure as shown (`4.25`, `-12.5`), empty without data.
    pub value: String,
    /// Position and size.
    pub x: i64,
    /// Top.
    pub y: i64,
    /// Width.
    pub width: i64,
    /// Height.
    pub height: i64,
    /// Where the label goes.
    pub label_x: i64,
    /// Where the label goes.
    pub label_y: i64,
    /// Where the value goes.
    pub value_y: i64,
}

/// A trend chart: its bars, the SVG size and where the zero line is.
pub struct TrendChart {
    /// Bars, oldest month first.
    pub bars: Vec<TrendBar>,
    /// SVG width.
    pub width: i64,
    /// SVG height.
    pub height: i64,
    /// The baseline's y.
    pub zero_y: i64,
}

/// Bars for values in `[low, high]` (with `low ≤ 0 ≤ high`), drawn from the zero line up or down.
pub fn trend_chart(values: &[(String, Option<f64>)], low: f64, high: f64) -> TrendChart {
    let span = (high - low).max(1.0);
    let to_y = |value: f64| TOP + ((high - value) / span * PLOT_HEIGHT as f64).round() as i64;
    let zero_y = to_y(0.0_f64.clamp(low, high));
    let bars = values
        .iter()
        .enumerate()
        .map(|(index, (label, value))| {
            let x = LEFT + index as i64 * COLUMN;
            let (y, height, shown) = match value {
                Some(value) => {
                    let end = to_y(value.clamp(low, high));
                    let (y, height) = if end <= zero_y {
                        (end, zero_y - end)
                    } else {
                        (zero_y, end - zero_y)
                    };
                    (y, height.max(1), format!("{value}"))
                }
                None => (zero_y, 0, String::new()),
            };
            let value_y = if value.is_some_and(|value| value < 0.0) {
                y + height + 11
            } else {
                y - 3
            };
            TrendBar {
                label: label.clone(),
                value: shown,
                x,
                y,
                width: COLUMN - 8,
                height,
                label_x: x + (COLUMN - 8) / 2,
                label_y: TOP + PLOT_HEIGHT + 28,
                value_y,
            }
        })
        .collect();
    TrendChart {
        bars,
        width: LEFT * 2 + values.len().max(1) as i64 * COLUMN,
        height: TOP + PLOT_HEIGHT + 36,
        zero_y,
    }
}

/// One row of the breakdown table.
pub struct BreakdownRow {
    /// The group as shown (month, agent, channel or product; "none" when not recorded).
    pub name: String,
    /// The figures.
    pub stats: ScoreStats,
}

/// An option of the grouping selector.
pub struct ByChoice {
    /// `month`, `agent`, …
    pub value: &'static str,
    /// Translation key.
    pub label_key: &'static str,
    /// Selected.
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "feedback.html")]
struct FeedbackTemplate {
    t: Tr,
    layout: Layout,
    from: String,
    to: String,
    by_choices: Vec<ByChoice>,
    by_key: &'static str,
    overall: ScoreStats,
    csat_chart: TrendChart,
    nps_chart: TrendChart,
    rows: Vec<BreakdownRow>,
    terms: Vec<TermCount>,
    csat_responses: String,
    nps_responses: String,
    terms_hint: String,
}

/// The page's filters.
#[derive(Deserialize, Default)]
pub struct FeedbackParams {
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
}

fn group_name(tr: Tr, by: GroupBy, key: Option<&str>, label: Option<&str>) -> String {
    match (by, key) {
        (_, None) => tr.get("feedback.none").to_owned(),
        (GroupBy::Channel, Some(key)) => {
            let label_key = format!("ticket.channel.{key}");
            match tr.get(&label_key) {
                found if found != label_key => found.to_owned(),
                _ => key.to_owned(),
            }
        }
        (_, Some(key)) => label.unwrap_or(key).to_owned(),
    }
}

fn build(tr: Tr, summary: FeedbackSummary) -> (Vec<BreakdownRow>, TrendChart, TrendChart) {
    let csat: Vec<(String, Option<f64>)> = summary
        .trend
        .iter()
        .map(|month| (month.month.clone(), month.stats.csat.average))
        .collect();
    let nps: Vec<(String, Option<f64>)> = summary
        .trend
        .iter()
        .map(|month| (month.month.clone(), month.stats.nps.score))
        .collect();
    let rows = summary
        .groups
        .into_iter()
        .map(|group| BreakdownRow {
            name: group_name(tr, summary.by, group.key.as_deref(), group.label.as_deref()),
            stats: group.stats,
        })
        .collect();
    (
        rows,
        trend_chart(&csat, 0.0, 5.0),
        trend_chart(&nps, -100.0, 100.0),
    )
}

/// The feedback analysis page.
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    user: WebUser,
    Query(params): Query<FeedbackParams>,
) -> Response {
    let query = SummaryQuery {
        from: params.from.clone(),
        to: params.to.clone(),
        by: params.by.clone(),
        top: None,
    };
    let summary = match state.veil.feedback_summary(&user.actor, &query).await {
        Ok(summary) => summary,
        Err(error) => return error_page(&page, Some(&user), &error),
    };
    let by = summary.by;
    let overall = summary.overall.clone();
    let (overall_csat, overall_nps) = (overall.csat.count, overall.nps.count);
    let terms = summary.complaint_terms.clone();
    let complaint_texts = summary.complaint_texts;
    let from = summary.from_date.clone();
    let to = summary.to_date.clone();
    let (rows, csat_chart, nps_chart) = build(page.tr, summary);
    let choices: [(&'static str, &'static str, GroupBy); 4] = [
        ("month", "feedback.by.month", GroupBy::Month),
        ("agent", "feedback.by.agent", GroupBy::Agent),
        ("channel", "feedback.by.channel", GroupBy::Channel),
        ("product", "feedback.by.product", GroupBy::Product),
    ];
    let by_key = choices
        .iter()
        .find(|(_, _, value)| *value == by)
        .map(|(_, key, _)| *key)
        .unwrap_or("feedback.by.month");
    let template = FeedbackTemplate {
        t: page.tr,
        layout: Layout::new(&page, Some(&user)),
        from,
        to,
        by_choices: choices
            .into_iter()
            .map(|(value, label_key, group)| ByChoice {
                value,
                label_key,
                selected: group == by,
            })
            .collect(),
        by_key,
        overall,
        csat_chart,
        nps_chart,
        rows,
        terms,
        csat_responses: page.tr.fill(
            "feedback.responses",
            &[("count", &overall_csat.to_string())],
        ),
        nps_responses: page
            .tr
            .fill("feedback.responses", &[("count", &overall_nps.to_string())]),
        terms_hint: page.tr.fill(
            "feedback.terms_hint",
            &[("count", &complaint_texts.to_string())],
        ),
    };
    render(&template, page.tr, StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_bars_grow_from_the_zero_line() {
        let chart = trend_chart(
            &[
                ("2026-01".to_owned(), Some(100.0)),
                ("2026-02".to_owned(), Some(-50.0)),
                ("2026-03".to_owned(), None),
            ],
            -100.0,
            100.0,
        );
        assert_eq!(chart.zero_y, TOP + PLOT_HEIGHT / 2);
        assert_eq!(
            (chart.bars[0].y, chart.bars[0].height),
            (TOP, PLOT_HEIGHT / 2)
        );
        assert_eq!(
            (chart.bars[1].y, chart.bars[1].height),
            (chart.zero_y, PLOT_HEIGHT / 4)
        );
        assert_eq!(chart.bars[2].height, 0);
        assert!(chart.bars[2].value.is_empty());
        let csat = trend_chart(&[("2026-01".to_owned(), Some(5.0))], 0.0, 5.0);
        assert_eq!((csat.bars[0].y, csat.bars[0].height), (TOP, PLOT_HEIGHT));
    }
}
