//! Customer feedback (数据分析与改进): CSAT surveys after a ticket is resolved or closed, NPS surveys sent to a set
//! of customers, feedback staff record, and the analysis of it all.
//!
//! - **Surveys.** Customers have no accounts, so a survey is answered through a public link
//!   (`/survey/{token}`). The token is 32 random bytes (base64url); only its SHA-256 hash is stored, and the
//!   answer claims the survey with one guarded `UPDATE … WHERE answered_at IS NULL`, so a link works once. A
//!   ticket gets at most one CSAT survey (a unique column), however often it is reopened and closed. The links
//!   are returned to the staff who caused them ([`SurveyLink`]).
//! - **Sending links and reminders.** [`Veil::send_survey`] and [`Veil::send_campaign`] send a survey's link to its
//!   customer by e-mail or SMS through the messaging module, from a template with `{{survey.link}}`. Since only
//!   hashes are stored, each send mints a token for that message (its hash in `survey_link`) and retires the
//!   creation token, in the transaction that claims the still-open survey: once sent, only the links the
//!   customer received work (all of them, until the survey is answered or expires). Running a campaign send
//!   again reminds those who have not answered.
//! - **Free text.** Comments are masked like customer notes ([`crate::notes::mask_text`]), their originals
//!   sealed under the customer's key.
//! - **Analysis.** [`Veil::feedback_summary`]: CSAT average and distribution, NPS (% promoters 9–10 − %
//!   detractors 0–6) per month, agent, channel or product, over the feedback of the customers the caller may
//!   list; and the most frequent terms of complaints (low-score comments and complaint tickets), segmented with
//!   jieba ([`complaint_terms`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use base64::Engine;
use futures_util::StreamExt;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use veil_store::{FeedbackRow, FeedbackStatRow, MaskedCustomerRow, SurveyRow};

use crate::audit::{event, EventExt, Outcome};
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::messages::{MessageChannel, MessageView};
use crate::notes::{mask_text, parse_span_index, MaskedSpan};
use crate::tickets::TicketChannel;
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// How long a survey link can be answered, in days.
pub const SURVEY_VALID_DAYS: i64 = 30;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;
/// Most customers one NPS batch asks.
pub const MAX_NPS_CUSTOMERS: usize = 1000;
/// Most complaint tickets whose text feeds the term count of one summary (the newest ones).
pub const MAX_COMPLAINT_TICKETS: i64 = 5000;
/// Default and largest number of complaint terms returned.
pub const DEFAULT_TOP_TERMS: usize = 20;
const MAX_TOP_TERMS: usize = 100;
const DAY_MS: i64 = 86_400_000;
/// The longest summary window, in days.
pub const MAX_WINDOW_DAYS: i64 = 3 * 366;
/// China Standard Time, for month buckets.
const CHINA_OFFSET_SECS: i32 = 8 * 3600;

/// CSAT (1–5, after a ticket) or NPS (0–10, "how likely are you to recommend us").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    /// Customer satisfaction, 1–5.
    Csat,
    /// Net promoter score question, 0–10.
    Nps,
}

impl FeedbackKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Csat => "csat",
            FeedbackKind::Nps => "nps",
        }
    }

    /// Parses a stable name.
    pub fn parse(text: &str) -> Option<FeedbackKind> {
        match text {
            "csat" => Some(FeedbackKind::Csat),
            "nps" => Some(FeedbackKind::Nps),
            _ => None,
        }
    }

    /// The lowest and highest score.
    pub fn range(self) -> (i64, i64) {
        match self {
            FeedbackKind::Csat => (1, 5),
            FeedbackKind::Nps => (0, 10),
        }
    }

    /// Whether `score` counts as a complaint (CSAT ≤ 2, NPS ≤ 6: a detractor).
    pub fn is_low(self, score: i64) -> bool {
        match self {
            FeedbackKind::Csat => score <= 2,
            FeedbackKind::Nps => score <= 6,
        }
    }
}

/// A survey's public link: what the messaging module sends to the customer (the token is not personal data;
/// it is shown once, only its hash is stored).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SurveyLink {
    /// Survey id.
    pub survey_id: String,
    /// The customer asked.
    pub customer_id: String,
    /// `csat` or `nps`.
    pub kind: FeedbackKind,
    /// The public path, `/survey/{token}` (prefix the server's public address).
    pub link: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// A new token and its hash.
pub(crate) fn new_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` looks like one of ours (43 base64url characters); anything else is not looked up.
fn plausible_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// A new survey row and its link.
fn new_survey(
    kind: FeedbackKind,
    customer_id: &str,
    ticket_id: Option<&str>,
    campaign_id: Option<&str>,
    created_by: Option<&Actor>,
    now: i64,
    valid_days: i64,
) -> (SurveyRow, SurveyLink) {
    let (token, hash) = new_token();
    let row = SurveyRow {
        id: uuid::Uuid::now_v7().to_string(),
        kind: kind.as_str().to_owned(),
        customer_id: customer_id.to_owned(),
        ticket_id: ticket_id.map(str::to_owned),
        campaign_id: campaign_id.map(str::to_owned),
        token_hash: hash,
        created_by: created_by.map(|actor| actor.user_id.to_string()),
        expires_at: now + valid_days * DAY_MS,
        answered_at: None,
        sent_count: 0,
        last_sent_at: None,
        created_at: now,
    };
    let link = SurveyLink {
        survey_id: row.id.clone(),
        customer_id: row.customer_id.clone(),
        kind,
        link: format!("/survey/{token}"),
        expires_at: format_time(row.expires_at),
    };
    (row, link)
}

/// The CSAT survey a ticket's resolution or closing creates, and its `survey.create` audit entry.
pub(crate) fn csat_survey_for(
    actor: &Actor,
    ticket_id: &str,
    customer_id: &str,
    now: i64,
) -> (SurveyRow, SurveyLink, veil_store::AuditEvent) {
    let (row, link) = new_survey(
        FeedbackKind::Csat,
        customer_id,
        Some(ticket_id),
        None,
        None,
        now,
        SURVEY_VALID_DAYS,
    );
    let entry = event(Some(actor), "survey.create", Outcome::Ok)
        .customers([customer_id.to_owned()])
        .detail(serde_json::json!({
            "kind": "csat", "survey_id": row.id, "ticket_id": ticket_id, "trigger": "ticket_closed",
        }));
    (row, link, entry)
}

/// Feedback staff received (by phone, in the store…).
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackInput {
    /// The customer it came from.
    pub customer_id: String,
    /// `csat` (score 1–5) or `nps` (score 0–10).
    pub kind: FeedbackKind,
    /// The score.
    pub score: i64,
    /// What the customer said (at most 2,000 characters); personal data in it is masked.
    #[serde(default)]
    pub comment: Option<String>,
    /// The ticket it is about (its channel and assignee are recorded with the score).
    #[serde(default)]
    pub ticket_id: Option<String>,
    /// Where it came in, when it is about no ticket.
    #[serde(default)]
    pub channel: Option<TicketChannel>,
    /// The product, when it is about an order item.
    #[serde(default)]
    pub product_id: Option<String>,
}

impl std::fmt::Debug for FeedbackInput {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FeedbackInput")
            .field("customer_id", &self.customer_id)
            .field("kind", &self.kind)
            .field("score", &self.score)
            .finish_non_exhaustive()
    }
}

/// One feedback as staff see it (comment masked).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackView {
    /// Feedback id.
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// `csat` or `nps`.
    pub kind: FeedbackKind,
    /// The score.
    pub score: i64,
    /// The comment, personal data masked in place.
    pub comment: String,
    /// Masked spans in `comment`.
    pub comment_pii: Vec<MaskedSpan>,
    /// `staff` or `survey`.
    pub source: String,
    /// The ticket it is about.
    pub ticket_id: Option<String>,
    /// The channel.
    pub channel: Option<String>,
    /// The agent (the ticket's assignee).
    pub agent_id: Option<String>,
    /// The product.
    pub product_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

fn feedback_view(row: FeedbackRow) -> FeedbackView {
    FeedbackView {
        comment_pii: parse_span_index(&row.comment_span_index),
        kind: FeedbackKind::parse(&row.kind).unwrap_or(FeedbackKind::Csat),
        id: row.id,
        customer_id: row.customer_id,
        score: row.score,
        comment: row.comment_masked,
        source: row.source,
        ticket_id: row.ticket_id,
        channel: row.channel,
        agent_id: row.agent_id,
        product_id: row.product_id,
        created_at: format_time(row.created_at),
    }
}

/// An NPS survey for a set of customers: either `customer_ids` or one of the caller's saved segments.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NpsSurveyInput {
    /// Customer ids (1–1,000), each one the caller sees.
    #[serde(default)]
    pub customer_ids: Option<Vec<String>>,
    /// A saved segment's id (its customers inside the caller's scope, at most 1,000).
    #[serde(default)]
    pub segment: Option<String>,
    /// How long the links can be answered, 1–90 days (default 30).
    #[serde(default)]
    pub valid_days: Option<i64>,
}

/// The surveys of one NPS batch, with their links.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NpsSurveyBatch {
    /// The batch id.
    pub campaign_id: String,
    /// One survey per customer.
    pub surveys: Vec<SurveyLink>,
}

/// Sending a survey's link to its customer (or, for a campaign, to every customer who has not answered).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveySendInput {
    /// The template's id or name; it must contain `{{survey.link}}`.
    pub template: String,
    /// The channel; must be the template's (default: the template's).
    #[serde(default)]
    pub channel: Option<MessageChannel>,
}

/// Sending an NPS campaign's links to every customer who has not answered: the first send, and each reminder.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignSendInput {
    /// The template's id or name; it must contain `{{survey.link}}`.
    pub template: String,
    /// The channel; must be the template's (default: the template's).
    #[serde(default)]
    pub channel: Option<MessageChannel>,
    /// Skip the surveys whose link was sent less than this many hours ago (0 to 720; default 24), so that a
    /// campaign run twice does not message the same customers twice in a row. Their outcome is `recently_sent`.
    #[serde(default)]
    pub remind_after_hours: Option<u32>,
}

/// The hours a campaign send waits before reminding a customer again, by default.
pub const DEFAULT_REMIND_AFTER_HOURS: u32 = 24;

/// The longest wait a campaign send may be given: 30 days.
const MAX_REMIND_AFTER_HOURS: u32 = 720;

/// A survey whose link was sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SurveySent {
    /// Survey id.
    pub survey_id: String,
    /// The customer asked.
    pub customer_id: String,
    /// `csat` or `nps`.
    pub kind: FeedbackKind,
    /// RFC 3339.
    pub expires_at: String,
    /// How many links the server has sent for this survey, this one included (2 or more: a reminder).
    pub sends: i64,
    /// The message: recipient masked, `sent` or `failed`.
    pub message: MessageView,
}

/// What became of one survey of a campaign send.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignSendOutcome {
    /// Survey id.
    pub survey_id: String,
    /// The customer asked.
    pub customer_id: String,
    /// `sent`, `failed` (delivery failed; see `error`), `consent_required`, `no_email`, `no_mobile`, `answered`
    /// or `expired` (not sent), `not_found` (the customer was erased meanwhile) or `error` (logged).
    pub outcome: String,
    /// The message, when one was recorded.
    pub message_id: Option<String>,
    /// Why delivery failed, without personal data.
    pub error: Option<String>,
    /// How many links the server has sent for this survey so far.
    pub sends: i64,
}

/// The result of sending a campaign's links.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignSendReport {
    /// The campaign.
    pub campaign_id: String,
    /// The template's name.
    pub template: String,
    /// The channel.
    pub channel: MessageChannel,
    /// How many surveys ended in each outcome.
    pub counts: BTreeMap<String, u64>,
    /// One per survey of a customer in the caller's scope, in the campaign's order.
    pub outcomes: Vec<CampaignSendOutcome>,
    /// Surveys of customers outside the caller's scope: neither sent nor listed.
    pub out_of_scope: u64,
}

/// Where one survey of a campaign stands.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignSurveyState {
    /// Survey id.
    pub survey_id: String,
    /// The customer asked.
    pub customer_id: String,
    /// `open`, `answered` or `expired`.
    pub state: String,
    /// How many links the server has sent for it.
    pub sends: i64,
    /// When the last one was sent (RFC 3339).
    pub last_sent_at: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
}

/// A survey of one customer as staff see it. No link: only the server's own sends carry one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerSurveyView {
    /// Survey id.
    pub survey_id: String,
    /// `csat` or `nps`.
    pub kind: FeedbackKind,
    /// The ticket a CSAT survey is about.
    pub ticket_id: Option<String>,
    /// The NPS campaign it belongs to.
    pub campaign_id: Option<String>,
    /// `open`, `answered` or `expired`.
    pub state: String,
    /// How many links the server has sent for it.
    pub sends: i64,
    /// When the last one was sent (RFC 3339).
    pub last_sent_at: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub expires_at: String,
    /// Whether the caller may send its link now: it is open, and a campaign's NPS survey is sent by admins and
    /// managers only.
    pub may_send: bool,
}

/// An NPS campaign's progress: who has answered, who may be reminded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CampaignView {
    /// The campaign.
    pub campaign_id: String,
    /// How many surveys are `open`, `answered`, `expired`.
    pub counts: BTreeMap<String, u64>,
    /// One per survey of a customer in the caller's scope.
    pub surveys: Vec<CampaignSurveyState>,
    /// Surveys of customers outside the caller's scope (not listed).
    pub out_of_scope: u64,
}

/// Surveys sent at once by a campaign send (SMTP and SMS gateways take a few at a time well).
const CAMPAIGN_SEND_CONCURRENCY: usize = 4;

/// Why an answered or expired survey is not sent (422 `survey_answered` / `survey_expired`); `None` when open.
pub(crate) fn survey_closed_error(survey: &SurveyRow, now: i64) -> Option<AppError> {
    if survey.answered_at.is_some() {
        Some(invalid(
            "survey",
            "survey_answered",
            "this survey has already been answered: nothing was sent",
        ))
    } else if survey.expires_at <= now {
        Some(invalid(
            "survey",
            "survey_expired",
            &format!(
                "this survey expired at {}: nothing was sent (create a new one)",
                format_time(survey.expires_at)
            ),
        ))
    } else {
        None
    }
}

fn survey_state(survey: &SurveyRow, now: i64) -> &'static str {
    if survey.answered_at.is_some() {
        "answered"
    } else if survey.expires_at <= now {
        "expired"
    } else {
        "open"
    }
}

/// What the public survey page may show: no personal data, only the question and whether it is still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicSurveyState {
    /// Can be answered.
    Open,
    /// Already answered.
    Answered,
    /// Past its expiry.
    Expired,
}

/// A survey as the public page sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicSurvey {
    /// The question asked.
    pub kind: FeedbackKind,
    /// Whether it can be answered.
    pub state: PublicSurveyState,
}

/// A customer's answer through the public link.
#[derive(Clone, Deserialize)]
pub struct SurveyAnswer {
    /// The score.
    pub score: i64,
    /// Optional comment.
    pub comment: Option<String>,
}

impl std::fmt::Debug for SurveyAnswer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SurveyAnswer")
            .field("score", &self.score)
            .finish_non_exhaustive()
    }
}

/// How a summary groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Calendar month in China Standard Time (`2026-03`).
    Month,
    /// The ticket's assignee.
    Agent,
    /// The ticket's channel.
    Channel,
    /// The product.
    Product,
}

impl GroupBy {
    /// Parses a stable name.
    pub fn parse(text: &str) -> Option<GroupBy> {
        match text {
            "month" => Some(GroupBy::Month),
            "agent" => Some(GroupBy::Agent),
            "channel" => Some(GroupBy::Channel),
            "product" => Some(GroupBy::Product),
            _ => None,
        }
    }
}

/// Summary parameters (as given in the query string).
#[derive(Debug, Clone, Default)]
pub struct SummaryQuery {
    /// Start (a date, midnight in China Standard Time, or RFC 3339; default 365 days before `to`).
    pub from: Option<String>,
    /// End, exclusive (default: the end of today in China Standard Time).
    pub to: Option<String>,
    /// `month` (default), `agent`, `channel` or `product`.
    pub by: Option<String>,
    /// How many complaint terms, 1–100 (default 20).
    pub top: Option<u32>,
}

/// CSAT figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CsatStats {
    /// How many CSAT scores.
    pub count: u64,
    /// Their mean, two decimals (absent without scores).
    pub average: Option<f64>,
    /// How many scored 1, 2, 3, 4, 5.
    pub distribution: Vec<u64>,
}

/// NPS figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NpsStats {
    /// How many NPS scores.
    pub count: u64,
    /// Scores 9–10.
    pub promoters: u64,
    /// Scores 7–8.
    pub passives: u64,
    /// Scores 0–6.
    pub detractors: u64,
    /// % promoters − % detractors, one decimal, −100 to 100 (absent without scores).
    pub score: Option<f64>,
}

/// CSAT and NPS of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreStats {
    /// CSAT.
    pub csat: CsatStats,
    /// NPS.
    pub nps: NpsStats,
}

#[derive(Default)]
struct Tally {
    csat: [u64; 5],
    nps: [u64; 11],
}

impl Tally {
    fn add(&mut self, kind: FeedbackKind, score: i64) {
        match kind {
            FeedbackKind::Csat if (1..=5).contains(&score) => self.csat[(score - 1) as usize] += 1,
            FeedbackKind::Nps if (0..=10).contains(&score) => self.nps[score as usize] += 1,
            _ => {}
        }
    }

    fn stats(&self) -> ScoreStats {
        let csat_count: u64 = self.csat.iter().sum();
        let csat_sum: u64 = self
            .csat
            .iter()
            .enumerate()
            .map(|(index, count)| (index as u64 + 1) * count)
            .sum();
        let nps_count: u64 = self.nps.iter().sum();
        let promoters = self.nps[9] + self.nps[10];
        let passives = self.nps[7] + self.nps[8];
        let detractors = nps_count - promoters - passives;
        let round = |value: f64, places: i32| {
            let factor = 10f64.powi(places);
            (value * factor).round() / factor
        };
        ScoreStats {
            csat: CsatStats {
                count: csat_count,
                average: (csat_count > 0).then(|| round(csat_sum as f64 / csat_count as f64, 2)),
                distribution: self.csat.to_vec(),
            },
            nps: NpsStats {
                count: nps_count,
                promoters,
                passives,
                detractors,
                score: (nps_count > 0).then(|| {
                    round(
                        (promoters as f64 - detractors as f64) * 100.0 / nps_count as f64,
                        1,
                    )
                }),
            },
        }
    }
}

/// One group of a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupStats {
    /// The month (`2026-03`), agent's user id, channel or product id; absent for "none" (no agent, channel or
    /// product recorded).
    pub key: Option<String>,
    /// The agent's username or the product's name, when grouping by them.
    pub label: Option<String>,
    /// The figures.
    #[serde(flatten)]
    pub stats: ScoreStats,
}

/// One month of the trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MonthStats {
    /// `YYYY-MM` in China Standard Time.
    pub month: String,
    /// The figures.
    #[serde(flatten)]
    pub stats: ScoreStats,
}

/// A frequent complaint term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TermCount {
    /// The word.
    pub term: String,
    /// How often it occurs.
    pub count: u64,
}

/// The feedback analysis.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackSummary {
    /// Window start (RFC 3339).
    pub from: String,
    /// Window end, exclusive (RFC 3339).
    pub to: String,
    /// Window start as a date in China Standard Time.
    pub from_date: String,
    /// Window end (exclusive) as a date in China Standard Time.
    pub to_date: String,
    /// How `groups` is grouped.
    pub by: GroupBy,
    /// Everything in the window.
    pub overall: ScoreStats,
    /// Per month, agent, channel or product.
    pub groups: Vec<GroupStats>,
    /// Per month, oldest first (months without feedback are listed, empty).
    pub trend: Vec<MonthStats>,
    /// The most frequent terms of low-score comments and complaint tickets.
    pub complaint_terms: Vec<TermCount>,
    /// How many complaint texts were segmented.
    pub complaint_texts: u64,
}

/// A window bound: an RFC 3339 time, or a date meaning its midnight in China Standard Time (the months of the
/// trend are China's too).
fn parse_bound(field: &str, text: &str) -> AppResult<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(midnight) = date.and_hms_opt(0, 0, 0) {
            return Ok(midnight.and_utc().timestamp_millis() - i64::from(CHINA_OFFSET_SECS) * 1000);
        }
    }
    Err(invalid(
        field,
        "invalid",
        "expected a date (YYYY-MM-DD) or an RFC 3339 time",
    ))
}

/// The first China Standard Time midnight after `unix_ms`.
fn next_china_midnight(unix_ms: i64) -> i64 {
    let offset_ms = i64::from(CHINA_OFFSET_SECS) * 1000;
    (unix_ms + offset_ms).div_euclid(DAY_MS) * DAY_MS + DAY_MS - offset_ms
}

/// The China Standard Time date of `unix_ms` (`2026-03-01`), for forms.
pub fn china_date(unix_ms: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(CHINA_OFFSET_SECS).expect("a valid offset");
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|time| time.with_timezone(&offset).format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn month_of(unix_ms: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(CHINA_OFFSET_SECS).expect("a valid offset");
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|time| time.with_timezone(&offset).format("%Y-%m").to_string())
        .unwrap_or_default()
}

/// Every month from `from` to `to` (exclusive), China Standard Time.
fn months_between(from: i64, to: i64) -> Vec<String> {
    let first = month_of(from);
    let last = month_of(to - 1);
    let parse = |text: &str| -> Option<(i32, u32)> {
        let (year, month) = text.split_once('-')?;
        Some((year.parse().ok()?, month.parse().ok()?))
    };
    let (Some((mut year, mut month)), Some(end)) = (parse(&first), parse(&last)) else {
        return Vec::new();
    };
    let mut months = Vec::new();
    while (year, month) <= end && months.len() < 48 {
        months.push(format!("{year:04}-{month:02}"));
        month += 1;
        if month > 12 {
            month = 1;
            year += 1;
        }
    }
    months
}

/// Words that say nothing about what went wrong.
const STOP_WORDS: &[&str] = &[
    "的", "了", "是", "我", "你", "他", "她", "它", "我们", "你们", "他们", "很", "太", "也", "都",
    "就", "还", "又", "在", "和", "与", "及", "但", "而", "没", "没有", "不是", "一个", "这个",
    "那个", "什么", "怎么", "因为", "所以", "然后", "非常", "特别", "比较", "真的", "感觉", "觉得",
    "已经", "可以", "不能", "有", "就是", "还是", "以及", "或者", "如果", "而且", "一直", "一下",
    "这样", "那样", "这么", "那么", "自己", "客户", "电话", "联系", "问题", "一些", "这次", "这种",
    "时候", "现在", "而是", "但是", "不过", "虽然", "希望", "需要", "the", "and", "for", "was",
    "with", "that", "this", "not", "are", "but", "very", "too", "you", "your", "our", "had", "has",
    "have",
];

/// Phrases of service complaints that should stay one term (jieba's dictionary knows them only as rare words).
const DOMAIN_TERMS: &[&str] = &[
    "服务态度",
    "等待时间",
    "售后服务",
    "退款",
    "退货",
    "物流",
    "发货",
    "配送",
    "客服",
    "质量问题",
    "响应速度",
    "处理速度",
    "价格",
    "收费",
];

fn segmenter() -> &'static jieba_rs::Jieba {
    static JIEBA: OnceLock<jieba_rs::Jieba> = OnceLock::new();
    JIEBA.get_or_init(|| {
        let mut jieba = jieba_rs::Jieba::new();
        for term in DOMAIN_TERMS {
            jieba.add_word(term, Some(20_000), Some("n"));
        }
        jieba
    })
}

fn is_cjk(character: char) -> bool {
    matches!(character, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

/// Removes masked fragments: every run of non-CJK, non-space characters that contains `*` (`138****5678`,
/// `z***@example.com`, `110101********123X`) and the one or two CJK characters a masked name keeps before its
/// stars (`张*`, `欧阳**`).
fn strip_masked(text: &str) -> String {
    let characters: Vec<char> = text.chars().collect();
    let mut keep = vec![true; characters.len()];
    let mut index = 0;
    while index < characters.len() {
        let character = characters[index];
        if character.is_whitespace() || is_cjk(character) {
            index += 1;
            continue;
        }
        let start = index;
        while index < characters.len()
            && !characters[index].is_whitespace()
            && !is_cjk(characters[index])
        {
            index += 1;
        }
        let run = &characters[start..index];
        if run.contains(&'*') {
            for slot in &mut keep[start..index] {
                *slot = false;
            }
            if run[0] == '*' {
                let mut back = start;
                while back > 0 && start - back < 2 && is_cjk(characters[back - 1]) {
                    back -= 1;
                    keep[back] = false;
                }
            }
        }
    }
    characters
        .iter()
        .zip(keep)
        .map(|(character, kept)| if kept { *character } else { ' ' })
        .collect()
}

/// Whether a segment is worth counting: at least two characters, some letter or CJK character, no digit, not a
/// stop-word.
fn countable(word: &str) -> bool {
    let characters = word.chars().count();
    characters >= 2
        && !word.chars().any(char::is_numeric)
        && word
            .chars()
            .all(|character| is_cjk(character) || character.is_alphabetic())
        && !STOP_WORDS.contains(&word)
}

/// The `top` most frequent terms of `texts` (masked complaint texts), segmented with jieba; ties by term.
pub fn complaint_terms<'a>(texts: impl IntoIterator<Item = &'a str>, top: usize) -> Vec<TermCount> {
    let jieba = segmenter();
    let mut counts: HashMap<String, u64> = HashMap::new();
    for text in texts {
        let cleaned = strip_masked(text);
        for token in jieba.cut(&cleaned, true) {
            let word = token.word.trim().to_lowercase();
            if countable(&word) {
                *counts.entry(word).or_default() += 1;
            }
        }
    }
    let mut terms: Vec<TermCount> = counts
        .into_iter()
        .map(|(term, count)| TermCount { term, count })
        .collect();
    terms.sort_by(|left, right| {
        right
            .count
            .cmp(&left.count)
            .then_with(|| left.term.cmp(&right.term))
    });
    terms.truncate(top);
    terms
}

fn invalid(field: &str, code: &str, message: &str) -> AppError {
    AppError::Validation(vec![FieldError::new(field, code, message)])
}

fn check_score(kind: FeedbackKind, score: i64) -> AppResult<()> {
    let (low, high) = kind.range();
    if (low..=high).contains(&score) {
        Ok(())
    } else {
        Err(invalid(
            "score",
            "out_of_range",
            &format!("a {} score is {low} to {high}", kind.as_str()),
        ))
    }
}

fn check_comment(comment: &str) -> AppResult<()> {
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(invalid(
            "comment",
            "invalid_length",
            &format!("must be at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    Ok(())
}

impl Veil {
    /// Records feedback staff received about a customer they see. The comment is masked and its originals
    /// sealed; with a ticket, its channel and assignee are recorded too.
    pub async fn record_feedback(
        &self,
        actor: &Actor,
        input: &FeedbackInput,
    ) -> AppResult<FeedbackView> {
        self.permit_recorded(actor, Action::FeedbackWrite, None)
            .await?;
        let mut errors = Vec::new();
        let (low, high) = input.kind.range();
        if !(low..=high).contains(&input.score) {
            errors.push(FieldError::new(
                "score",
                "out_of_range",
                format!("a {} score is {low} to {high}", input.kind.as_str()),
            ));
        }
        let comment = input.comment.clone().unwrap_or_default();
        if comment.chars().count() > MAX_COMMENT_CHARS {
            errors.push(FieldError::new(
                "comment",
                "invalid_length",
                format!("must be at most {MAX_COMMENT_CHARS} characters"),
            ));
        }
        let customer_id: Option<crate::CustomerId> = input.customer_id.parse().ok();
        if customer_id.is_none() {
            errors.push(FieldError::new(
                "customer_id",
                "invalid",
                "not a customer id",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let customer_id = customer_id.map(|id| id.to_string()).unwrap_or_default();
        let customer = self
            .customer_for(actor, &customer_id, Action::FeedbackWrite)
            .await?;
        let (mut channel, mut agent_id) = (input.channel.map(|c| c.as_str().to_owned()), None);
        if let Some(ticket_id) = &input.ticket_id {
            let ticket = self
                .store()
                .ticket(ticket_id)
                .await?
                .filter(|ticket| ticket.customer_id == customer.id)
                .ok_or_else(|| {
                    invalid("ticket_id", "not_found", "no such ticket of this customer")
                })?;
            channel = Some(ticket.channel);
            agent_id = ticket.assignee_id;
        }
        if let Some(product_id) = &input.product_id {
            if self.store().product(product_id).await?.is_none() {
                return Err(invalid("product_id", "not_found", "no such product"));
            }
        }
        let now = now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let masked = mask_text(comment.trim());
        let spans_ct = self
            .seal_originals(&customer.id, &masked, "feedback", &id, "comment")
            .await?;
        let row = FeedbackRow {
            id: id.clone(),
            customer_id: customer.id.clone(),
            kind: input.kind.as_str().to_owned(),
            score: input.score,
            comment_span_index: masked.span_index_json(),
            comment_masked: masked.body.clone(),
            comment_spans_ct: spans_ct,
            source: "staff".to_owned(),
            survey_id: None,
            ticket_id: input.ticket_id.clone(),
            channel,
            agent_id,
            product_id: input.product_id.clone(),
            recorded_by: Some(actor.user_id.to_string()),
            created_at: now,
        };
        let entry = event(Some(actor), "feedback.create", Outcome::Ok)
            .customers([row.customer_id.clone()])
            .detail(serde_json::json!({
                "feedback_id": row.id, "kind": row.kind, "score": row.score, "ticket_id": row.ticket_id,
                "pii_spans": masked.spans.len(),
            }));
        self.store().insert_feedback(&row, &[entry]).await?;
        Ok(feedback_view(row))
    }

    /// Creates an NPS survey for each customer named (or of a saved segment) that the caller sees, and returns
    /// their links.
    pub async fn create_nps_surveys(
        &self,
        actor: &Actor,
        input: &NpsSurveyInput,
    ) -> AppResult<NpsSurveyBatch> {
        self.permit_recorded(actor, Action::SurveyManage, None)
            .await?;
        let valid_days = input.valid_days.unwrap_or(SURVEY_VALID_DAYS);
        if !(1..=90).contains(&valid_days) {
            return Err(invalid("valid_days", "out_of_range", "must be 1 to 90"));
        }
        let customers: Vec<String> = match (&input.customer_ids, &input.segment) {
            (Some(ids), None) => {
                if ids.is_empty() || ids.len() > MAX_NPS_CUSTOMERS {
                    return Err(invalid(
                        "customer_ids",
                        "invalid_length",
                        &format!("name 1 to {MAX_NPS_CUSTOMERS} customers"),
                    ));
                }
                let mut seen = Vec::with_capacity(ids.len());
                for (index, id) in ids.iter().enumerate() {
                    let Ok(id) = id.parse::<crate::CustomerId>() else {
                        return Err(invalid(
                            &format!("customer_ids[{index}]"),
                            "invalid",
                            "not a customer id",
                        ));
                    };
                    let id = id.to_string();
                    if !seen.contains(&id) {
                        self.customer_for(actor, &id, Action::SurveyManage).await?;
                        seen.push(id);
                    }
                }
                seen
            }
            (None, Some(segment)) => {
                let members = self
                    .segment_members(actor, segment, MAX_NPS_CUSTOMERS + 1)
                    .await?
                    .ok_or(AppError::NotFound)?;
                if members.len() > MAX_NPS_CUSTOMERS {
                    return Err(invalid(
                        "segment",
                        "too_many",
                        &format!("the segment holds more than {MAX_NPS_CUSTOMERS} customers"),
                    ));
                }
                if members.is_empty() {
                    return Err(invalid(
                        "segment",
                        "empty",
                        "no customer of the segment is in your scope",
                    ));
                }
                members
            }
            _ => {
                return Err(invalid(
                    "customer_ids",
                    "required",
                    "give either customer_ids or segment",
                ))
            }
        };
        let campaign_id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        let mut rows = Vec::with_capacity(customers.len());
        let mut links = Vec::with_capacity(customers.len());
        for customer in &customers {
            let (row, link) = new_survey(
                FeedbackKind::Nps,
                customer,
                None,
                Some(&campaign_id),
                Some(actor),
                now,
                valid_days,
            );
            rows.push(row);
            links.push(link);
        }
        let entry = event(Some(actor), "survey.create", Outcome::Ok)
            .customers(customers.clone())
            .detail(serde_json::json!({
                "kind": "nps", "campaign_id": campaign_id, "surveys": rows.len(), "segment": input.segment,
            }));
        self.store().insert_surveys(&rows, &[entry]).await?;
        Ok(NpsSurveyBatch {
            campaign_id,
            surveys: links,
        })
    }

    /// Sends a survey's link to its customer by e-mail or SMS, from a template with `{{survey.link}}`: anyone
    /// who sees the customer (404 otherwise) for a ticket's CSAT survey, admins and managers for a campaign's NPS
    /// survey (403 for the others). The message carries a link of its own (see the module docs); an
    /// answered or expired survey is not sent (422 `survey_answered` / `survey_expired`). Consent, recipient and
    /// channel are checked as for any message.
    pub async fn send_survey(
        &self,
        actor: &Actor,
        survey_id: &str,
        input: &SurveySendInput,
    ) -> AppResult<SurveySent> {
        self.send_survey_of(actor, None, survey_id, input).await
    }

    /// [`Veil::send_survey`] for a survey of `customer_id` only: another customer's survey is 404, as one that does
    /// not exist (the customer page's send forms).
    pub async fn send_customer_survey(
        &self,
        actor: &Actor,
        customer_id: crate::CustomerId,
        survey_id: &str,
        input: &SurveySendInput,
    ) -> AppResult<SurveySent> {
        let customer = customer_id.to_string();
        self.send_survey_of(actor, Some(&customer), survey_id, input)
            .await
    }

    async fn send_survey_of(
        &self,
        actor: &Actor,
        customer: Option<&str>,
        survey_id: &str,
        input: &SurveySendInput,
    ) -> AppResult<SurveySent> {
        self.permit_recorded(actor, Action::MessageSend, None)
            .await?;
        let survey = self
            .store()
            .survey(survey_id.trim())
            .await?
            .filter(|survey| customer.is_none_or(|customer| survey.customer_id == customer))
            .ok_or(AppError::NotFound)?;
        let masked = self
            .store()
            .masked_customer(&survey.customer_id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(
            actor,
            Action::MessageSend,
            Some((&masked.id, &masked.profile)),
        )
        .await?;
        // An NPS campaign's surveys are sent (and re-sent) by those who run campaigns, as the campaign send is.
        if survey.campaign_id.is_some() {
            self.authorize(
                actor,
                Action::SurveyManage,
                Some((&masked.id, &masked.profile)),
            )
            .await?;
        }
        if let Some(error) = survey_closed_error(&survey, now_ms()) {
            return Err(error);
        }
        let (template, view) = self
            .template_for_send(&input.template, input.channel, true)
            .await?;
        let message = self
            .send_from_template(actor, &masked, &template, &view, None, Some(&survey))
            .await?;
        Ok(SurveySent {
            kind: FeedbackKind::parse(&survey.kind).unwrap_or(FeedbackKind::Csat),
            expires_at: format_time(survey.expires_at),
            sends: survey.sent_count + 1,
            survey_id: survey.id,
            customer_id: survey.customer_id,
            message,
        })
    }

    /// The newest surveys (at most 50) of a customer the caller sees (404 otherwise), with where each stands and
    /// whether the caller may send its link. Audited as `survey.read`.
    pub async fn customer_surveys(
        &self,
        actor: &Actor,
        customer_id: crate::CustomerId,
    ) -> AppResult<Vec<CustomerSurveyView>> {
        let id = customer_id.to_string();
        self.customer_for(actor, &id, Action::InteractionRead)
            .await?;
        let rows = self.store().customer_surveys(&id, 50).await?;
        let now = now_ms();
        // `permit`: the role and, for an API token, its scopes.
        let may_message = crate::authz::permit(actor, Action::MessageSend).is_ok();
        let may_campaign = crate::authz::permit(actor, Action::SurveyManage).is_ok();
        self.record(&[event(Some(actor), "survey.read", Outcome::Ok)
            .customers([id.clone()])
            .detail(serde_json::json!({"returned": rows.len()}))])
            .await?;
        Ok(rows
            .into_iter()
            .map(|survey| {
                let state = survey_state(&survey, now);
                CustomerSurveyView {
                    may_send: state == "open"
                        && may_message
                        && (survey.campaign_id.is_none() || may_campaign),
                    kind: FeedbackKind::parse(&survey.kind).unwrap_or(FeedbackKind::Csat),
                    state: state.to_owned(),
                    sends: survey.sent_count,
                    last_sent_at: survey.last_sent_at.map(format_time),
                    created_at: format_time(survey.created_at),
                    expires_at: format_time(survey.expires_at),
                    ticket_id: survey.ticket_id,
                    campaign_id: survey.campaign_id,
                    survey_id: survey.id,
                }
            })
            .collect())
    }

    /// The surveys of a campaign whose customers the caller (admins, managers) sees, and how many others it
    /// holds. 404 for an unknown campaign or one with none of the caller's customers.
    async fn campaign_surveys_in_scope(
        &self,
        actor: &Actor,
        campaign_id: &str,
    ) -> AppResult<(Vec<(SurveyRow, MaskedCustomerRow)>, u64)> {
        let scope = self.authorize(actor, Action::SurveyManage, None).await?;
        let surveys = self.store().campaign_surveys(campaign_id.trim()).await?;
        let mut visible = Vec::with_capacity(surveys.len());
        let mut hidden = 0u64;
        for survey in surveys {
            let Some(masked) = self.store().masked_customer(&survey.customer_id).await? else {
                hidden += 1;
                continue;
            };
            let linked = match &scope.linked_user {
                Some(user) => self.store().is_linked(&masked.id, user).await?,
                None => true,
            };
            if linked && crate::authz::in_scope(&scope, &masked.profile) {
                visible.push((survey, masked));
            } else {
                hidden += 1;
            }
        }
        if visible.is_empty() {
            return Err(AppError::NotFound);
        }
        Ok((visible, hidden))
    }

    /// Where each survey of an NPS campaign stands (admins and managers, customers in their scope): who has
    /// answered, who may still be reminded. Audited as `survey.read`.
    pub async fn campaign_progress(
        &self,
        actor: &Actor,
        campaign_id: &str,
    ) -> AppResult<CampaignView> {
        let (surveys, out_of_scope) = self.campaign_surveys_in_scope(actor, campaign_id).await?;
        let now = now_ms();
        let mut counts: BTreeMap<String, u64> = ["open", "answered", "expired"]
            .into_iter()
            .map(|state| (state.to_owned(), 0))
            .collect();
        let mut states = Vec::with_capacity(surveys.len());
        for (survey, _) in &surveys {
            let state = survey_state(survey, now);
            *counts.entry(state.to_owned()).or_default() += 1;
            states.push(CampaignSurveyState {
                survey_id: survey.id.clone(),
                customer_id: survey.customer_id.clone(),
                state: state.to_owned(),
                sends: survey.sent_count,
                last_sent_at: survey.last_sent_at.map(format_time),
                expires_at: format_time(survey.expires_at),
            });
        }
        self.record(&[event(Some(actor), "survey.read", Outcome::Ok)
            .customers(states.iter().map(|state| state.customer_id.clone()))
            .detail(
                serde_json::json!({"campaign_id": campaign_id.trim(), "surveys": states.len()}),
            )])
        .await?;
        Ok(CampaignView {
            campaign_id: campaign_id.trim().to_owned(),
            counts,
            surveys: states,
            out_of_scope,
        })
    }

    /// Sends the link of every survey of an NPS campaign that is still open — to the customers who have not
    /// answered — from a template with `{{survey.link}}` (admins and managers, customers in their scope). Run
    /// again, it reminds those who still have not answered. Template, channel and server configuration are
    /// checked once (422 for the whole request); consent and recipient per customer, reported as outcomes.
    /// Audited as one `survey.send` entry besides each message's `message.send`.
    pub async fn send_campaign(
        &self,
        actor: &Actor,
        campaign_id: &str,
        input: &CampaignSendInput,
    ) -> AppResult<CampaignSendReport> {
        let remind_after_hours = input
            .remind_after_hours
            .unwrap_or(DEFAULT_REMIND_AFTER_HOURS);
        if remind_after_hours > MAX_REMIND_AFTER_HOURS {
            return Err(invalid(
                "remind_after_hours",
                "out_of_range",
                &format!("must be 0 to {MAX_REMIND_AFTER_HOURS}"),
            ));
        }
        let (surveys, out_of_scope) = self.campaign_surveys_in_scope(actor, campaign_id).await?;
        let (template, view) = self
            .template_for_send(&input.template, input.channel, true)
            .await?;
        self.messenger_for(view.channel, true)?;
        let now = now_ms();
        let reminded_before = now - i64::from(remind_after_hours) * 3_600_000;
        if surveys
            .iter()
            .all(|(survey, _)| survey_closed_error(survey, now).is_some())
        {
            return Err(invalid(
                "campaign",
                "campaign_closed",
                "every survey of this campaign (of your customers) has been answered or has expired: nothing \
                 was sent",
            ));
        }
        let (template, view) = (&template, &view);
        let outcomes: Vec<CampaignSendOutcome> = futures_util::stream::iter(surveys)
            .map(move |(survey, masked)| async move {
                let mut outcome = CampaignSendOutcome {
                    survey_id: survey.id.clone(),
                    customer_id: survey.customer_id.clone(),
                    outcome: String::new(),
                    message_id: None,
                    error: None,
                    sends: survey.sent_count,
                };
                if survey.answered_at.is_some() {
                    outcome.outcome = "answered".to_owned();
                    return outcome;
                }
                if survey.expires_at <= now {
                    outcome.outcome = "expired".to_owned();
                    return outcome;
                }
                if survey.last_sent_at.is_some_and(|at| at > reminded_before) {
                    outcome.outcome = "recently_sent".to_owned();
                    return outcome;
                }
                match self
                    .send_from_template(actor, &masked, template, view, None, Some(&survey))
                    .await
                {
                    Ok(message) => {
                        outcome.sends += 1;
                        outcome.outcome = message.status;
                        outcome.message_id = Some(message.id);
                        outcome.error = message.error;
                    }
                    Err(AppError::Validation(errors)) => {
                        let code = errors.first().map(|error| error.code.as_str());
                        outcome.outcome = match code {
                            Some("survey_answered") => "answered",
                            Some("survey_expired") => "expired",
                            Some(code) => code,
                            None => "error",
                        }
                        .to_owned();
                    }
                    Err(AppError::NotFound) => outcome.outcome = "not_found".to_owned(),
                    Err(error) => {
                        tracing::warn!(survey = %survey.id, error = %error, "survey send failed");
                        outcome.outcome = "error".to_owned();
                    }
                }
                outcome
            })
            .buffered(CAMPAIGN_SEND_CONCURRENCY)
            .collect()
            .await;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for outcome in &outcomes {
            *counts.entry(outcome.outcome.clone()).or_default() += 1;
        }
        self.record(&[event(Some(actor), "survey.send", Outcome::Ok)
            .customers(
                outcomes
                    .iter()
                    .filter(|outcome| outcome.message_id.is_some())
                    .map(|outcome| outcome.customer_id.clone()),
            )
            .detail(serde_json::json!({
                "campaign_id": campaign_id.trim(), "template": view.name,
                "channel": view.channel.as_str(), "counts": counts, "out_of_scope": out_of_scope,
            }))])
        .await?;
        Ok(CampaignSendReport {
            campaign_id: campaign_id.trim().to_owned(),
            template: view.name.clone(),
            channel: view.channel,
            counts,
            outcomes,
            out_of_scope,
        })
    }

    /// The survey a public link names, and the message that carried the link when the server sent it.
    async fn survey_by_token(&self, token: &str) -> AppResult<(SurveyRow, Option<String>)> {
        if !plausible_token(token) {
            return Err(AppError::NotFound);
        }
        self.store()
            .survey_by_token_hash(&token_hash(token))
            .await?
            .ok_or(AppError::NotFound)
    }

    /// The survey behind a public link (404 for an unknown token), without any personal data.
    pub async fn public_survey(&self, token: &str) -> AppResult<PublicSurvey> {
        let (survey, _) = self.survey_by_token(token).await?;
        let kind = FeedbackKind::parse(&survey.kind).unwrap_or(FeedbackKind::Csat);
        let state = if survey.answered_at.is_some() {
            PublicSurveyState::Answered
        } else if survey.expires_at <= now_ms() {
            PublicSurveyState::Expired
        } else {
            PublicSurveyState::Open
        };
        Ok(PublicSurvey { kind, state })
    }

    /// A customer answers a survey through its public link: once (a second answer, or one after expiry, is a
    /// conflict; an unknown token is 404). Audited as `survey.answer` with no actor.
    pub async fn answer_survey(&self, token: &str, answer: &SurveyAnswer) -> AppResult<()> {
        let (survey, via_message) = self.survey_by_token(token).await?;
        let kind = FeedbackKind::parse(&survey.kind).unwrap_or(FeedbackKind::Csat);
        check_score(kind, answer.score)?;
        let comment = answer.comment.clone().unwrap_or_default();
        check_comment(&comment)?;
        let now = now_ms();
        if survey.answered_at.is_some() || survey.expires_at <= now {
            return Err(AppError::Conflict(
                "this survey has already been answered or has expired".to_owned(),
            ));
        }
        let (channel, agent_id) = match &survey.ticket_id {
            Some(ticket_id) => match self.store().ticket(ticket_id).await? {
                Some(ticket) => (Some(ticket.channel), ticket.assignee_id),
                None => (None, None),
            },
            None => (None, None),
        };
        let id = uuid::Uuid::now_v7().to_string();
        let masked = mask_text(comment.trim());
        let spans_ct = self
            .seal_originals(&survey.customer_id, &masked, "feedback", &id, "comment")
            .await?;
        let row = FeedbackRow {
            id,
            customer_id: survey.customer_id.clone(),
            kind: survey.kind.clone(),
            score: answer.score,
            comment_span_index: masked.span_index_json(),
            comment_masked: masked.body.clone(),
            comment_spans_ct: spans_ct,
            source: "survey".to_owned(),
            survey_id: Some(survey.id.clone()),
            ticket_id: survey.ticket_id.clone(),
            channel,
            agent_id,
            product_id: None,
            recorded_by: None,
            created_at: now,
        };
        let entry = event(None, "survey.answer", Outcome::Ok)
            .customers([survey.customer_id.clone()])
            .detail(serde_json::json!({
                "survey_id": survey.id, "kind": survey.kind, "score": answer.score,
                "ticket_id": survey.ticket_id, "feedback_id": row.id, "pii_spans": masked.spans.len(),
                "via_message": via_message,
            }));
        if self
            .store()
            .answer_survey(&survey.id, &row, &[entry])
            .await?
        {
            Ok(())
        } else {
            Err(AppError::Conflict(
                "this survey has already been answered or has expired".to_owned(),
            ))
        }
    }

    /// The feedback analysis over the customers the caller may list: admins all, managers their team tree,
    /// salespeople their own customers; other roles are refused.
    pub async fn feedback_summary(
        &self,
        actor: &Actor,
        query: &SummaryQuery,
    ) -> AppResult<FeedbackSummary> {
        let scope = self.authorize(actor, Action::FeedbackRead, None).await?;
        let mut errors = Vec::new();
        let now = now_ms();
        let to = match query.to.as_deref().filter(|text| !text.is_empty()) {
            Some(text) => parse_bound("to", text).map_err(|error| errors.push(error)),
            // The end of today in China, so that a form sent back with these dates still counts today.
            None => Ok(next_china_midnight(now)),
        };
        let from = match query.from.as_deref().filter(|text| !text.is_empty()) {
            Some(text) => parse_bound("from", text).map_err(|error| errors.push(error)),
            None => Ok(to.as_ref().copied().unwrap_or(now) - 365 * DAY_MS),
        };
        let by = match query.by.as_deref().filter(|text| !text.is_empty()) {
            None => GroupBy::Month,
            Some(text) => GroupBy::parse(text).unwrap_or_else(|| {
                errors.push(invalid(
                    "by",
                    "invalid",
                    "must be month, agent, channel or product",
                ));
                GroupBy::Month
            }),
        };
        let top = query
            .top
            .map(|top| top as usize)
            .unwrap_or(DEFAULT_TOP_TERMS);
        if !(1..=MAX_TOP_TERMS).contains(&top) {
            errors.push(invalid("top", "out_of_range", "must be 1 to 100"));
        }
        let mut fields = Vec::new();
        for error in errors {
            if let AppError::Validation(mut list) = error {
                fields.append(&mut list);
            }
        }
        let (Ok(from), Ok(to)) = (from, to) else {
            return Err(AppError::Validation(fields));
        };
        if fields.is_empty() && (from >= to || to - from > MAX_WINDOW_DAYS * DAY_MS) {
            fields.push(FieldError::new(
                "from",
                "invalid_window",
                format!("from must be before to, at most {MAX_WINDOW_DAYS} days apart"),
            ));
        }
        if !fields.is_empty() {
            return Err(AppError::Validation(fields));
        }
        let rows = self.store().feedback_stats(Some(&scope), from, to).await?;
        let complaints = self
            .store()
            .complaint_texts(Some(&scope), from, to, MAX_COMPLAINT_TICKETS)
            .await?;
        let summary = self
            .summarise(&rows, &complaints, from, to, by, top)
            .await?;
        self.record(
            &[
                event(Some(actor), "feedback.summary", Outcome::Ok).detail(serde_json::json!({
                    "from": summary.from, "to": summary.to, "by": by, "feedback": rows.len(),
                    "complaint_tickets": complaints.len(),
                })),
            ],
        )
        .await?;
        Ok(summary)
    }

    async fn summarise(
        &self,
        rows: &[FeedbackStatRow],
        complaints: &[String],
        from: i64,
        to: i64,
        by: GroupBy,
        top: usize,
    ) -> AppResult<FeedbackSummary> {
        let mut overall = Tally::default();
        let mut by_month: BTreeMap<String, Tally> = months_between(from, to)
            .into_iter()
            .map(|month| (month, Tally::default()))
            .collect();
        let mut groups: BTreeMap<Option<String>, Tally> = BTreeMap::new();
        for row in rows {
            let Some(kind) = FeedbackKind::parse(&row.kind) else {
                continue;
            };
            overall.add(kind, row.score);
            let month = month_of(row.created_at);
            by_month
                .entry(month.clone())
                .or_default()
                .add(kind, row.score);
            let key = match by {
                GroupBy::Month => Some(month),
                GroupBy::Agent => row.agent_id.clone(),
                GroupBy::Channel => row.channel.clone(),
                GroupBy::Product => row.product_id.clone(),
            };
            groups.entry(key).or_default().add(kind, row.score);
        }
        let mut labels: HashMap<String, String> = HashMap::new();
        for key in groups.keys().flatten() {
            let label = match by {
                GroupBy::Agent => self
                    .store()
                    .user_by_id(key)
                    .await?
                    .map(|user| user.username),
                GroupBy::Product => self.store().product(key).await?.map(|product| product.name),
                GroupBy::Month | GroupBy::Channel => None,
            };
            if let Some(label) = label {
                labels.insert(key.clone(), label);
            }
        }
        let texts = rows
            .iter()
            .map(|row| row.low_comment.as_str())
            .filter(|text| !text.is_empty())
            .chain(complaints.iter().map(String::as_str));
        let complaint_texts = rows
            .iter()
            .filter(|row| !row.low_comment.is_empty())
            .count()
            + complaints.len();
        Ok(FeedbackSummary {
            from: format_time(from),
            to: format_time(to),
            from_date: china_date(from),
            to_date: china_date(to),
            by,
            overall: overall.stats(),
            groups: groups
                .into_iter()
                .map(|(key, tally)| GroupStats {
                    label: key.as_ref().and_then(|key| labels.get(key).cloned()),
                    key,
                    stats: tally.stats(),
                })
                .collect(),
            trend: by_month
                .into_iter()
                .map(|(month, tally)| MonthStats {
                    month,
                    stats: tally.stats(),
                })
                .collect(),
            complaint_terms: complaint_terms(texts, top),
            complaint_texts: complaint_texts as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_is_promoters_minus_detractors() {
        let mut tally = Tally::default();
        for score in [10, 9, 9, 8, 7, 6, 0, 3, 10, 10] {
            tally.add(FeedbackKind::Nps, score);
        }
        for score in [5, 4, 1] {
            tally.add(FeedbackKind::Csat, score);
        }
        let stats = tally.stats();
        assert_eq!(stats.nps.count, 10);
        assert_eq!(
            (
                stats.nps.promoters,
                stats.nps.passives,
                stats.nps.detractors
            ),
            (5, 2, 3)
        );
        assert_eq!(stats.nps.score, Some(20.0));
        assert_eq!(stats.csat.count, 3);
        assert_eq!(stats.csat.average, Some(3.33));
        assert_eq!(stats.csat.distribution, vec![1, 0, 0, 1, 1]);
        assert_eq!(Tally::default().stats().nps.score, None);
    }

    #[test]
    fn masked_fragments_are_removed_before_segmentation() {
        for (text, expected) in [
            ("电话138****5678打不通", "电话           打不通"),
            ("张*说服务态度差", "  说服务态度差"),
            ("邮件 z***@example.com 没回", "邮件                  没回"),
            ("等待时间太长", "等待时间太长"),
        ] {
            assert_eq!(strip_masked(text), expected, "{text}");
        }
    }

    #[test]
    fn complaint_terms_are_words_not_characters() {
        let texts = [
            "服务态度很差，等待时间太长了！电话138****5678一直没人接",
            "等待时间长，服务态度也不好",
            "退款3次都没到账 服务态度差",
        ];
        let terms = complaint_terms(texts.iter().copied(), 10);
        let find = |term: &str| {
            terms
                .iter()
                .find(|found| found.term == term)
                .map(|found| found.count)
        };
        assert_eq!(find("服务态度"), Some(3), "{terms:?}");
        assert_eq!(find("等待时间"), Some(2), "{terms:?}");
        assert_eq!(find("退款"), Some(1), "{terms:?}");
        for term in &terms {
            assert!(term.term.chars().count() >= 2, "{terms:?}");
            assert!(!term.term.contains('*') && !term.term.chars().any(char::is_numeric));
        }
        assert_eq!(terms[0].term, "服务态度");
    }

    #[test]
    fn months_cover_the_window() {
        // 2026-01-15T00:00Z to 2026-04-01T00:00Z (China: 08:00 on 1 April, so April counts).
        assert_eq!(
            months_between(1_768_435_200_000, 1_775_001_600_000),
            vec!["2026-01", "2026-02", "2026-03", "2026-04"]
        );
    }

    #[test]
    fn dates_are_china_midnights() {
        // 2026-03-01 00:00 in China is 2026-02-28T16:00Z.
        let midnight = 1_772_294_400_000;
        assert_eq!(parse_bound("from", "2026-03-01").unwrap(), midnight);
        assert_eq!(
            parse_bound("from", "2026-02-28T16:00:00Z").unwrap(),
            midnight
        );
        assert!(parse_bound("from", "March").is_err());
        assert_eq!(next_china_midnight(midnight - 1), midnight);
        assert_eq!(next_china_midnight(midnight), midnight + DAY_MS);
        assert_eq!(china_date(midnight), "2026-03-01");
        assert_eq!(month_of(midnight - 1), "2026-02");
    }

    #[test]
    fn tokens_are_unguessable_and_only_their_hash_is_kept() {
        let (token, hash) = new_token();
        assert!(plausible_token(&token), "{token}");
        assert_eq!(hash, token_hash(&token));
        assert_ne!(new_token().0, token);
        assert!(!plausible_token("short"));
        assert!(!plausible_token(&"a".repeat(42)));
    }
}
