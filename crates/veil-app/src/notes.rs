//! Free-text notes on customers, scanned for personal data on write.
//!
//! A salesperson types `客户电话13812345678，身份证110101198402276151`. Veil stores
//! `客户电话138****5678，身份证110101********6151`, seals the original spans under the customer's data key (so
//! erasing the customer erases them) and keeps an index of where each masked span sits. Nobody reading the note
//! sees a number they may not see; an entitled reader can have the spans revealed through the reveal path.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_mask::crypto::Aad;
use veil_mask::FieldCipher;
use veil_pii::PiiKind;
use veil_store::NoteRow;
use zeroize::Zeroizing;

use crate::error::{AppError, AppResult, FieldError};
use crate::ids::CustomerId;
use crate::users::Actor;
use crate::{format_time, now_ms, today, Veil};

/// Longest accepted note, in characters.
pub const MAX_NOTE_CHARS: usize = 10_000;

/// Where a masked span sits in a note's masked body (character offsets, end exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MaskedSpan {
    /// PII kind, e.g. `cn_mobile`.
    pub kind: String,
    /// Start, in characters of the masked body.
    pub start: usize,
    /// End (exclusive), in characters of the masked body.
    pub end: usize,
}

/// A note as readers see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NoteView {
    /// Note id.
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// Author's user id.
    pub author: Option<String>,
    /// The text, with personal data masked in place.
    pub body: String,
    /// The masked spans in `body`.
    pub pii: Vec<MaskedSpan>,
    /// RFC 3339.
    pub created_at: String,
}

/// A new note.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    /// Free text; personal data in it is masked before it is stored.
    pub body: String,
}

impl std::fmt::Debug for NoteInput {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("NoteInput(<redacted>)")
    }
}

/// An original span, sealed inside the note.
#[derive(Serialize, Deserialize)]
struct SealedSpan {
    kind: String,
    start: usize,
    end: usize,
    value: String,
}

/// The result of masking a text: the masked body, where the spans now sit, and the originals.
pub struct MaskedText {
    /// Text with masked displays in place.
    pub body: String,
    /// Spans in `body` coordinates.
    pub spans: Vec<MaskedSpan>,
    originals: Vec<SealedSpan>,
}

impl std::fmt::Debug for MaskedText {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("MaskedText")
            .field("body", &self.body)
            .field("spans", &self.spans)
            .finish_non_exhaustive()
    }
}

/// Scans `text` and replaces each personal-data span by its masked display. Invalid look-alikes (wrong check
/// digit…) are masked too: a near-miss number is still someone's number more often than not.
pub fn mask_text(text: &str) -> MaskedText {
    let spans = veil_pii::scan::scan(text, today());
    let mut body = String::with_capacity(text.len());
    let mut masked_spans = Vec::with_capacity(spans.len());
    let mut originals = Vec::with_capacity(spans.len());
    let mut cursor = 0;
    let mut body_chars = 0;
    for span in &spans {
        let before = &text[cursor..span.byte_start];
        body.push_str(before);
        body_chars += before.chars().count();
        let original = &text[span.byte_start..span.byte_end];
        let display = match &span.normalized {
            Some(normalized) => veil_mask::default_display(span.kind, normalized),
            None => veil_mask::default_display(span.kind, ""),
        };
        let display_chars = display.chars().count();
        body.push_str(&display);
        masked_spans.push(MaskedSpan {
            kind: span.kind.as_str().to_owned(),
            start: body_chars,
            end: body_chars + display_chars,
        });
        originals.push(SealedSpan {
            kind: span.kind.as_str().to_owned(),
            start: span.start,
            end: span.end,
            value: original.to_owned(),
        });
        body_chars += display_chars;
        cursor = span.byte_end;
    }
    body.push_str(&text[cursor..]);
    MaskedText {
        body,
        spans: masked_spans,
        originals,
    }
}

fn note_aad(note_id: &str, dek_version: i64) -> Vec<u8> {
    Aad {
        table: "customer_note",
        record_id: note_id,
        field: "spans",
        key_version: dek_version as u32,
    }
    .encode()
}

fn view(row: NoteRow) -> NoteView {
    NoteView {
        pii: serde_json::from_str(&row.span_index).unwrap_or_default(),
        id: row.id,
        customer_id: row.customer_id,
        author: row.author_id,
        body: row.body_masked,
        created_at: format_time(row.created_at),
    }
}

impl Veil {
    /// Adds a note to a customer the caller can see; personal data in it is masked and its originals sealed.
    pub async fn add_note(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        input: &NoteInput,
    ) -> AppResult<NoteView> {
        self.get_customer(actor, customer_id).await?;
        self.permit_recorded(actor, crate::authz::Action::NoteWrite, None)
            .await?;
        let length = input.body.chars().count();
        if input.body.trim().is_empty() || length > MAX_NOTE_CHARS {
            return Err(AppError::Validation(vec![FieldError::new(
                "body",
                "invalid_length",
                format!("must be 1 to {MAX_NOTE_CHARS} characters"),
            )]));
        }
        let customer = customer_id.to_string();
        let masked = mask_text(&input.body);
        let note_id = uuid::Uuid::now_v7().to_string();
        let spans_ct = if masked.originals.is_empty() {
            None
        } else {
            let key_row = self
                .store()
                .customer_key(&customer)
                .await?
                .ok_or(AppError::NotFound)?;
            let dek = self.unwrap_customer_key(&key_row).await?;
            let plaintext = Zeroizing::new(
                serde_json::to_vec(&masked.originals)
                    .map_err(|error| AppError::Internal(error.to_string()))?,
            );
            Some(FieldCipher::new(&dek).seal(&note_aad(&note_id, key_row.dek_version), &plaintext))
        };
        let row = NoteRow {
            id: note_id,
            customer_id: customer,
            author_id: Some(actor.user_id.to_string()),
            body_masked: masked.body.clone(),
            spans_ct,
            span_index: serde_json::to_string(&masked.spans).unwrap_or_else(|_| "[]".to_owned()),
            created_at: now_ms(),
        };
        use crate::audit::EventExt;
        let entry = crate::audit::event(Some(actor), "note.create", crate::audit::Outcome::Ok)
            .customers([row.customer_id.clone()])
            .detail(serde_json::json!({"note_id": row.id, "pii_spans": masked.spans.len()}));
        self.store().insert_note(&row, &[entry]).await?;
        tracing::info!(customer = %row.customer_id, note = %row.id, pii_spans = masked.spans.len(), "note added");
        Ok(view(row))
    }

    /// A customer's notes (masked), newest first.
    pub async fn list_notes(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        cursor: Option<&str>,
        limit: u32,
    ) -> AppResult<Vec<NoteView>> {
        self.get_customer(actor, customer_id).await?;
        let rows = self
            .store()
            .list_notes(
                &customer_id.to_string(),
                cursor,
                i64::from(limit.clamp(1, 200)),
            )
            .await?;
        use crate::audit::EventExt;
        self.record(&[
            crate::audit::event(Some(actor), "note.read", crate::audit::Outcome::Ok)
                .customers([customer_id.to_string()])
                .detail(serde_json::json!({"notes": rows.len()})),
        ])
        .await?;
        Ok(rows.into_iter().map(view).collect())
    }
}

/// Opens a note's sealed spans. Only the reveal path may call this (see [`crate::customers::reveal`]); the
/// governed reveal of notes arrives with the unmasking issue, until then only tests call it.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn open_spans(
    dek: &veil_mask::SecretKey,
    note: &NoteRow,
    dek_version: i64,
) -> AppResult<Vec<(PiiKind, Zeroizing<String>)>> {
    let Some(sealed) = &note.spans_ct else {
        return Ok(Vec::new());
    };
    let plaintext = FieldCipher::new(dek).open(&note_aad(&note.id, dek_version), sealed)?;
    let spans: Vec<SealedSpan> = serde_json::from_slice(&plaintext)
        .map_err(|error| AppError::Internal(format!("sealed note spans: {error}")))?;
    Ok(spans
        .into_iter()
        .filter_map(|span| {
            span.kind
                .parse::<PiiKind>()
                .ok()
                .map(|kind| (kind, Zeroizing::new(span.value)))
        })
        .collect())
}
