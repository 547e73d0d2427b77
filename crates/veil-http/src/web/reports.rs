//! `/reports`: the CRM dashboards of issue 9 beside the sales funnel on `/deals` — tickets and their SLA (open
//! tickets by priority and status, what is breached or at risk now, first-response and resolution SLA met vs
//! breached per week, the mean time to a first response), satisfaction (the CSAT and NPS trend of the feedback
//! analysis, with a link to `/feedback` for the breakdowns) and loyalty (members per tier, points earned, redeemed
//! and expired per month, the rewards most redeemed).
//!
//! Each section calls the domain (`Veil::ticket_report`, `feedback_summary`, `loyalty_report`), which counts in
//! the database over what the caller may see and audits; a section the role may not see is left out. Charts are
//! SVG drawn by the template from numbers computed here, each with a data table beside it, like the dashboard's.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use veil_app::authz::{role_permits, Action};
use veil_app::feedback::SummaryQuery;
use veil_app::reports::{LoyaltyReport, TicketReport};
use veil_app::AppError;

use super::dashboard::{horizontal_bars, Chart};
use super::feedback::{trend_chart, TrendChart};
use super::i18n::Tr;
use super::session::WebUser;
use super::{error_page, render, Layout, Page};
use crate::AppState;

/// Geometry of the grouped-column charts (SVG user units).
const PLOT_HEIGHT: i64 = 120;
const TOP: i64 = 14;
const BAR: i64 = 9;
const GAP: i64 = 8;

/// One bar of a grouped-column chart.
pub struct SeriesBar {
    /// CSS class of its series (`series-0`, …).
    pub class: &'static str,
    /// Left.
    pub x: i64,
    /// Top.
    pub y: i64,
    /// Width.
    pub width: i64,
    /// Height.
    pub height: i64,
}

/// A group of bars (one period).
pub struct Group {
    /// The period as shown.
    pub label: String,
    /// Where the label goes.
    pub label_x: i64,
    /// Its bars, one per series.
    pub bars: Vec<SeriesBar>,
    /// "label: series a 3, series b 1." for the chart's description.
    pub summary: String,
}

/// Columns grouped per period, one colour per series, with a legend.
pub struct GroupedChart {
    /// Periods, oldest first.
    pub groups: Vec<Group>,
    /// Series names, in the order of their classes.
    pub legend: Vec<(&'static str, String)>,
    /// SVG width.
    pub width: i64,
    /// SVG height.
    pub height: i64,
    /// Where the period labels go.
    pub label_y: i64,
    /// The baseline.
    pub base_y: i64,
}

const SERIES: [&str; 4] = ["series-0", "series-1", "series-2", "series-3"];

/// A grouped-column chart of `periods` (label, one value per series), scaled to the largest value.
pub fn grouped_chart(series: &[String], periods: &[(String, Vec<i64>)]) -> GroupedChart {
    let most = periods
        .iter()
        .flat_map(|(_, values)| values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let group_width = series.len() as i64 * BAR + GAP;
    let base_y = TOP + PLOT_HEIGHT;
    let groups = periods
        .iter()
        .enumerate()
        .map(|(index, (label, values))| {
            let left = 4 + index as i64 * group_width;
            let bars = values
                .iter()
                .enumerate()
                .map(|(position, value)| {
                    let height = (value * PLOT_HEIGHT / most).max(i64::from(*value > 0));
                    SeriesBar {
                        class: SERIES[position % SERIES.len()],
                        x: left + position as i64 * BAR,
                        y: base_y - height,
                        width: BAR - 1,
                        height,
                    }
                })
                .collect();
            let summary = series
                .iter()
                .zip(values)
                .map(|(name, value)| format!("{name} {value}"))
                .collect::<Vec<_>>()
                .join(", ");
            Group {
                label: label.clone(),
                label_x: left + (series.len() as i64 * BAR) / 2,
                bars,
                summary: format!("{label}: {summary}."),
            }
        })
        .collect();
    GroupedChart {
        groups,
        legend: series
            .iter()
            .enumerate()
            .map(|(index, name)| (SERIES[index % SERIES.len()], name.clone()))
            .collect(),
        width: 8 + periods.len().max(1) as i64 * group_width,
        height: base_y + 20,
        label_y: base_y + 14,
        base_y,
    }
}

/// The short label of a week (`2026-03-02` → `03-02`).
fn short_week(week: &str) -> String {
    week.get(5..).unwrap_or(week).to_owned()
}

/// The short label of a month (`2026-03` → `26-03`).
fn short_month(month: &str) -> String {
    month.get(2..).unwrap_or(month).to_owned()
}

/// A ticket that needs attention, as shown.
pub struct AttentionLine {
    id: String,
    subject: String,
    priority: String,
    priority_key: String,
    status_key: String,
    breached: bool,
    due: String,
}

/// The tickets section.
pub struct TicketSection {
    report: TicketReport,
    by_priority: Chart,
    by_status: Chart,
    first_response: GroupedChart,
    resolution: GroupedChart,
    average: String,
    attention: Vec<AttentionLine>,
    at_risk_label: String,
}

/// The satisfaction section.
pub struct SatisfactionSection {
    csat: String,
    nps: String,
    csat_chart: TrendChart,
}

/// A redemption as shown.
pub struct RedemptionLine {
    reason: String,
    redemptions: i64,
    points: i64,
}

/// The loyalty section.
pub struct LoyaltySection {
    report: LoyaltyReport,
    tiers: Chart,
    points: GroupedChart,
    redemptions: Vec<RedemptionLine>,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsTemplate {
    t: Tr,
    layout: Layout,
    tickets: Option<TicketSection>,
    satisfaction: Option<SatisfactionSection>,
    loyalty: Option<LoyaltySection>,
}

/// Keeps `Forbidden` as "not for this role" (the section is left out); other errors stop the page.
fn optional<T>(result: Result<T, AppError>) -> Result<Option<T>, AppError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(AppError::Forbidden(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

fn bars_chart(values: Vec<(String, i64)>) -> Chart {
    let bars = horizontal_bars(&values);
    Chart {
        height: bars.len() as i64 * 28 + 8,
        bars,
    }
}

fn ticket_section(tr: Tr, report: TicketReport) -> TicketSection {
    let by_priority = bars_chart(
        report
            .open_by_priority
            .iter()
            .map(|count| {
                (
                    tr.get(&format!("ticket.priority.{}", count.key)).to_owned(),
                    count.count,
                )
            })
            .collect(),
    );
    let by_status = bars_chart(
        report
            .open_by_status
            .iter()
            .map(|count| {
                (
                    tr.get(&format!("ticket.status.{}", count.key)).to_owned(),
                    count.count,
                )
            })
            .collect(),
    );
    let series = vec![
        tr.get("reports.met").to_owned(),
        tr.get("reports.breached").to_owned(),
    ];
    let first_response = grouped_chart(
        &series,
        &report
            .weeks
            .iter()
            .map(|week| {
                (
                    short_week(&week.week),
                    vec![week.first_response_met, week.first_response_breached],
                )
            })
            .collect::<Vec<_>>(),
    );
    let resolution = grouped_chart(
        &series,
        &report
            .weeks
            .iter()
            .map(|week| {
                (
                    short_week(&week.week),
                    vec![week.resolution_met, week.resolution_breached],
                )
            })
            .collect::<Vec<_>>(),
    );
    let average = match report.average_first_response_minutes {
        Some(minutes) => tr.fill("reports.minutes", &[("minutes", &minutes.to_string())]),
        None => "–".to_owned(),
    };
    let attention = report
        .attention
        .iter()
        .map(|ticket| AttentionLine {
            id: ticket.id.clone(),
            subject: ticket.subject.clone(),
            priority: ticket.priority.clone(),
            priority_key: format!("ticket.priority.{}", ticket.priority),
            status_key: format!("ticket.status.{}", ticket.status),
            breached: ticket.state == "breached",
            due: tr.datetime(&ticket.due),
        })
        .collect();
    TicketSection {
        at_risk_label: tr.fill(
            "reports.at_risk",
            &[("hours", &report.at_risk_hours.to_string())],
        ),
        by_priority,
        by_status,
        first_response,
        resolution,
        average,
        attention,
        report,
    }
}

fn loyalty_section(tr: Tr, report: LoyaltyReport) -> LoyaltySection {
    let tiers = bars_chart(
        report
            .tiers
            .iter()
            .map(|tier| {
                let key = format!("tier.{}", tier.tier);
                let name = match tr.get(&key) {
                    text if text == key => tier.tier.clone(),
                    text => text.to_owned(),
                };
                (name, tier.members)
            })
            .collect(),
    );
    let points = grouped_chart(
        &[
            tr.get("reports.earned").to_owned(),
            tr.get("reports.redeemed").to_owned(),
            tr.get("reports.expired").to_owned(),
        ],
        &report
            .months
            .iter()
            .map(|month| {
                (
                    short_month(&month.month),
                    vec![month.earned, month.redeemed, month.expired],
                )
            })
            .collect::<Vec<_>>(),
    );
    let redemptions = report
        .top_redemptions
        .iter()
        .map(|redemption| RedemptionLine {
            reason: redemption
                .reason
                .clone()
                .unwrap_or_else(|| tr.get("reports.no_reason").to_owned()),
            redemptions: redemption.redemptions,
            points: redemption.points,
        })
        .collect();
    LoyaltySection {
        tiers,
        points,
        redemptions,
        report,
    }
}

fn satisfaction_section(summary: veil_app::feedback::FeedbackSummary) -> SatisfactionSection {
    let values: Vec<(String, Option<f64>)> = summary
        .trend
        .iter()
        .map(|month| (month.month.clone(), month.stats.csat.average))
        .collect();
    SatisfactionSection {
        csat: summary
            .overall
            .csat
            .average
            .map(|average| average.to_string())
            .unwrap_or_else(|| "–".to_owned()),
        nps: summary
            .overall
            .nps
            .score
            .map(|score| score.to_string())
            .unwrap_or_else(|| "–".to_owned()),
        csat_chart: trend_chart(&values, 0.0, 5.0),
    }
}

async fn build(state: &AppState, page: &Page, user: &WebUser) -> Result<ReportsTemplate, AppError> {
    let tr = page.tr;
    let actor = &user.actor;
    // Sections the role may not see are not even asked for (no refusal in the audit trail for browsing).
    let may = |action: Action| role_permits(actor.role, action).is_ok();
    let tickets = if may(Action::TicketRead) {
        optional(state.veil.ticket_report(actor).await)?.map(|report| ticket_section(tr, report))
    } else {
        None
    };
    let satisfaction = if may(Action::FeedbackRead) {
        optional(
            state
                .veil
                .feedback_summary(actor, &SummaryQuery::default())
                .await,
        )?
        .map(satisfaction_section)
    } else {
        None
    };
    let loyalty = if may(Action::LoyaltyRead) {
        optional(state.veil.loyalty_report(actor).await)?.map(|report| loyalty_section(tr, report))
    } else {
        None
    };
    Ok(ReportsTemplate {
        t: tr,
        layout: Layout::new(page, Some(user)),
        tickets,
        satisfaction,
        loyalty,
    })
}

/// The reports page.
pub async fn page(State(state): State<AppState>, page: Page, user: WebUser) -> Response {
    match build(&state, &page, &user).await {
        Ok(template) => render(&template, page.tr, StatusCode::OK),
        Err(error) => error_page(&page, Some(&user), &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_bars_scale_to_the_largest_value() {
        let chart = grouped_chart(
            &["a".to_owned(), "b".to_owned()],
            &[("w1".to_owned(), vec![4, 0]), ("w2".to_owned(), vec![2, 1])],
        );
        assert_eq!(chart.groups[0].bars[0].height, PLOT_HEIGHT);
        assert_eq!(chart.groups[0].bars[1].height, 0);
        assert_eq!(chart.groups[1].bars[0].height, PLOT_HEIGHT / 2);
        assert_eq!(chart.groups[1].bars[1].height, PLOT_HEIGHT / 4);
        assert_eq!(chart.groups[1].bars[1].class, "series-1");
        assert_eq!(chart.groups[1].summary, "w2: a 2, b 1.");
        assert_eq!(short_week("2026-03-02"), "03-02");
        assert_eq!(short_month("2026-03"), "26-03");
    }
}
