//! Unmasked exports (`mode: "export"`): the approved fields of the approved customers written as CSV, encrypted
//! with `age` to the recipient named in the request, with a manifest signed by the server's Ed25519 key (request,
//! grant, time, rows, non-empty values per field, SHA-256 of the encrypted file). `veil export verify` checks
//! the signature, the checksum and — with the recipient's identity — the contents against the manifest (the
//! mission's 验证操作结果).

use std::collections::BTreeMap;
use std::io::Write;

use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use veil_store::SensitiveField;

use super::{grant_live, list};
use crate::audit::{event, hex, unhex, EventExt, Outcome};
use crate::error::{AppError, AppResult};
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// What the manifest states about an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExportManifest {
    /// Format of the manifest.
    pub version: u32,
    /// The unmask request.
    pub request_id: String,
    /// The grant used.
    pub grant_id: String,
    /// Who exported (user id).
    pub exported_by: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// `csv`.
    pub format: String,
    /// The columns after `customer_id`.
    pub fields: Vec<String>,
    /// Data rows.
    pub rows: u64,
    /// Non-empty values per field.
    pub counts: BTreeMap<String, u64>,
    /// The age recipient the file is encrypted to.
    pub recipient: String,
    /// SHA-256 (hex) of the encrypted file.
    pub file_sha256: String,
    /// The server's Ed25519 public key (hex).
    pub public_key: String,
}

/// A manifest with its signature over the manifest's JSON encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedManifest {
    /// The statement.
    pub manifest: ExportManifest,
    /// Ed25519 signature (hex) over `serde_json::to_vec(&manifest)`.
    pub signature: String,
}

/// An export as delivered: the encrypted file and its signed manifest.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportDelivery {
    /// The age-encrypted CSV, base64.
    pub file_base64: String,
    /// The signed manifest.
    pub manifest: SignedManifest,
}

/// What `verify_export_file` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportCheck {
    /// The signature verifies under the given key.
    pub signature_ok: bool,
    /// The file's SHA-256 matches the manifest.
    pub checksum_ok: bool,
    /// Rows and per-field counts match (when an identity was given to decrypt).
    pub contents_ok: Option<bool>,
    /// What is wrong, in words.
    pub problems: Vec<String>,
}

fn manifest_signature_bytes(manifest: &ExportManifest) -> Vec<u8> {
    serde_json::to_vec(manifest).unwrap_or_default()
}

/// Parses one CSV line of our own writing (quoted cells may hold commas and doubled quotes).
fn parse_csv_line(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(character) = chars.next() {
        match (character, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cell.is_empty() => quoted = true,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            (other, _) => cell.push(other),
        }
    }
    cells.push(cell);
    cells
}

/// Checks an export against its manifest: signature (under `public_key`), checksum, and — given the recipient's
/// age identity file contents — that the decrypted CSV has the stated rows and per-field counts.
pub fn verify_export_file(
    file: &[u8],
    signed: &SignedManifest,
    public_key: &VerifyingKey,
    identity: Option<&str>,
) -> ExportCheck {
    let mut problems = Vec::new();
    let signature_ok = crate::audit::parse_public_key(&signed.manifest.public_key)
        .ok()
        .filter(|named| named == public_key)
        .is_some()
        && unhex(&signed.signature)
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .is_some_and(|signature| {
                public_key
                    .verify(&manifest_signature_bytes(&signed.manifest), &signature)
                    .is_ok()
            });
    if !signature_ok {
        problems
            .push("the manifest's signature does not verify under the given public key".to_owned());
    }
    let checksum_ok = hex(&Sha256::digest(file)) == signed.manifest.file_sha256;
    if !checksum_ok {
        problems
            .push("the file's SHA-256 differs from the manifest (changed or truncated)".to_owned());
    }
    let contents_ok = identity.map(|identity| match decrypt(file, identity) {
        Err(problem) => {
            problems.push(problem);
            false
        }
        Ok(text) => {
            let mut lines = text.lines();
            let header = lines.next().map(parse_csv_line).unwrap_or_default();
            let mut rows = 0u64;
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for line in lines {
                rows += 1;
                for (name, value) in header.iter().zip(parse_csv_line(line)).skip(1) {
                    if !value.is_empty() {
                        *counts.entry(name.clone()).or_default() += 1;
                    }
                }
            }
            let expected_header: Vec<String> = std::iter::once("customer_id".to_owned())
                .chain(signed.manifest.fields.iter().cloned())
                .collect();
            let ok = header == expected_header
                && rows == signed.manifest.rows
                && counts == signed.manifest.counts;
            if !ok {
                problems.push(format!(
                    "the contents differ from the manifest ({rows} rows, counts {counts:?})"
                ));
            }
            ok
        }
    });
    ExportCheck {
        signature_ok,
        checksum_ok,
        contents_ok,
        problems,
    }
}

fn decrypt(file: &[u8], identity: &str) -> Result<String, String> {
    let identities = age::IdentityFile::from_buffer(identity.as_bytes())
        .map_err(|_| "the identity file cannot be parsed".to_owned())?
        .into_identities()
        .map_err(|_| "the identity file cannot be parsed".to_owned())?;
    let decryptor =
        age::Decryptor::new(file).map_err(|_| "the file is not age-encrypted".to_owned())?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|identity| identity.as_ref()))
        .map_err(|_| "the identity does not decrypt the file".to_owned())?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut reader, &mut text)
        .map_err(|_| "the decrypted file is not UTF-8 CSV".to_owned())?;
    Ok(text)
}

fn export_io(error: std::io::Error) -> AppError {
    AppError::Internal(format!("cannot encrypt the export: {error}"))
}

/// The CSV body of an export, written customer by customer into the age encryptor: each customer's data key is
/// unwrapped (KEK ciphers set up once), the requested fields opened against their associated data (customer,
/// field, key version: a ciphertext moved elsewhere fails), and the line built in one reused buffer. Every buffer
/// that holds plaintext is zeroized before reuse and on drop.
struct ExportLines {
    unwrapper: crate::keys::CustomerKeyUnwrapper,
    writer: age::stream::StreamWriter<Vec<u8>>,
    fields: Vec<SensitiveField>,
    /// Non-empty values per position in `fields`.
    counts: Vec<u64>,
    rows: u64,
    aad: Vec<u8>,
    plaintext: zeroize::Zeroizing<Vec<u8>>,
    line: zeroize::Zeroizing<Vec<u8>>,
    /// The first failure; it stops the scan and fails the export.
    error: Option<AppError>,
}

impl ExportLines {
    /// Only the governed export constructs one, after its audit entry and grant use committed: hence the
    /// [`RevealAuthority`](crate::customers::reveal::RevealAuthority).
    fn new(
        _authority: &crate::customers::reveal::RevealAuthority,
        keyring: &crate::Keyring,
        writer: age::stream::StreamWriter<Vec<u8>>,
        fields: Vec<SensitiveField>,
    ) -> Self {
        ExportLines {
            unwrapper: keyring.customer_key_unwrapper(),
            writer,
            counts: vec![0; fields.len()],
            fields,
            rows: 0,
            aad: Vec::new(),
            plaintext: zeroize::Zeroizing::new(Vec::with_capacity(256)),
            line: zeroize::Zeroizing::new(Vec::with_capacity(1024)),
            error: None,
        }
    }

    /// Writes one customer's line; `false` (with the error kept) stops the scan.
    fn write_customer(&mut self, sealed: &veil_store::SealedExportRow<'_>) -> bool {
        match self.try_write_customer(sealed) {
            Ok(()) => true,
            Err(error) => {
                self.error = Some(error);
                false
            }
        }
    }

    fn try_write_customer(&mut self, sealed: &veil_store::SealedExportRow<'_>) -> AppResult<()> {
        let dek = self.unwrapper.unwrap(
            sealed.customer_id,
            sealed.key_dek_version,
            sealed.kek_version,
            sealed.wrapped_key,
        )?;
        let cipher = veil_mask::FieldCipher::new(&dek);
        zeroize::Zeroize::zeroize(&mut *self.line);
        write_csv_cell(&mut self.line, sealed.customer_id);
        for (position, (field, ciphertext)) in
            self.fields.iter().zip(sealed.ciphertexts).enumerate()
        {
            push_bytes(&mut self.line, b",");
            let Some(ciphertext) = ciphertext else {
                continue;
            };
            veil_mask::crypto::Aad {
                table: "customer",
                record_id: sealed.customer_id,
                field: field.as_str(),
                key_version: sealed.dek_version as u32,
            }
            .encode_into(&mut self.aad);
            cipher.open_into(&self.aad, ciphertext, &mut self.plaintext)?;
            let value = std::str::from_utf8(&self.plaintext)
                .map_err(|_| AppError::Internal("stored plaintext is not UTF-8".to_owned()))?;
            if !value.is_empty() {
                self.counts[position] += 1;
            }
            write_csv_cell(&mut self.line, value);
        }
        zeroize::Zeroize::zeroize(&mut *self.plaintext);
        push_bytes(&mut self.line, b"\n");
        self.writer.write_all(&self.line).map_err(export_io)?;
        self.rows += 1;
        Ok(())
    }

    /// The encryptor (to finish), the rows written and the non-empty values per field name — or the first error.
    fn finish(self) -> AppResult<ExportBody> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (field, count) in self.fields.iter().zip(&self.counts) {
            if *count > 0 {
                *counts.entry(field.as_str().to_owned()).or_default() += count;
            }
        }
        Ok(ExportBody {
            writer: self.writer,
            rows: self.rows,
            counts,
        })
    }
}

/// What [`ExportLines::finish`] hands back.
struct ExportBody {
    writer: age::stream::StreamWriter<Vec<u8>>,
    rows: u64,
    counts: BTreeMap<String, u64>,
}

/// Appends to a buffer that may hold plaintext without leaving a copy behind when it grows.
fn push_bytes(buffer: &mut zeroize::Zeroizing<Vec<u8>>, bytes: &[u8]) {
    veil_mask::crypto::reserve_zeroizing(buffer, bytes.len());
    buffer.extend_from_slice(bytes);
}

/// Appends one CSV cell, byte for byte what `audit::csv_field` makes: a cell a spreadsheet would run as a formula gets a
/// leading `'`, and a cell with a comma, quote or line break is quoted with its quotes doubled.
fn write_csv_cell(line: &mut zeroize::Zeroizing<Vec<u8>>, text: &str) {
    let guard = text.starts_with(['=', '+', '-', '@']);
    let quote = text
        .bytes()
        .any(|byte| matches!(byte, b',' | b'"' | b'\n' | b'\r'));
    // At most: two quotes, the guard and every byte doubled.
    veil_mask::crypto::reserve_zeroizing(line, 3 + 2 * text.len());
    if quote {
        line.push(b'"');
    }
    if guard {
        line.push(b'\'');
    }
    if quote {
        for byte in text.bytes() {
            if byte == b'"' {
                line.push(b'"');
            }
            line.push(byte);
        }
        line.push(b'"');
    } else {
        line.extend_from_slice(text.as_bytes());
    }
}

impl Veil {
    /// Runs an approved export request (its requester, with a recent second factor, outside a lock-down): the
    /// export's audit entry and the grant's use commit first; then every customer's approved fields are decrypted
    /// into CSV, encrypted to the recipient, and the manifest signed.
    pub async fn run_export(
        &self,
        actor: &Actor,
        token: Option<&str>,
        request_id: &str,
    ) -> AppResult<ExportDelivery> {
        let request = self
            .store()
            .request(request_id)
            .await?
            .ok_or(AppError::NotFound)?;
        if request.requester_id != actor.user_id.to_string() {
            return Err(AppError::NotFound);
        }
        if request.mode != "export" || request.state != "active" {
            return Err(AppError::Conflict(format!(
                "the request is a {} request in state {}; only an active export request exports",
                request.mode, request.state
            )));
        }
        self.ensure_not_locked_down().await?;
        let fresh = match token {
            Some(token) => {
                self.recent_mfa(token, crate::mfa::STEP_UP_WINDOW_MS)
                    .await?
            }
            None => false,
        };
        if !fresh {
            return Err(AppError::Forbidden(
                "an export needs a second factor verified in the last 10 minutes: POST /api/v1/auth/mfa/verify",
            ));
        }
        let now = now_ms();
        let grant = self
            .store()
            .grants_of_request(&request.id, &request.requester_id)
            .await?
            .into_iter()
            .find(|grant| grant_live(grant, now))
            .ok_or(AppError::GrantRequired)?;
        let recipient_text = request.recipient.clone().ok_or_else(|| {
            AppError::Internal("an export request without a recipient".to_owned())
        })?;
        let recipient: age::x25519::Recipient = recipient_text
            .parse()
            .map_err(|_| AppError::Internal("the export recipient is not an age key".to_owned()))?;
        let customers = list(&grant.customer_ids);
        let field_names = list(&grant.fields);
        let fields: Vec<SensitiveField> = field_names
            .iter()
            .filter_map(|name| SensitiveField::parse(name))
            .collect();
        let mut entry = event(Some(actor), "customer.export", Outcome::Ok)
            .customers(customers.clone())
            .fields(field_names.clone())
            .detail(
                serde_json::json!({"rows": customers.len(), "request_id": request.id,
                                       "recipient": recipient_text}),
            );
        entry.grant_id = Some(grant.id.clone());
        entry.purpose = Some(grant.purpose.clone());
        if !self
            .store()
            .use_grant(&grant.id, now, &entry)
            .await
            .map_err(|error| {
                tracing::error!(%error, "export: audit write failed");
                AppError::AuditUnavailable
            })?
        {
            return Err(AppError::GrantRequired);
        }
        // Plaintext exists only inside the encryptor's buffer and the export's zeroized scratch buffers from here.
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .map_err(|error| AppError::Internal(format!("age: {error}")))?;
        let mut writer = encryptor.wrap_output(Vec::new()).map_err(export_io)?;
        let header: Vec<String> = std::iter::once("customer_id".to_owned())
            .chain(field_names.iter().cloned())
            .collect();
        writeln!(writer, "{}", header.join(",")).map_err(export_io)?;
        let authority = crate::customers::reveal::RevealAuthority::granted();
        let lines = ExportLines::new(&authority, &self.keyring(), writer, fields.clone());
        let lines = self
            .store()
            .scan_sealed_for_export(&customers, &fields, lines, |lines, sealed| {
                lines.write_customer(sealed)
            })
            .await?;
        let ExportBody {
            writer,
            rows,
            counts,
        } = lines.finish()?;
        let encrypted = writer.finish().map_err(export_io)?;
        let key = self.audit_signing_key().await?;
        let manifest = ExportManifest {
            version: 1,
            request_id: request.id.clone(),
            grant_id: grant.id.clone(),
            exported_by: actor.user_id.to_string(),
            created_at: format_time(now),
            format: "csv".to_owned(),
            fields: field_names,
            rows,
            counts,
            recipient: recipient_text,
            file_sha256: hex(&Sha256::digest(&encrypted)),
            public_key: hex(key.verifying_key().as_bytes()),
        };
        let signature = key.sign(&manifest_signature_bytes(&manifest));
        use base64::Engine;
        Ok(ExportDelivery {
            file_base64: base64::engine::general_purpose::STANDARD.encode(&encrypted),
            manifest: SignedManifest {
                manifest,
                signature: hex(&signature.to_bytes()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::csv_field as csv_cell;

    #[test]
    fn cells_are_written_as_the_audit_csv_writes_them() {
        fn check(text: &str) {
            let mut line = zeroize::Zeroizing::new(Vec::new());
            write_csv_cell(&mut line, text);
            assert_eq!(
                std::str::from_utf8(&line).unwrap(),
                csv_cell(text),
                "{text:?}"
            );
        }
        for text in [
            "",
            "plain",
            "司马相如",
            "a,b",
            "say \"hi\"",
            "line\nbreak",
            "cr\r",
            "=1+1",
            "+86 139",
            "-5",
            "@home",
            "=a,\"b\"",
            "'quoted",
        ] {
            check(text);
        }
    }

    #[test]
    fn csv_lines_round_trip() {
        let cells = ["a,b", "say \"hi\"", "plain", ""];
        let line: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
        assert_eq!(
            parse_csv_line(&line.join(",")),
            cells.map(str::to_owned).to_vec()
        );
    }
}
