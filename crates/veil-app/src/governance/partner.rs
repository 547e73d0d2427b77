//! Partner data exchange: pseudonymised exports in a per-partner domain, k-anonymity on the quasi-identifiers,
//! and re-identification of the partner's enriched file under a grant.
//!
//! Each partner has its own key in the keyring (purpose `partner:<name>`), from which its pseudonyms derive: the
//! customer pseudonym (`p_` + HMAC of the customer id) and FF1 pseudonyms of the exported fields (format kept:
//! a mobile stays a mobile, an ID number stays checksum-valid). Two partners' files cannot be joined, and retiring
//! a partner destroys its key, after which nobody — Veil included — can link its pseudonyms back.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use utoipa::ToSchema;
use veil_mask::operator::{derive_subkey, Generalization};
use veil_mask::{FpeOptions, Operator, OperatorKeys, SecretKey};
use veil_store::{KeyringRow, SensitiveField};

use crate::audit::{event, hex, EventExt, Outcome};
use crate::customers::{field_kind, reveal};
use crate::error::{AppError, AppResult, FieldError};
use crate::users::{Actor, Role};
use crate::{now_ms, today, Veil};

use super::{grant_live, list};

/// Default k of the k-anonymity check.
pub const DEFAULT_K: usize = 5;

/// Fields a pseudonymised export may carry (each pseudonymised with FF1 in the partner's domain).
const PSEUDONYMISED_FIELDS: [SensitiveField; 3] = [
    SensitiveField::Phone,
    SensitiveField::IdNumber,
    SensitiveField::BankCard,
];

/// A quasi-identifier a pseudonymised export may carry, generalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuasiIdentifier {
    /// Birth year (from the birth date or the ID number); a decade after generalisation.
    BirthYear,
    /// Gender as recorded.
    Gender,
    /// Province of the ID number's region code; dropped after generalisation.
    Province,
}

impl QuasiIdentifier {
    /// Parses `birth_year`, `gender` or `province`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "birth_year" => Some(Self::BirthYear),
            "gender" => Some(Self::Gender),
            "province" => Some(Self::Province),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::BirthYear => "birth_year",
            Self::Gender => "gender",
            Self::Province => "province",
        }
    }
}

/// What the k-anonymity step did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PseudonymisedReport {
    /// The partner.
    pub partner: String,
    /// Rows written.
    pub rows: u64,
    /// The k enforced.
    pub k: usize,
    /// The smallest equivalence class of the quasi-identifiers in the file (0 without quasi-identifiers).
    pub smallest_class: usize,
    /// How far the quasi-identifiers were generalised: `none`, `birth_decade`, `birth_decade_without_province`.
    pub generalisation: String,
}

fn partner_purpose(name: &str) -> String {
    format!("partner:{name}")
}

fn valid_partner_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The partner's pseudonym of a customer id.
fn customer_pseudonym(mac: &Hmac<Sha256>, customer_id: &str) -> String {
    let mut mac = mac.clone();
    mac.update(customer_id.as_bytes());
    format!("p_{}", &hex(&mac.finalize().into_bytes())[..32])
}

/// The partner's keys: the customer-pseudonym MAC and the operator keys (FF1) of its domain.
struct PartnerKeys {
    customer: Hmac<Sha256>,
    operators: OperatorKeys,
}

impl PartnerKeys {
    fn derive(root: &SecretKey) -> Self {
        let customer = derive_subkey(root, "veil.partner.customer.v1");
        PartnerKeys {
            customer: <Hmac<Sha256> as Mac>::new_from_slice(customer.expose_secret())
                .expect("HMAC accepts keys of any length"),
            operators: OperatorKeys::derive(&derive_subkey(root, "veil.partner.operators.v1")),
        }
    }
}

/// One customer's quasi-identifiers at each generalisation level.
#[derive(Clone)]
struct Quasi {
    birth_year: Option<String>,
    gender: Option<String>,
    province: Option<String>,
}

impl Quasi {
    fn at(&self, level: usize, wanted: &[QuasiIdentifier]) -> Vec<String> {
        wanted
            .iter()
            .filter_map(|quasi| match quasi {
                QuasiIdentifier::BirthYear => Some(match (&self.birth_year, level) {
                    (Some(year), 0) => year.clone(),
                    (Some(year), _) => format!("{}0s", &year[..year.len().saturating_sub(1)]),
                    (None, _) => String::new(),
                }),
                QuasiIdentifier::Gender => Some(self.gender.clone().unwrap_or_default()),
                QuasiIdentifier::Province => {
                    (level < 2).then(|| self.province.clone().unwrap_or_default())
                }
            })
            .collect()
    }
}

/// The smallest equivalence class of `rows` at `level`.
fn smallest_class(rows: &[Quasi], level: usize, wanted: &[QuasiIdentifier]) -> usize {
    let mut classes: HashMap<Vec<String>, usize> = HashMap::new();
    for row in rows {
        *classes.entry(row.at(level, wanted)).or_default() += 1;
    }
    classes.values().copied().min().unwrap_or(0)
}

/// One CSV cell, quoted when needed.
fn cell(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Splits CSV text (RFC 4180: quoted cells, doubled quotes) into rows of cells.
fn parse_csv(text: &str) -> Result<Vec<Vec<String>>, &'static str> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    if quoted {
        return Err("a quoted cell is not closed");
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push(row);
    }
    Ok(rows)
}

/// What re-identification did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReidentifyReport {
    /// Rows mapped back onto customers.
    pub matched: u64,
    /// Rows whose pseudonym names no current customer (erased, or not this partner's).
    pub unknown: u64,
    /// Rows of customers the grant does not cover (left out).
    pub outside_grant: u64,
}

impl Veil {
    fn ensure_partner_role(actor: &Actor) -> AppResult<()> {
        if matches!(actor.role, Role::Admin | Role::Dpo) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "partner exchanges are run by an admin or the DPO",
            ))
        }
    }

    async fn partner_keys(&self, partner: &str) -> AppResult<PartnerKeys> {
        self.keyring()
            .existing_purpose_key(self.store(), &partner_purpose(partner))
            .await?
            .map(|root| PartnerKeys::derive(&root))
            .ok_or_else(|| {
                AppError::Validation(vec![FieldError::new(
                    "partner",
                    "unknown_partner",
                    "no such partner, or its key was destroyed when it was retired",
                )])
            })
    }

    /// Registers a partner: a fresh key (its pseudonym domain) in the keyring, wrapped by the master key.
    pub async fn add_partner(&self, actor: &Actor, partner: &str) -> AppResult<()> {
        Self::ensure_partner_role(actor)?;
        if !valid_partner_name(partner) {
            return Err(AppError::Validation(vec![FieldError::new(
                "partner",
                "invalid",
                "1 to 64 letters, digits, '-' or '_'",
            )]));
        }
        let purpose = partner_purpose(partner);
        if self
            .store()
            .keyring_rows()
            .await?
            .iter()
            .any(|row| row.purpose == purpose)
        {
            return Err(AppError::Conflict(format!(
                "partner {partner} exists (or was retired: a retired name is not reused)"
            )));
        }
        self.keyring().purpose_key(self.store(), &purpose).await?;
        self.record(&[event(Some(actor), "partner.add", Outcome::Ok)
            .detail(serde_json::json!({"partner": partner}))])
            .await?;
        Ok(())
    }

    /// Retires a partner at contract end: its key is destroyed, so its pseudonyms can no longer be linked to
    /// anyone.
    pub async fn retire_partner(&self, actor: &Actor, partner: &str) -> AppResult<()> {
        Self::ensure_partner_role(actor)?;
        let purpose = partner_purpose(partner);
        let rows = self.store().keyring_rows().await?;
        let Some(row) = rows
            .into_iter()
            .find(|row| row.purpose == purpose && row.state == "active")
        else {
            return Err(AppError::NotFound);
        };
        self.record(&[event(Some(actor), "partner.retire", Outcome::Ok)
            .detail(serde_json::json!({"partner": partner, "key": "destroyed"}))])
            .await?;
        self.store()
            .update_keyring_row(
                &KeyringRow {
                    purpose,
                    version: row.version,
                    wrapped: None,
                    state: "retired".to_owned(),
                },
                now_ms(),
            )
            .await?;
        Ok(())
    }

    /// Writes a pseudonymised CSV of `customer_ids` for `partner`: the partner's customer pseudonym, the FF1
    /// pseudonyms of `fields`, and the quasi-identifiers `quasi`, generalised until every equivalence class has
    /// at least `k` rows (birth year → decade → also without province) or refused with the reason. The file is
    /// encrypted to `recipient`; the audit entry commits before anything is decrypted. No plaintext is in it.
    #[allow(clippy::too_many_arguments)] // each argument is one decision of the export; no natural grouping
    pub async fn pseudonymised_export(
        &self,
        actor: &Actor,
        partner: &str,
        customer_ids: &[String],
        fields: &[SensitiveField],
        quasi: &[QuasiIdentifier],
        k: usize,
        recipient: &age::x25519::Recipient,
    ) -> AppResult<(Vec<u8>, PseudonymisedReport)> {
        Self::ensure_partner_role(actor)?;
        if let Some(field) = fields
            .iter()
            .find(|field| !PSEUDONYMISED_FIELDS.contains(field))
        {
            return Err(AppError::Validation(vec![FieldError::new(
                "fields",
                "not_pseudonymisable",
                format!(
                    "{} has no format-preserving pseudonym; pseudonymised exports carry phone, id_number and bank_card",
                    field.as_str()
                ),
            )]));
        }
        if k < 2 {
            return Err(AppError::Validation(vec![FieldError::new(
                "k",
                "too_small",
                "k-anonymity needs k of at least 2",
            )]));
        }
        let keys = self.partner_keys(partner).await?;
        self.ensure_not_locked_down().await?;
        let names: Vec<&str> = fields.iter().map(|field| field.as_str()).collect();
        self.record(&[event(Some(actor), "customer.export", Outcome::Ok)
            .customers(customer_ids.iter().cloned())
            .fields(names.iter().copied())
            .detail(serde_json::json!({"profile": "pseudonymised", "partner": partner,
                                       "quasi": quasi.iter().map(|q| q.name()).collect::<Vec<_>>(), "k": k}))])
            .await?;
        let mut opened_fields: Vec<SensitiveField> = fields.to_vec();
        for needed in [SensitiveField::BirthDate, SensitiveField::IdNumber] {
            if !quasi.is_empty() && !opened_fields.contains(&needed) {
                opened_fields.push(needed);
            }
        }
        let authority = reveal::RevealAuthority::pseudonymise();
        let fpe = Operator::Fpe(FpeOptions::default());
        let province = Operator::Generalize {
            to: Generalization::Province,
            band_width: None,
        };
        let mut lines: Vec<(Vec<String>, Quasi)> = Vec::new();
        for customer in customer_ids {
            let (Some(row), Some(key_row)) = (
                self.store().customer_row(customer).await?,
                self.store().customer_key(customer).await?,
            ) else {
                continue;
            };
            let opened = reveal::open_fields(self, &authority, &row, &key_row, &opened_fields)?;
            let mut cells = vec![customer_pseudonym(&keys.customer, customer)];
            for field in fields {
                let value = match opened.get(field) {
                    Some(value) => {
                        let mut context = veil_mask::OperatorContext::new(
                            &keys.operators,
                            field.as_str(),
                            today(),
                        );
                        veil_mask::apply(&fpe, field_kind(*field), value, &mut context)
                            .unwrap_or_default()
                    }
                    None => String::new(),
                };
                cells.push(value);
            }
            let id_number = opened.get(&SensitiveField::IdNumber);
            let birth_year = opened
                .get(&SensitiveField::BirthDate)
                .map(|date| date[..4.min(date.len())].to_owned())
                .or_else(|| id_number.map(|id| id.get(6..10).unwrap_or_default().to_owned()));
            let province = id_number.and_then(|id| {
                let mut context =
                    veil_mask::OperatorContext::new(&keys.operators, "id_number", today());
                veil_mask::apply(&province, veil_pii::PiiKind::CnId, id, &mut context).ok()
            });
            lines.push((
                cells,
                Quasi {
                    birth_year,
                    gender: row.profile.gender.clone(),
                    province,
                },
            ));
        }
        let quasi_rows: Vec<Quasi> = lines.iter().map(|(_, quasi)| quasi.clone()).collect();
        let (level, smallest) = if quasi.is_empty() {
            (0, 0)
        } else {
            let found = (0..3)
                .map(|level| (level, smallest_class(&quasi_rows, level, quasi)))
                .find(|(_, smallest)| *smallest >= k);
            match found {
                Some(found) => found,
                None => {
                    let smallest = smallest_class(&quasi_rows, 2, quasi);
                    return Err(AppError::Validation(vec![FieldError::new(
                        "quasi",
                        "k_anonymity",
                        format!(
                            "even generalised (birth decade, no province) the smallest group of customers sharing \
                             the same quasi-identifiers has {smallest} < k = {k}: export fewer quasi-identifiers \
                             or more customers"
                        ),
                    )]));
                }
            }
        };
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(recipient as &dyn age::Recipient))
                .map_err(|error| AppError::Internal(format!("age: {error}")))?;
        let io = |error: std::io::Error| {
            AppError::Internal(format!("cannot encrypt the export: {error}"))
        };
        let mut encrypted = Vec::new();
        let mut writer = encryptor.wrap_output(&mut encrypted).map_err(io)?;
        let mut header = vec!["pseudonym".to_owned()];
        header.extend(names.iter().map(|name| (*name).to_owned()));
        header.extend(
            quasi
                .iter()
                .filter(|q| !(level == 2 && **q == QuasiIdentifier::Province))
                .map(|q| q.name().to_owned()),
        );
        writeln!(writer, "{}", header.join(",")).map_err(io)?;
        for (cells, quasi_row) in &lines {
            let mut all: Vec<String> = cells.iter().map(|value| cell(value)).collect();
            all.extend(quasi_row.at(level, quasi).iter().map(|value| cell(value)));
            writeln!(writer, "{}", all.join(",")).map_err(io)?;
        }
        writer.finish().map_err(io)?;
        Ok((
            encrypted,
            PseudonymisedReport {
                partner: partner.to_owned(),
                rows: lines.len() as u64,
                k,
                smallest_class: smallest,
                generalisation: match level {
                    0 => "none",
                    1 => "birth_decade",
                    _ => "birth_decade_without_province",
                }
                .to_owned(),
            },
        ))
    }

    /// Maps a partner's file (CSV with a `pseudonym` column, as exported) back onto customers under the caller's
    /// live grant `grant_id`: returns the same CSV with `customer_id` in place of `pseudonym`, for the rows of
    /// customers the grant covers. Audited (`customer.reidentify`, grant, partner) before anything is returned.
    pub async fn reidentify(
        &self,
        actor: &Actor,
        partner: &str,
        grant_id: &str,
        file: &str,
    ) -> AppResult<(String, ReidentifyReport)> {
        Self::ensure_partner_role(actor)?;
        let keys = self.partner_keys(partner).await?;
        let now = now_ms();
        let grant = self
            .store()
            .grants(Some(&actor.user_id.to_string()), 1000)
            .await?
            .into_iter()
            // Linking pseudonyms back to people is an identification of them: only a grant to see (`view`) or to
            // hand out (`export`) those customers covers it, never a policy change.
            .find(|grant| {
                grant.id == grant_id
                    && matches!(grant.mode.as_str(), "view" | "export")
                    && grant_live(grant, now)
            })
            .ok_or(AppError::GrantRequired)?;
        let covered: std::collections::HashSet<String> =
            list(&grant.customer_ids).into_iter().collect();
        let invalid = |message: &str| {
            AppError::Validation(vec![FieldError::new(
                "file",
                "invalid_csv",
                message.to_owned(),
            )])
        };
        let rows = parse_csv(file).map_err(invalid)?;
        let Some((header, body)) = rows.split_first() else {
            return Err(invalid("the file is empty"));
        };
        let column = header
            .iter()
            .position(|name| name == "pseudonym")
            .ok_or_else(|| invalid("the file has no pseudonym column"))?;
        // The partner's pseudonyms of every current customer: HMACs of ids, nothing decrypted.
        let by_pseudonym: HashMap<String, String> = self
            .all_customer_ids()
            .await?
            .into_iter()
            .map(|id| (customer_pseudonym(&keys.customer, &id), id))
            .collect();
        let mut report = ReidentifyReport {
            matched: 0,
            unknown: 0,
            outside_grant: 0,
        };
        let mut matched_ids = Vec::new();
        let mut out_rows = Vec::new();
        for row in body {
            let Some(customer) = row.get(column).and_then(|p| by_pseudonym.get(p)) else {
                report.unknown += 1;
                continue;
            };
            if !covered.contains(customer) {
                report.outside_grant += 1;
                continue;
            }
            report.matched += 1;
            matched_ids.push(customer.clone());
            let mut cells = row.clone();
            cells[column] = customer.clone();
            out_rows.push(cells);
        }
        let mut entry = event(Some(actor), "customer.reidentify", Outcome::Ok)
            .customers(matched_ids)
            .detail(serde_json::json!({"partner": partner, "matched": report.matched,
                                       "unknown": report.unknown, "outside_grant": report.outside_grant}));
        entry.grant_id = Some(grant.id.clone());
        entry.purpose = Some(grant.purpose.clone());
        self.record(&[entry]).await?;
        let mut out = String::new();
        let mut header = header.clone();
        header[column] = "customer_id".to_owned();
        for row in std::iter::once(&header).chain(out_rows.iter()) {
            let line: Vec<String> = row.iter().map(|value| cell(value)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        Ok((out, report))
    }

    /// Every customer id (for a whole-base partner export), oldest first.
    pub async fn all_customer_ids(&self) -> AppResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .store()
                .list_masked_customers(
                    &Default::default(),
                    &Default::default(),
                    cursor.as_deref(),
                    1000,
                )
                .await?;
            let Some(last) = page.last() else { break };
            cursor = Some(last.id.clone());
            ids.extend(page.into_iter().map(|row| row.id));
        }
        ids.reverse();
        Ok(ids)
    }

    /// Every partner and whether its key is live (`active`) or destroyed (`retired`).
    pub async fn partners(&self) -> AppResult<BTreeMap<String, String>> {
        Ok(self
            .store()
            .keyring_rows()
            .await?
            .into_iter()
            .filter_map(|row| {
                row.purpose
                    .strip_prefix("partner:")
                    .map(|name| (name.to_owned(), row.state.clone()))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_quoted_cells() {
        let rows = parse_csv("pseudonym,score\np_1,\"a, \"\"b\"\"\"\np_2,3\n").unwrap();
        assert_eq!(rows[1], vec!["p_1".to_owned(), "a, \"b\"".to_owned()]);
        assert_eq!(rows[2], vec!["p_2".to_owned(), "3".to_owned()]);
        assert_eq!(cell("a, \"b\""), "\"a, \"\"b\"\"\"");
        assert!(parse_csv("\"open").is_err());
    }

    #[test]
    fn classes_shrink_as_quasi_identifiers_generalise() {
        let row = |year: &str, province: &str| Quasi {
            birth_year: Some(year.to_owned()),
            gender: Some("female".to_owned()),
            province: Some(province.to_owned()),
        };
        let rows = vec![
            row("1984", "北京市"),
            row("1985", "北京市"),
            row("1986", "浙江省"),
        ];
        let all = [
            QuasiIdentifier::BirthYear,
            QuasiIdentifier::Gender,
            QuasiIdentifier::Province,
        ];
        assert_eq!(smallest_class(&rows, 0, &all), 1);
        assert_eq!(smallest_class(&rows, 1, &all), 1);
        assert_eq!(smallest_class(&rows, 2, &all), 3);
        assert_eq!(rows[0].at(1, &all), vec!["1980s", "female", "北京市"]);
    }
}

/// A partner and the state of its key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerView {
    /// Name.
    pub name: String,
    /// `active` (key live) or `retired` (key destroyed: its pseudonyms are unlinkable).
    pub state: String,
}

/// A pseudonymised export for a partner (`POST /api/v1/partners/{name}/exports`).
#[derive(Debug, Clone, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerExportInput {
    /// The partner's age public key (`age1…`); the file is encrypted to it.
    pub recipient: String,
    /// Fields to carry as format-preserving pseudonyms: `phone`, `id_number`, `bank_card`.
    #[serde(default = "default_partner_fields")]
    pub fields: Vec<String>,
    /// Quasi-identifiers to carry, generalised to k-anonymity: `birth_year`, `gender`, `province`.
    #[serde(default)]
    pub quasi: Vec<String>,
    /// Smallest group size allowed for the quasi-identifiers (2–1000, default 5).
    #[serde(default = "default_k")]
    pub k: usize,
    /// Customer ids; with neither this nor `segment`, every customer.
    #[serde(default)]
    pub customer_ids: Vec<String>,
    /// Or one of the caller's saved segments.
    #[serde(default)]
    pub segment: Option<String>,
}

fn default_partner_fields() -> Vec<String> {
    vec!["phone".to_owned()]
}

fn default_k() -> usize {
    DEFAULT_K
}

/// The encrypted pseudonymised file and what the k-anonymity step did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartnerExportDelivery {
    /// The age-encrypted CSV, base64.
    pub file_base64: String,
    /// Rows, k, smallest group, generalisation.
    pub report: PseudonymisedReport,
}

/// A partner's enriched file to map back onto customers (`POST /api/v1/partners/{name}/reidentify`).
#[derive(Debug, Clone, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReidentifyInput {
    /// The caller's live grant covering the customers.
    pub grant_id: String,
    /// The partner's CSV (decrypted), with the `pseudonym` column as exported.
    pub file: String,
}

/// The file keyed by customer id, and the counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReidentifyDelivery {
    /// The CSV with `customer_id` in place of `pseudonym`, only for customers the grant covers.
    pub file: String,
    /// Matched, unknown, outside the grant.
    pub report: ReidentifyReport,
}

/// Most customers one pseudonymised export request names explicitly.
const MAX_EXPLICIT_CUSTOMERS: usize = 100_000;

impl Veil {
    /// Every partner and the state of its key (admin or DPO).
    pub async fn list_partners(&self, actor: &Actor) -> AppResult<Vec<PartnerView>> {
        Self::ensure_partner_role(actor)?;
        Ok(self
            .partners()
            .await?
            .into_iter()
            .map(|(name, state)| PartnerView { name, state })
            .collect())
    }

    /// A pseudonymised export from an API request: checks and parses the input, resolves the customers (given
    /// ids, a saved segment, or everyone), then [`Veil::pseudonymised_export`].
    pub async fn partner_export(
        &self,
        actor: &Actor,
        partner: &str,
        input: &PartnerExportInput,
    ) -> AppResult<PartnerExportDelivery> {
        Self::ensure_partner_role(actor)?;
        let mut errors = Vec::new();
        let recipient = input
            .recipient
            .trim()
            .parse::<age::x25519::Recipient>()
            .map_err(|_| {
                errors.push(FieldError::new(
                    "recipient",
                    "invalid",
                    "is not an age public key (age1…)",
                ))
            })
            .ok();
        let mut fields = Vec::new();
        for name in &input.fields {
            match SensitiveField::parse(name) {
                Some(field) => fields.push(field),
                None => errors.push(FieldError::new("fields", "unknown", "unknown field")),
            }
        }
        let mut quasi = Vec::new();
        for name in &input.quasi {
            match QuasiIdentifier::parse(name) {
                Some(identifier) => quasi.push(identifier),
                None => errors.push(FieldError::new(
                    "quasi",
                    "unknown",
                    "expected birth_year, gender or province",
                )),
            }
        }
        if !(2..=1000).contains(&input.k) {
            errors.push(FieldError::new("k", "out_of_range", "2 to 1000"));
        }
        if input.customer_ids.len() > MAX_EXPLICIT_CUSTOMERS
            || input
                .customer_ids
                .iter()
                .any(|id| id.parse::<crate::CustomerId>().is_err())
        {
            errors.push(FieldError::new(
                "customer_ids",
                "invalid",
                format!("at most {MAX_EXPLICIT_CUSTOMERS} customer ids"),
            ));
        }
        if input.segment.is_some() && !input.customer_ids.is_empty() {
            errors.push(FieldError::new(
                "segment",
                "ambiguous",
                "give customer_ids or segment, not both",
            ));
        }
        let (Some(recipient), true) = (recipient, errors.is_empty()) else {
            return Err(AppError::Validation(errors));
        };
        let customers = match &input.segment {
            Some(segment) => {
                let members = self
                    .segment_members(actor, segment, MAX_EXPLICIT_CUSTOMERS + 1)
                    .await?
                    .ok_or_else(|| {
                        AppError::Validation(vec![FieldError::new(
                            "segment",
                            "unknown",
                            "no saved segment of yours has this id",
                        )])
                    })?;
                if members.len() > MAX_EXPLICIT_CUSTOMERS {
                    return Err(AppError::Validation(vec![FieldError::new(
                        "segment",
                        "too_large",
                        format!(
                            "more than {MAX_EXPLICIT_CUSTOMERS} customers; export everyone instead"
                        ),
                    )]));
                }
                members
            }
            None if input.customer_ids.is_empty() => self.all_customer_ids().await?,
            None => input.customer_ids.clone(),
        };
        let (file, report) = self
            .pseudonymised_export(
                actor, partner, &customers, &fields, &quasi, input.k, &recipient,
            )
            .await?;
        use base64::Engine;
        Ok(PartnerExportDelivery {
            file_base64: base64::engine::general_purpose::STANDARD.encode(file),
            report,
        })
    }

    /// Re-identification from an API request: [`Veil::reidentify`].
    pub async fn partner_reidentify(
        &self,
        actor: &Actor,
        partner: &str,
        input: &ReidentifyInput,
    ) -> AppResult<ReidentifyDelivery> {
        let (file, report) = self
            .reidentify(actor, partner, &input.grant_id, &input.file)
            .await?;
        Ok(ReidentifyDelivery { file, report })
    }
}
