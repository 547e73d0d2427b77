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
use veil_store::NoteRow;
use zeroize::Zeroizing;

use crate::customers::reveal::RevealAuthority;
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
    spans_aad("customer_note", note_id, "spans", dek_version)
}

/// The associated data binding sealed spans to their table, record and field.
fn spans_aad(table: &str, record_id: &str, field: &str, dek_version: i64) -> Vec<u8> {
    Aad {
        table,
        record_id,
        field,
        key_version: dek_version as u32,
    }
    .encode()
}

impl MaskedText {
    /// The span index as stored (`[{kind, start, end}, …]`).
    pub fn span_index_json(&self) -> String {
        serde_json::to_string(&self.spans).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Whether personal data was found.
    pub fn found_pii(&self) -> bool {
        !self.originals.is_empty()
    }
}

/// Parses a stored span index (an unreadable one shows no spans rather than failing the read).
pub fn parse_span_index(text: &str) -> Vec<MaskedSpan> {
    serde_json::from_str(text).unwrap_or_default()
}

impl Veil {
    /// Seals the original spans of `masked` under the customer's data key, bound to `table`, `record_id` and
    /// `field`; `None` when the text held no personal data. Every free-text field about a customer (notes,
    /// interaction notes, ticket subjects, descriptions and comments) is stored this way, so erasing the
    /// customer erases the originals too.
    pub(crate) async fn seal_originals(
        &self,
        customer_id: &str,
        masked: &MaskedText,
        table: &str,
        record_id: &str,
        field: &str,
    ) -> AppResult<Option<Vec<u8>>> {
        if masked.originals.is_empty() {
            return Ok(None);
        }
        let key_row = self
            .store()
            .customer_key(customer_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let dek = self.unwrap_customer_key(&key_row).await?;
        let plaintext = Zeroizing::new(
            serde_json::to_vec(&masked.originals)
                .map_err(|error| AppError::Internal(error.to_string()))?,
        );
        Ok(Some(FieldCipher::new(&dek).seal(
            &spans_aad(table, record_id, field, key_row.dek_version),
            &plaintext,
        )))
    }
}

/// Opens the sealed spans of any masked free-text field (see [`Veil::seal_originals`]); reveal path only (no
/// production caller yet: revealing interaction and ticket spans is not built).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn open_field_spans(
    _authority: &RevealAuthority,
    dek: &veil_mask::SecretKey,
    sealed: &[u8],
    (table, record_id, field): (&str, &str, &str),
    dek_version: i64,
) -> AppResult<Vec<(String, Zeroizing<String>)>> {
    let plaintext =
        FieldCipher::new(dek).open(&spans_aad(table, record_id, field, dek_version), sealed)?;
    let spans: Vec<SealedSpan> = serde_json::from_slice(&plaintext)
        .map_err(|error| AppError::Internal(format!("sealed spans: {error}")))?;
    Ok(spans
        .into_iter()
        .map(|span| (span.kind, Zeroizing::new(span.value)))
        .collect())
}

pub(crate) fn view(row: NoteRow) -> NoteView {
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
        let spans_ct = self
            .seal_originals(&customer, &masked, "customer_note", &note_id, "spans")
            .await?;
        let row = NoteRow {
            id: note_id,
            customer_id: customer,
            author_id: Some(actor.user_id.to_string()),
            body_masked: masked.body.clone(),
            spans_ct,
            span_index: masked.span_index_json(),
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

/// Opens a note's sealed spans, in the order of its span index. Only the reveal path may call this: the
/// authority proves a grant was checked and the reveal recorded (see [`crate::customers::reveal`]).
pub(crate) fn open_spans(
    _authority: &RevealAuthority,
    dek: &veil_mask::SecretKey,
    note: &NoteRow,
    dek_version: i64,
) -> AppResult<Vec<(String, Zeroizing<String>)>> {
    let Some(sealed) = &note.spans_ct else {
        return Ok(Vec::new());
    };
    let plaintext = FieldCipher::new(dek).open(&note_aad(&note.id, dek_version), sealed)?;
    let spans: Vec<SealedSpan> = serde_json::from_slice(&plaintext)
        .map_err(|error| AppError::Internal(format!("sealed note spans: {error}")))?;
    Ok(spans
        .into_iter()
        .map(|span| (span.kind, Zeroizing::new(span.value)))
        .collect())
}

/// The customer field whose grant reveals a note span of `kind` (a grant names fields, not kinds). Kinds with no
/// customer field (passports, permits, company codes) stay masked in every reveal.
pub fn span_field(kind: &str) -> Option<&'static str> {
    match kind {
        "cn_mobile" | "cn_landline" => Some("phone"),
        "cn_id" => Some("id_number"),
        "email" => Some("email"),
        "bank_card" => Some("bank_card"),
        "person_name" => Some("name"),
        "address" => Some("address"),
        _ => None,
    }
}

/// A note with some of its spans shown in clear (`POST /api/v1/customers/{id}/notes/{note}/reveal`).
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRevealInput {
    /// Customer fields whose spans to show (`phone` shows mobile and landline numbers, `id_number` ID numbers…).
    pub fields: Vec<String>,
    /// The grant to use (default: any live grant of the caller covering the customer and fields).
    #[serde(default)]
    pub grant_id: Option<String>,
}

/// What a note reveal returns.
pub struct RevealedNote {
    /// The note's text with the granted spans in clear and the others masked.
    pub body: Zeroizing<String>,
    /// How many spans were shown in clear.
    pub revealed: usize,
}

impl Veil {
    /// The governed reveal of a note's spans: the same checks and record as a customer reveal (live `view`
    /// grant covering the customer and the fields, recent second factor, no lock-down; the audit entry names the
    /// note and commits with the grant's use before anything is decrypted). Spans whose kind maps to a requested
    /// field come back in clear; every other span stays masked.
    pub async fn reveal_note(
        &self,
        actor: &Actor,
        token: Option<&str>,
        customer_id: CustomerId,
        note_id: &str,
        input: &NoteRevealInput,
    ) -> AppResult<RevealedNote> {
        let customer = customer_id.to_string();
        let mut errors = Vec::new();
        let fields = crate::governance::parse_fields(&input.fields, &mut errors);
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        self.permit_recorded(actor, crate::authz::Action::Reveal, Some(&customer))
            .await?;
        let note = self
            .store()
            .note(&customer, note_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let field_names: Vec<String> = fields
            .iter()
            .map(|field| field.as_str().to_owned())
            .collect();
        self.use_view_grant(
            actor,
            token,
            &customer,
            &field_names,
            input.grant_id.as_deref(),
            Some(serde_json::json!({"note_id": note.id})),
        )
        .await?;
        let spans: Vec<MaskedSpan> = serde_json::from_str(&note.span_index)
            .map_err(|error| AppError::Internal(format!("note span index: {error}")))?;
        if note.spans_ct.is_none() || spans.is_empty() {
            return Ok(RevealedNote {
                body: Zeroizing::new(note.body_masked),
                revealed: 0,
            });
        }
        let key_row = self
            .store()
            .customer_key(&customer)
            .await?
            .ok_or(AppError::NotFound)?;
        let authority = RevealAuthority::granted();
        let dek = self.unwrap_customer_key(&key_row).await?;
        let originals = open_spans(&authority, &dek, &note, key_row.dek_version)?;
        if originals.len() != spans.len() {
            return Err(AppError::Internal(
                "a note's sealed spans do not match its span index".to_owned(),
            ));
        }
        let masked: Vec<char> = note.body_masked.chars().collect();
        let mut body = Zeroizing::new(String::with_capacity(note.body_masked.len()));
        let mut cursor = 0;
        let mut revealed = 0;
        for (span, (kind, value)) in spans.iter().zip(&originals) {
            if span.start < cursor || span.end > masked.len() || span.start > span.end {
                return Err(AppError::Internal(
                    "a note's span index is out of order".to_owned(),
                ));
            }
            body.extend(&masked[cursor..span.start]);
            let shown = span_field(kind)
                .is_some_and(|field| field_names.iter().any(|wanted| wanted == field));
            if shown {
                body.push_str(value);
                revealed += 1;
            } else {
                body.extend(&masked[span.start..span.end]);
            }
            cursor = span.end;
        }
        body.extend(&masked[cursor..]);
        Ok(RevealedNote { body, revealed })
    }
}
