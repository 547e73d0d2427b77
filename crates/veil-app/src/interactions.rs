//! Interactions with a customer (calls, visits, property viewings 看房, test drives, consultations, emails,
//! messages) and the customer timeline, which merges interactions, notes, tickets and ownership transfers newest
//! first.
//!
//! The interaction note is free text and goes through the same masking as customer notes
//! ([`crate::notes::mask_text`], originals sealed under the customer's data key by [`Veil::seal_originals`]).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{InteractionRow, TimeCursor};

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::CustomerId;
use crate::notes::{mask_text, parse_span_index, MaskedSpan, MAX_NOTE_CHARS};
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// Longest accepted outcome, in characters.
pub const MAX_OUTCOME_CHARS: usize = 200;
/// Longest accepted duration, in minutes (one day).
pub const MAX_DURATION_MINUTES: u32 = 24 * 60;

/// What kind of contact an interaction was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    /// A phone call.
    Call,
    /// A visit (to the customer or by the customer).
    Visit,
    /// A property viewing (看房).
    Viewing,
    /// A test drive.
    TestDrive,
    /// A consultation.
    Consultation,
    /// An email.
    Email,
    /// A chat or text message.
    Message,
}

impl InteractionKind {
    /// Every kind.
    pub const ALL: [InteractionKind; 7] = [
        InteractionKind::Call,
        InteractionKind::Visit,
        InteractionKind::Viewing,
        InteractionKind::TestDrive,
        InteractionKind::Consultation,
        InteractionKind::Email,
        InteractionKind::Message,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            InteractionKind::Call => "call",
            InteractionKind::Visit => "visit",
            InteractionKind::Viewing => "viewing",
            InteractionKind::TestDrive => "test_drive",
            InteractionKind::Consultation => "consultation",
            InteractionKind::Email => "email",
            InteractionKind::Message => "message",
        }
    }
}

/// A new interaction.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionInput {
    /// What kind of contact.
    pub kind: InteractionKind,
    /// When it happened (RFC 3339; default now).
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// How long it took, in minutes (0–1440).
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// Short outcome (at most 200 characters); personal data in it is masked and not kept.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Free text; personal data in it is masked before it is stored, its originals sealed.
    #[serde(default)]
    pub note: Option<String>,
}

impl std::fmt::Debug for InteractionInput {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("InteractionInput")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// An interaction as readers see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InteractionView {
    /// Interaction id.
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// `call`, `visit`, `viewing`, `test_drive`, `consultation`, `email` or `message`.
    pub kind: String,
    /// RFC 3339.
    pub occurred_at: String,
    /// Minutes.
    pub duration_minutes: Option<i64>,
    /// The outcome, masked.
    pub outcome: Option<String>,
    /// The note, with personal data masked in place.
    pub note: String,
    /// The masked spans in `note`.
    pub pii: Vec<MaskedSpan>,
    /// Who recorded it (user id).
    pub by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// A page of interactions.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InteractionPage {
    /// Newest first.
    pub items: Vec<InteractionView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One entry of a customer's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelineItem {
    /// `interaction`, `note`, `ticket` or `transfer`.
    pub kind: String,
    /// The entry's id (a transfer's is `transfer-<unix ms>`).
    pub id: String,
    /// When (RFC 3339): an interaction's `occurred_at`, otherwise the creation time.
    pub at: String,
    /// Who (user id).
    pub by: Option<String>,
    /// Interaction kind, ticket subject (masked), or `ownership_transfer`.
    pub title: String,
    /// Masked text: the interaction's or note's text, the ticket's status and priority, the transfer's move.
    pub body: String,
    /// Masked spans in `body`.
    pub pii: Vec<MaskedSpan>,
}

/// A page of a customer's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelinePage {
    /// Newest first.
    pub items: Vec<TimelineItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn view(row: InteractionRow) -> InteractionView {
    InteractionView {
        pii: parse_span_index(&row.note_span_index),
        id: row.id,
        customer_id: row.customer_id,
        kind: row.kind,
        occurred_at: format_time(row.occurred_at),
        duration_minutes: row.duration_minutes,
        outcome: row.outcome,
        note: row.note_masked,
        by: row.author_id,
        created_at: format_time(row.created_at),
    }
}

/// Parses a `<unix ms>_<id>` paging cursor.
pub(crate) fn parse_cursor(text: Option<&str>) -> AppResult<Option<TimeCursor>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let invalid = || {
        AppError::Validation(vec![FieldError::new(
            "cursor",
            "invalid",
            "not a cursor from a previous page",
        )])
    };
    let (at, id) = text.split_once('_').ok_or_else(invalid)?;
    Ok(Some(TimeCursor {
        at: at.parse().map_err(|_| invalid())?,
        id: id.to_owned(),
    }))
}

fn format_cursor(at: i64, id: &str) -> String {
    format!("{at}_{id}")
}

/// Parses an RFC 3339 time into Unix ms.
pub(crate) fn parse_rfc3339(field: &str, text: &str) -> Result<i64, FieldError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .map_err(|_| FieldError::new(field, "invalid_time", "must be an RFC 3339 time"))
}

impl Veil {
    /// The customer `id` if `actor` may perform `action` on it (404 outside their scope, 403 for the role).
    pub(crate) async fn customer_for(
        &self,
        actor: &Actor,
        id: &str,
        action: Action,
    ) -> AppResult<veil_store::MaskedCustomerRow> {
        let row = self
            .store()
            .masked_customer(id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, action, Some((&row.id, &row.profile)))
            .await?;
        Ok(row)
    }

    /// Records an interaction with a customer the caller can see.
    pub async fn add_interaction(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        input: &InteractionInput,
    ) -> AppResult<InteractionView> {
        let customer = customer_id.to_string();
        self.customer_for(actor, &customer, Action::InteractionWrite)
            .await?;
        let now = now_ms();
        let mut errors = Vec::new();
        let occurred_at = match &input.occurred_at {
            None => now,
            Some(text) => parse_rfc3339("occurred_at", text).unwrap_or_else(|error| {
                errors.push(error);
                now
            }),
        };
        if input
            .duration_minutes
            .is_some_and(|minutes| minutes > MAX_DURATION_MINUTES)
        {
            errors.push(FieldError::new(
                "duration_minutes",
                "out_of_range",
                format!("must be 0 to {MAX_DURATION_MINUTES}"),
            ));
        }
        if input
            .outcome
            .as_ref()
            .is_some_and(|outcome| outcome.chars().count() > MAX_OUTCOME_CHARS)
        {
            errors.push(FieldError::new(
                "outcome",
                "invalid_length",
                format!("must be at most {MAX_OUTCOME_CHARS} characters"),
            ));
        }
        let note = input.note.clone().unwrap_or_default();
        if note.chars().count() > MAX_NOTE_CHARS {
            errors.push(FieldError::new(
                "note",
                "invalid_length",
                format!("must be at most {MAX_NOTE_CHARS} characters"),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let masked = mask_text(&note);
        let note_spans_ct = self
            .seal_originals(&customer, &masked, "interaction", &id, "note")
            .await?;
        let outcome = input
            .outcome
            .as_deref()
            .map(str::trim)
            .filter(|outcome| !outcome.is_empty())
            .map(|outcome| mask_text(outcome).body);
        let row = InteractionRow {
            id,
            customer_id: customer,
            kind: input.kind.as_str().to_owned(),
            occurred_at,
            duration_minutes: input.duration_minutes.map(i64::from),
            outcome,
            note_span_index: masked.span_index_json(),
            note_masked: masked.body,
            note_spans_ct,
            author_id: Some(actor.user_id.to_string()),
            created_at: now,
        };
        let entry =
            crate::audit::event(Some(actor), "interaction.create", crate::audit::Outcome::Ok)
                .customers([row.customer_id.clone()])
                .detail(
                    serde_json::json!({"interaction_id": row.id, "kind": row.kind,
                                   "pii_spans": masked.spans.len()}),
                );
        self.store().insert_interaction(&row, &[entry]).await?;
        tracing::info!(customer = %row.customer_id, interaction = %row.id, "interaction recorded");
        Ok(view(row))
    }

    /// A customer's interactions (masked), newest first.
    pub async fn list_interactions(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        cursor: Option<&str>,
        limit: u32,
    ) -> AppResult<InteractionPage> {
        let customer = customer_id.to_string();
        self.customer_for(actor, &customer, Action::InteractionRead)
            .await?;
        let cursor = parse_cursor(cursor)?;
        let limit = limit.clamp(1, 200) as usize;
        let mut rows = self
            .store()
            .list_interactions(&customer, cursor.as_ref(), limit as i64 + 1)
            .await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = more
            .then(|| {
                rows.last()
                    .map(|row| format_cursor(row.occurred_at, &row.id))
            })
            .flatten();
        self.record(&[crate::audit::event(
            Some(actor),
            "interaction.read",
            crate::audit::Outcome::Ok,
        )
        .customers([customer])
        .detail(serde_json::json!({"interactions": rows.len()}))])
            .await?;
        Ok(InteractionPage {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        })
    }

    /// A customer's timeline: interactions, notes, tickets and ownership transfers, newest first, paged with a
    /// `(time, id)` cursor. Everything in it is the stored masked text.
    pub async fn customer_timeline(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        cursor: Option<&str>,
        limit: u32,
    ) -> AppResult<TimelinePage> {
        let customer = customer_id.to_string();
        self.customer_for(actor, &customer, Action::InteractionRead)
            .await?;
        let cursor = parse_cursor(cursor)?;
        let limit = limit.clamp(1, 200) as usize;
        let fetch = limit as i64 + 1;
        // (time, id, item): each source returns its newest `limit + 1` before the cursor; the merged top `limit`
        // is then exact, and anything beyond it means another page.
        let mut merged: Vec<(i64, String, TimelineItem)> = Vec::new();
        for row in self
            .store()
            .list_interactions(&customer, cursor.as_ref(), fetch)
            .await?
        {
            merged.push((
                row.occurred_at,
                row.id.clone(),
                TimelineItem {
                    kind: "interaction".to_owned(),
                    id: row.id.clone(),
                    at: format_time(row.occurred_at),
                    by: row.author_id.clone(),
                    title: row.kind.clone(),
                    pii: parse_span_index(&row.note_span_index),
                    body: row.note_masked,
                },
            ));
        }
        for row in self
            .store()
            .list_notes_by_time(&customer, cursor.as_ref(), fetch)
            .await?
        {
            let note = crate::notes::view(row.clone());
            merged.push((
                row.created_at,
                row.id.clone(),
                TimelineItem {
                    kind: "note".to_owned(),
                    id: note.id,
                    at: note.created_at,
                    by: note.author,
                    title: "note".to_owned(),
                    body: note.body,
                    pii: note.pii,
                },
            ));
        }
        for row in self
            .store()
            .customer_tickets_by_time(&customer, cursor.as_ref(), fetch)
            .await?
        {
            merged.push((
                row.created_at,
                row.id.clone(),
                TimelineItem {
                    kind: "ticket".to_owned(),
                    id: row.id.clone(),
                    at: format_time(row.created_at),
                    by: row.created_by.clone(),
                    title: row.subject_masked.clone(),
                    body: format!(
                        "{} · {} · {} · {}",
                        row.category, row.priority, row.status, row.channel
                    ),
                    pii: Vec::new(),
                },
            ));
        }
        for transfer in self.store().customer_transfers(&customer).await? {
            let id = format!("transfer-{}", transfer.created_at);
            let before_cursor = cursor.as_ref().is_none_or(|cursor| {
                (transfer.created_at, id.as_str()) < (cursor.at, cursor.id.as_str())
            });
            if !before_cursor {
                continue;
            }
            // Reasons are free text written before masking applied to them: mask on the way out.
            let reason = mask_text(&transfer.reason);
            let body = format!(
                "owner {} → {}, team {} → {}: {}",
                transfer.from_owner.as_deref().unwrap_or("-"),
                transfer.to_owner.as_deref().unwrap_or("-"),
                transfer.from_team.as_deref().unwrap_or("-"),
                transfer.to_team.as_deref().unwrap_or("-"),
                reason.body
            );
            merged.push((
                transfer.created_at,
                id.clone(),
                TimelineItem {
                    kind: "transfer".to_owned(),
                    id,
                    at: format_time(transfer.created_at),
                    by: transfer.actor_id.clone(),
                    title: "ownership_transfer".to_owned(),
                    body,
                    pii: Vec::new(),
                },
            ));
        }
        merged.sort_by(|left, right| (right.0, &right.1).cmp(&(left.0, &left.1)));
        let more = merged.len() > limit;
        merged.truncate(limit);
        let next_cursor = more
            .then(|| merged.last().map(|(at, id, _)| format_cursor(*at, id)))
            .flatten();
        self.record(&[crate::audit::event(
            Some(actor),
            "customer.timeline",
            crate::audit::Outcome::Ok,
        )
        .customers([customer])
        .detail(serde_json::json!({"entries": merged.len()}))])
            .await?;
        Ok(TimelinePage {
            items: merged.into_iter().map(|(_, _, item)| item).collect(),
            next_cursor,
        })
    }
}
