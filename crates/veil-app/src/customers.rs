//! Customers: validation at the edge, sealing (encrypt + mask + blind index) on write, masked reads.
//!
//! Flow of a write: [`CustomerInput`] → [`validate_input`] (normalise and check every field, all errors at once)
//! → duplicate check through the blind index → [`seal_customer`] (fresh data key, AES-256-GCM per field bound to
//! table/record/field/key version, masked display, blind index) → one transaction inserting the row and its
//! wrapped data key. Reads return [`CustomerView`], built from masked columns only: they never decrypt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use veil_mask::crypto::Aad;
use veil_mask::{FieldCipher, SecretKey};
use veil_pii::{Details, PiiKind};
use veil_store::{
    CustomerProfile, CustomerRow, CustomerScope, MaskedCustomerRow, SealedValue, SensitiveField,
    StoreError,
};

use crate::audit::{self, EventExt, Outcome};
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::{CustomerId, UserId};
use crate::users::{Actor, Role};
use crate::{format_time, now_ms, today, Veil};

/// The data-key version every new customer starts with.
const INITIAL_DEK_VERSION: i64 = 1;
/// Largest page a list may ask for.
pub const MAX_PAGE_SIZE: u32 = 200;
const MAX_TAGS: usize = 50;
const MAX_TAG_CHARS: usize = 64;
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
const MAX_SHORT_TEXT_CHARS: usize = 100;

/// The PII kind each sensitive field is validated and masked as.
pub fn field_kind(field: SensitiveField) -> PiiKind {
    match field {
        SensitiveField::Name => PiiKind::PersonName,
        SensitiveField::BirthDate => PiiKind::BirthDate,
        SensitiveField::Phone => PiiKind::CnMobile,
        SensitiveField::IdNumber => PiiKind::CnId,
        SensitiveField::Email => PiiKind::Email,
        SensitiveField::Address => PiiKind::Address,
        SensitiveField::BankCard => PiiKind::BankCard,
    }
}

/// A new customer, as posted. `Debug` shows which fields are present, never their values.
#[derive(Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// Full name (required).
    pub name: Option<String>,
    /// `male`, `female`, `other` or `unknown`; derived from `id_number` when absent.
    pub gender: Option<String>,
    /// `YYYY-MM-DD`; derived from `id_number` when absent, and must agree with it when both are given.
    pub birth_date: Option<String>,
    /// Mainland mobile number; `+86`, spaces, dashes and full-width digits are accepted.
    pub phone: Option<String>,
    /// Resident ID number (18 digits, or the 15-digit legacy form).
    pub id_number: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Postal address.
    pub address: Option<String>,
    /// Bank card number (Luhn-checked).
    pub bank_card: Option<String>,
    /// Free labels.
    pub tags: Option<Vec<String>>,
    /// Owning user id; defaults to the caller.
    pub owner: Option<String>,
    /// Owning team; defaults to the owner's team.
    pub team: Option<String>,
    /// Where the customer came from.
    pub source: Option<String>,
    /// Industry template (`real_estate`, `services`, `finance`, `education`, `ecommerce`, …).
    pub industry: Option<String>,
    /// Free-form JSON object.
    #[schema(value_type = Object)]
    pub attributes: Option<serde_json::Value>,
    /// Values of the industry template's custom fields (`GET /api/v1/industries`), by key. Validated against the
    /// template; sensitive ones are sealed and shown masked.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
}

impl fmt::Debug for CustomerInput {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present: Vec<&str> = [
            ("name", self.name.is_some()),
            ("birth_date", self.birth_date.is_some()),
            ("phone", self.phone.is_some()),
            ("id_number", self.id_number.is_some()),
            ("email", self.email.is_some()),
            ("address", self.address.is_some()),
            ("bank_card", self.bank_card.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        formatter
            .debug_struct("CustomerInput")
            .field("sensitive_fields_present", &present)
            .finish_non_exhaustive()
    }
}

/// Distinguishes "absent" (`None`) from "null" (`Some(None)`) in a PATCH body.
fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A partial update: absent fields stay, `null` clears (except `name`), values replace.
#[derive(Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    /// Full name (cannot be cleared).
    pub name: Option<String>,
    /// Gender.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub gender: Option<Option<String>>,
    /// Birth date.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub birth_date: Option<Option<String>>,
    /// Mobile number.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// Resident ID number.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub id_number: Option<Option<String>>,
    /// Email.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// Address.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub address: Option<Option<String>>,
    /// Bank card.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub bank_card: Option<Option<String>>,
    /// Replaces all tags.
    pub tags: Option<Vec<String>>,
    /// Team.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub team: Option<Option<String>>,
    /// Source.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub source: Option<Option<String>>,
    /// Industry.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub industry: Option<Option<String>>,
    /// Replaces all attributes.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Value>,
    /// Custom-field values to set, by key (`null` clears one; keys not named stay). Fields that the customer's
    /// (new) industry does not define are dropped.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
}

impl fmt::Debug for CustomerPatch {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("CustomerPatch(<redacted>)")
    }
}

/// A customer as a reader sees it: sensitive fields masked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerView {
    /// Customer id.
    #[schema(value_type = String)]
    pub id: CustomerId,
    /// Masked name, e.g. `张*`.
    pub name: String,
    /// Gender.
    pub gender: Option<String>,
    /// Masked birth date, e.g. `1984-**-**`.
    pub birth_date: Option<String>,
    /// Masked mobile, e.g. `138****5678`.
    pub phone: Option<String>,
    /// Masked resident ID, e.g. `110101********123X`.
    pub id_number: Option<String>,
    /// Masked email, e.g. `z***@example.com`.
    pub email: Option<String>,
    /// Masked address, e.g. `北京市朝阳区****`.
    pub address: Option<String>,
    /// Masked bank card, e.g. `622202*********0123`.
    pub bank_card: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// Owning user id.
    pub owner: Option<String>,
    /// Owning team.
    pub team: Option<String>,
    /// Lead source.
    pub source: Option<String>,
    /// Industry.
    pub industry: Option<String>,
    /// Free-form attributes.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    /// The industry template's custom fields: non-sensitive values as stored, sensitive ones as their masked
    /// display (listed in `masked` as `custom.<key>`).
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Value,
    /// Which fields are shown masked.
    pub masked: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A page of customers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerPage {
    /// The customers, newest first.
    pub items: Vec<CustomerView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// An exact-match search over a blind-indexed field.
#[derive(Clone)]
pub struct ExactSearch {
    /// The field searched.
    pub field: SensitiveField,
    /// The value sought (plaintext; never logged).
    pub value: String,
}

impl fmt::Debug for ExactSearch {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "ExactSearch({}, <redacted>)",
            self.field.as_str()
        )
    }
}

/// A validated, normalised customer ready to be sealed. Holds plaintext: never leaves this module's callers'
/// write path, and its `Debug` is redacted.
#[derive(Clone, Default)]
pub struct ValidatedCustomer {
    values: BTreeMap<SensitiveField, String>,
    profile: ProfileInput,
    custom: crate::industries::ValidatedCustom,
}

impl ValidatedCustomer {
    /// The normalised value of a sensitive field, if present (for blind indexes before sealing).
    pub(crate) fn value(&self, field: SensitiveField) -> Option<&str> {
        self.values.get(&field).map(String::as_str)
    }
}

impl fmt::Debug for ValidatedCustomer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ValidatedCustomer(<redacted>)")
    }
}

#[derive(Clone, Default)]
struct ProfileInput {
    gender: Option<String>,
    tags: Vec<String>,
    owner: Option<UserId>,
    team: Option<String>,
    source: Option<String>,
    industry: Option<String>,
    /// Serialised JSON object.
    attributes: String,
}

fn validate_sensitive(
    field: SensitiveField,
    raw: &str,
    errors: &mut Vec<FieldError>,
) -> Option<veil_pii::Validated> {
    match veil_pii::validate(field_kind(field), raw, today()) {
        Ok(validated) => Some(validated),
        Err(invalid) => {
            errors.push(FieldError::new(
                field.as_str(),
                invalid.reason.code(),
                invalid.to_string(),
            ));
            None
        }
    }
}

fn validate_short_text(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.chars().count() > MAX_SHORT_TEXT_CHARS || trimmed.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "invalid",
            format!("must be at most {MAX_SHORT_TEXT_CHARS} characters without control characters"),
        ));
        return None;
    }
    Some(trimmed.to_owned())
}

fn validate_gender(value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match value.trim() {
        "male" | "female" | "other" | "unknown" => Some(value.trim().to_owned()),
        _ => {
            errors.push(FieldError::new(
                "gender",
                "invalid",
                "must be one of male, female, other, unknown",
            ));
            None
        }
    }
}

fn validate_tags(tags: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if tags.len() > MAX_TAGS {
        errors.push(FieldError::new(
            "tags",
            "too_many",
            format!("at most {MAX_TAGS} tags"),
        ));
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim();
        if tag.is_empty()
            || tag.chars().count() > MAX_TAG_CHARS
            || tag.chars().any(char::is_control)
        {
            errors.push(FieldError::new(
                "tags",
                "invalid",
                format!(
                    "each tag must be 1 to {MAX_TAG_CHARS} characters without control characters"
                ),
            ));
            return Vec::new();
        }
        if !out.iter().any(|existing| existing == tag) {
            out.push(tag.to_owned());
        }
    }
    out
}

/// Checks that attributes are a JSON object of bounded size and returns its serialised form (serialised once).
fn validate_attributes(value: &serde_json::Value, errors: &mut Vec<FieldError>) -> String {
    const EMPTY: &str = "{}";
    if !value.is_object() {
        errors.push(FieldError::new(
            "attributes",
            "invalid",
            "must be a JSON object",
        ));
        return EMPTY.to_owned();
    }
    let json = value.to_string();
    if json.len() > MAX_ATTRIBUTES_BYTES {
        errors.push(FieldError::new(
            "attributes",
            "too_large",
            format!("at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
        ));
        return EMPTY.to_owned();
    }
    json
}

/// Reconciles birth date and gender with what the resident ID number encodes.
fn reconcile_with_id_number(
    values: &mut BTreeMap<SensitiveField, String>,
    gender: &mut Option<String>,
    id_details: Option<&veil_pii::cn_id::CnIdInfo>,
    errors: &mut Vec<FieldError>,
) {
    let Some(info) = id_details else {
        return;
    };
    let encoded = info.birth_date.to_string();
    match values.get(&SensitiveField::BirthDate) {
        Some(given) if *given != encoded => errors.push(FieldError::new(
            "birth_date",
            "mismatch",
            "does not match the birth date encoded in id_number",
        )),
        Some(_) => {}
        None => {
            values.insert(SensitiveField::BirthDate, encoded);
        }
    }
    if gender.is_none() {
        *gender = Some(info.sex.as_str().to_owned());
    }
}

/// Validates and normalises a new customer, reporting every problem at once.
pub fn validate_input(input: &CustomerInput) -> Result<ValidatedCustomer, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut values = BTreeMap::new();
    let mut id_details = None;
    let raw_values = [
        (SensitiveField::Name, &input.name),
        (SensitiveField::BirthDate, &input.birth_date),
        (SensitiveField::Phone, &input.phone),
        (SensitiveField::IdNumber, &input.id_number),
        (SensitiveField::Email, &input.email),
        (SensitiveField::Address, &input.address),
        (SensitiveField::BankCard, &input.bank_card),
    ];
    for (field, raw) in raw_values {
        match raw.as_deref() {
            None => {
                if field == SensitiveField::Name {
                    errors.push(FieldError::new("name", "required", "is required"));
                }
            }
            Some(raw) => {
                if let Some(validated) = validate_sensitive(field, raw, &mut errors) {
                    if let Details::CnId(info) = validated.details {
                        id_details = Some(info);
                    }
                    values.insert(field, validated.normalized);
                }
            }
        }
    }
    let mut gender = input
        .gender
        .as_deref()
        .and_then(|value| validate_gender(value, &mut errors));
    reconcile_with_id_number(&mut values, &mut gender, id_details.as_ref(), &mut errors);
    let owner = match input.owner.as_deref() {
        None => None,
        Some(text) => match text.parse::<UserId>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new("owner", "invalid", "must be a user id"));
                None
            }
        },
    };
    let profile = ProfileInput {
        gender,
        tags: validate_tags(input.tags.as_deref().unwrap_or_default(), &mut errors),
        owner,
        team: input
            .team
            .as_deref()
            .and_then(|value| validate_short_text("team", value, &mut errors)),
        source: input
            .source
            .as_deref()
            .and_then(|value| validate_short_text("source", value, &mut errors)),
        industry: input
            .industry
            .as_deref()
            .and_then(|value| validate_short_text("industry", value, &mut errors)),
        attributes: input
            .attributes
            .as_ref()
            .map(|value| validate_attributes(value, &mut errors))
            .unwrap_or_else(|| "{}".to_owned()),
    };
    if errors.is_empty() {
        Ok(ValidatedCustomer {
            values,
            profile,
            custom: Default::default(),
        })
    } else {
        Err(errors)
    }
}

/// The industry whose template `input`'s custom fields are checked against (trimmed, `None` when blank).
pub(crate) fn input_industry(input: &CustomerInput) -> Option<&str> {
    input
        .industry
        .as_deref()
        .map(str::trim)
        .filter(|industry| !industry.is_empty())
}

/// [`validate_input`] plus `input.custom_fields` checked against `defs`, the fields of the input's industry
/// ([`input_industry`]; `None`: it has no template); every problem at once. The create path
/// ([`Veil::validate_with_custom`], which reads `defs` from the database) and imports (which read every template
/// once, before the rows) share it, so a custom value is accepted, refused and normalised the same way by both.
pub(crate) fn validate_input_with_custom(
    input: &CustomerInput,
    defs: Option<&[crate::industries::CustomFieldDef]>,
) -> Result<ValidatedCustomer, Vec<FieldError>> {
    let mut errors = Vec::new();
    let customer = match validate_input(input) {
        Ok(customer) => Some(customer),
        Err(found) => {
            errors = found;
            None
        }
    };
    let custom = crate::industries::validate_custom_values(
        input_industry(input),
        defs,
        input.custom_fields.as_ref(),
        &mut errors,
    );
    match customer {
        Some(mut customer) if errors.is_empty() => {
            customer.custom = custom;
            Ok(customer)
        }
        _ => Err(errors),
    }
}

/// Puts `display` in `view`'s field `name`, where the customer has a value.
pub(crate) fn set_display(view: &mut CustomerView, name: &str, display: String) {
    let slot = match name {
        "name" => {
            view.name = display;
            return;
        }
        "birth_date" => &mut view.birth_date,
        "phone" => &mut view.phone,
        "id_number" => &mut view.id_number,
        "email" => &mut view.email,
        "address" => &mut view.address,
        "bank_card" => &mut view.bank_card,
        _ => return,
    };
    if slot.is_some() {
        *slot = Some(display);
    }
}

fn field_aad(customer_id: &str, field: SensitiveField, dek_version: i64) -> Vec<u8> {
    Aad {
        table: "customer",
        record_id: customer_id,
        field: field.as_str(),
        key_version: dek_version as u32,
    }
    .encode()
}

fn seal_value(
    cipher: &FieldCipher,
    indexer: &veil_mask::BlindIndexer,
    customer_id: &str,
    dek_version: i64,
    field: SensitiveField,
    normalized: &str,
) -> SealedValue {
    SealedValue {
        ciphertext: cipher.seal(
            &field_aad(customer_id, field, dek_version),
            normalized.as_bytes(),
        ),
        masked: veil_mask::default_display(field_kind(field), normalized),
        blind_index: field
            .has_blind_index()
            .then(|| indexer.index(field.as_str(), normalized).to_vec()),
    }
}

/// A customer's sensitive fields sealed under a fresh data key, and that key wrapped: the part of sealing that
/// needs only the keyring, so that an import can do it on another thread before ownership is settled.
pub(crate) struct SealedFields {
    id: String,
    values: BTreeMap<SensitiveField, SealedValue>,
    key: veil_store::CustomerKeyRow,
    /// The industry's custom fields as reads show them (plain values and masked displays).
    custom_fields: String,
    /// Their sealed values, when any is sensitive.
    custom_sealed: Option<String>,
}

/// Seals `customer`'s fields under a fresh data key wrapped by `keyring`'s current key-encryption key.
pub(crate) fn seal_fields(keyring: &crate::Keyring, customer: &ValidatedCustomer) -> SealedFields {
    let id = CustomerId::new().to_string();
    let dek = SecretKey::generate();
    let cipher = FieldCipher::new(&dek);
    let values = customer
        .values
        .iter()
        .map(|(field, normalized)| {
            (
                *field,
                seal_value(
                    &cipher,
                    keyring.blind_indexer(),
                    &id,
                    INITIAL_DEK_VERSION,
                    *field,
                    normalized,
                ),
            )
        })
        .collect();
    let key = keyring.wrap_customer_key(&id, INITIAL_DEK_VERSION, &dek);
    // The cipher is given, so sealing cannot fail.
    let (custom_fields, custom_sealed) = crate::industries::apply_custom(
        "{}",
        None,
        &customer.custom,
        |_| true,
        Some(&cipher),
        &id,
        INITIAL_DEK_VERSION,
    )
    .unwrap_or_else(|_| ("{}".to_owned(), None));
    SealedFields {
        id,
        values,
        key,
        custom_fields,
        custom_sealed,
    }
}

impl SealedFields {
    /// The stored row: the sealed fields with `customer`'s profile as it is now (owner and team resolved).
    fn into_row(
        self,
        customer: &ValidatedCustomer,
        now: i64,
    ) -> (CustomerRow, veil_store::CustomerKeyRow) {
        let profile = &customer.profile;
        let row = CustomerRow {
            id: self.id,
            dek_version: INITIAL_DEK_VERSION,
            values: self.values,
            custom_sealed: self.custom_sealed,
            profile: CustomerProfile {
                gender: profile.gender.clone(),
                tags: serde_json::to_string(&profile.tags).unwrap_or_else(|_| "[]".to_owned()),
                owner_id: profile.owner.map(|owner| owner.to_string()),
                team: profile.team.clone(),
                source: profile.source.clone(),
                industry: profile.industry.clone(),
                attributes: profile.attributes.clone(),
                custom_fields: self.custom_fields,
                birth_md: customer
                    .values
                    .get(&SensitiveField::BirthDate)
                    .and_then(|birth_date| crate::care::birth_month_day(birth_date)),
                created_at: now,
                updated_at: now,
            },
        };
        (row, self.key)
    }
}

impl Veil {
    pub(crate) fn view(row: MaskedCustomerRow) -> CustomerView {
        let mut masked = row.masked;
        let id = row.id.parse().unwrap_or_default();
        let profile = row.profile;
        let custom = crate::industries::StoredCustom::parse(&profile.custom_fields);
        let masked_fields = masked
            .keys()
            .map(|field| field.as_str().to_owned())
            .chain(custom.masked.iter().map(|key| format!("custom.{key}")))
            .collect();
        CustomerView {
            id,
            name: masked.remove(&SensitiveField::Name).unwrap_or_default(),
            gender: profile.gender,
            birth_date: masked.remove(&SensitiveField::BirthDate),
            phone: masked.remove(&SensitiveField::Phone),
            id_number: masked.remove(&SensitiveField::IdNumber),
            email: masked.remove(&SensitiveField::Email),
            address: masked.remove(&SensitiveField::Address),
            bank_card: masked.remove(&SensitiveField::BankCard),
            tags: serde_json::from_str(&profile.tags).unwrap_or_default(),
            owner: profile.owner_id,
            team: profile.team,
            source: profile.source,
            industry: profile.industry,
            attributes: serde_json::from_str(&profile.attributes)
                .unwrap_or_else(|_| serde_json::Value::Object(Default::default())),
            custom_fields: serde_json::Value::Object(custom.values),
            masked: masked_fields,
            created_at: format_time(profile.created_at),
            updated_at: format_time(profile.updated_at),
        }
    }

    /// Applies the masking policy in force for `actor`'s role to a view built from the write-time displays:
    /// `default_mask` keeps the stored display; `redact` replaces it; `plaintext` shows the original only when an
    /// approved policy-change request put it there (the read is then audited as a reveal under that request before
    /// anything is decrypted), and otherwise keeps the masked display; any other operator's output was computed
    /// when the value was written (or by the re-mask job after a policy change) and is read from
    /// `customer_display` — where it is missing, the field shows fully masked (fail safe). Nothing is decrypted.
    async fn for_role(&self, actor: &Actor, views: &mut [CustomerView]) -> AppResult<()> {
        self.for_role_fields(actor, views, None).await
    }

    /// [`Veil::for_role`] limited to `only` (all fields when `None`): a view that shows a few fields applies the
    /// policy to those alone, so that a plaintext rule on a field it does not show opens nothing.
    pub(crate) async fn for_role_fields(
        &self,
        actor: &Actor,
        views: &mut [CustomerView],
        only: Option<&[SensitiveField]>,
    ) -> AppResult<()> {
        let (_, mut policy) = self.current_policy().await?;
        if let Some(only) = only {
            policy.fields.retain(|name, _| {
                SensitiveField::parse(name).is_some_and(|field| only.contains(&field))
            });
        }
        let role = actor.role.as_str();
        let rule_of = |rules: &veil_mask::policy::FieldPolicy| {
            rules
                .roles
                .get(role)
                .cloned()
                .unwrap_or_else(|| veil_mask::Rule::Apply(rules.display.clone()))
        };
        // The stored displays this role reads, fetched for the whole page at once.
        let wanted: Vec<(String, String)> = policy
            .fields
            .iter()
            .filter_map(|(name, rules)| match rule_of(rules) {
                veil_mask::Rule::Apply(
                    veil_mask::Operator::DefaultMask | veil_mask::Operator::Redact { .. },
                )
                | veil_mask::Rule::Plaintext => None,
                veil_mask::Rule::Apply(operator) => {
                    Some((name.clone(), crate::displays::rule_key(&operator)))
                }
            })
            .collect();
        let stored = if wanted.is_empty() || views.is_empty() {
            Default::default()
        } else {
            let ids: Vec<String> = views.iter().map(|view| view.id.to_string()).collect();
            self.store().displays_for(&ids, &wanted).await?
        };
        // Only a plaintext rule for this role needs to know which changes were approved.
        let mut approved = None;
        for (name, rules) in &policy.fields {
            let rule = rule_of(rules);
            let replacement = match rule {
                veil_mask::Rule::Plaintext => {
                    if approved.is_none() {
                        approved = Some(self.approved_plaintext().await?);
                    }
                    if let Some((_, _, request)) = approved
                        .iter()
                        .flatten()
                        .find(|(field, granted_role, _)| field == name && granted_role == role)
                    {
                        self.unmask_by_policy(actor, name, request, views).await?;
                    }
                    continue;
                }
                veil_mask::Rule::Apply(veil_mask::Operator::DefaultMask) => continue,
                veil_mask::Rule::Apply(veil_mask::Operator::Redact { replacement }) => {
                    replacement.unwrap_or_else(|| veil_mask::display::FULL_MASK.to_owned())
                }
                veil_mask::Rule::Apply(operator) => {
                    // Computed at write time (or by the re-mask job); fully masked until it exists.
                    let key = crate::displays::rule_key(&operator);
                    for view in views.iter_mut() {
                        let found = stored
                            .get(&(view.id.to_string(), name.clone(), key.clone()))
                            .cloned();
                        let display =
                            found.unwrap_or_else(|| veil_mask::display::FULL_MASK.to_owned());
                        set_display(view, name, display);
                    }
                    continue;
                }
            };
            for view in views.iter_mut() {
                set_display(view, name, replacement.clone());
            }
        }
        Ok(())
    }

    /// Shows `field` in clear in `views` under the approved policy change `request`: one audit entry for the read
    /// (customers, field, the request as grant, purpose `policy_change`) is committed first.
    async fn unmask_by_policy(
        &self,
        actor: &Actor,
        name: &str,
        request: &str,
        views: &mut [CustomerView],
    ) -> AppResult<()> {
        let Some(field) = SensitiveField::parse(name) else {
            return Ok(());
        };
        if views.is_empty() {
            return Ok(());
        }
        let mut entry = audit::event(Some(actor), "customer.reveal", Outcome::Ok)
            .customers(views.iter().map(|view| view.id.to_string()))
            .fields([name])
            .detail(serde_json::json!({"by": "policy", "request_id": request}));
        entry.grant_id = Some(request.to_owned());
        entry.purpose = Some("policy_change".to_owned());
        self.record(&[entry]).await?;
        let authority = reveal::RevealAuthority::granted();
        for view in views.iter_mut() {
            let id = view.id.to_string();
            let (Some(row), Some(key_row)) = (
                self.store().customer_row(&id).await?,
                self.store().customer_key(&id).await?,
            ) else {
                continue;
            };
            let mut opened = reveal::open_fields(self, &authority, &row, &key_row, &[field])?;
            let Some(value) = opened.remove(&field) else {
                continue;
            };
            let text = value.to_string();
            match field {
                SensitiveField::Name => view.name = text,
                SensitiveField::BirthDate => view.birth_date = Some(text),
                SensitiveField::Phone => view.phone = Some(text),
                SensitiveField::IdNumber => view.id_number = Some(text),
                SensitiveField::Email => view.email = Some(text),
                SensitiveField::Address => view.address = Some(text),
                SensitiveField::BankCard => view.bank_card = Some(text),
            }
            view.masked.retain(|masked| masked != name);
        }
        Ok(())
    }

    fn masked_view_of(row: &CustomerRow) -> CustomerView {
        Veil::view(MaskedCustomerRow {
            id: row.id.clone(),
            masked: row
                .values
                .iter()
                .map(|(field, value)| (*field, value.masked.clone()))
                .collect(),
            profile: row.profile.clone(),
        })
    }

    /// Refuses a value another customer already has (found through the blind index) unless duplicates are allowed.
    async fn check_duplicates(
        &self,
        sealed: &BTreeMap<SensitiveField, SealedValue>,
        except: Option<&str>,
        fields: &[SensitiveField],
    ) -> AppResult<()> {
        for field in fields {
            if let Some(blind_index) = sealed
                .get(field)
                .and_then(|value| value.blind_index.as_deref())
            {
                let existing = self
                    .store()
                    .customer_ids_by_blind_index(*field, blind_index, except)
                    .await?;
                if let Some(existing) = existing.first() {
                    return Err(AppError::Duplicate {
                        field: field.as_str(),
                        existing: existing.parse().unwrap_or_default(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Fills in and checks owner and team. `owner_teams` caches owners already looked up (batches).
    async fn resolve_ownership(
        &self,
        actor: &Actor,
        profile: &mut ProfileInput,
        owner_teams: &mut HashMap<UserId, Option<String>>,
    ) -> AppResult<()> {
        match (actor.role, profile.owner) {
            (Role::Sales, Some(owner)) if owner != actor.user_id => {
                return Err(AppError::Forbidden(
                    "sales staff can only create customers they own",
                ))
            }
            (_, None) => profile.owner = Some(actor.user_id),
            _ => {}
        }
        let owner = profile.owner.unwrap_or(actor.user_id);
        let owner_team = match owner_teams.get(&owner) {
            Some(team) => team.clone(),
            None => {
                let owner_row = self
                    .store()
                    .user_by_id(&owner.to_string())
                    .await?
                    .ok_or_else(|| {
                        AppError::Validation(vec![FieldError::new(
                            "owner",
                            "unknown",
                            "no such user",
                        )])
                    })?;
                owner_teams.insert(owner, owner_row.team.clone());
                owner_row.team
            }
        };
        if profile.team.is_none() {
            profile.team = owner_team;
        }
        if actor.role == Role::Manager && actor.team.is_some() && profile.team != actor.team {
            return Err(AppError::Forbidden(
                "managers can only place customers in their own team",
            ));
        }
        Ok(())
    }

    /// [`validate_input`] plus the custom fields, checked against the industry's template (which may hold fields
    /// an admin added, so it needs the database); all errors at once. See [`validate_input_with_custom`].
    async fn validate_with_custom(&self, input: &CustomerInput) -> AppResult<ValidatedCustomer> {
        let defs = if crate::industries::has_custom_values(input.custom_fields.as_ref()) {
            self.industry_field_defs(input_industry(input)).await?
        } else {
            None
        };
        validate_input_with_custom(input, defs.as_deref()).map_err(AppError::Validation)
    }

    /// Seals a validated customer under a fresh data key.
    fn seal_customer(
        &self,
        customer: &ValidatedCustomer,
        now: i64,
    ) -> (CustomerRow, veil_store::CustomerKeyRow) {
        seal_fields(&self.keyring(), customer).into_row(customer, now)
    }

    /// Fills in and checks owner and team of a validated customer (imports: once per row, owners cached).
    pub(crate) async fn resolve_customer_ownership(
        &self,
        actor: &Actor,
        customer: &mut ValidatedCustomer,
        owner_teams: &mut HashMap<UserId, Option<String>>,
    ) -> AppResult<()> {
        self.resolve_ownership(actor, &mut customer.profile, owner_teams)
            .await
    }

    /// Inserts sealed customers; if a key rotation retired the KEK under us, reloads the keyring and reseals once.
    /// The audit entry (`action`, by `actor`) is written in the same transaction and names every new customer.
    async fn insert_sealed(
        &self,
        customers: &[ValidatedCustomer],
        actor: &Actor,
        action: &str,
    ) -> AppResult<Vec<(CustomerRow, veil_store::CustomerKeyRow)>> {
        self.insert_sealed_in_stage(
            customers,
            actor,
            action,
            veil_store::customers::LIFECYCLE_CUSTOMER,
        )
        .await
    }

    /// [`Veil::insert_sealed`] in a lifecycle stage (`lead` or `customer`).
    async fn insert_sealed_in_stage(
        &self,
        customers: &[ValidatedCustomer],
        actor: &Actor,
        action: &str,
        lifecycle: &str,
    ) -> AppResult<Vec<(CustomerRow, veil_store::CustomerKeyRow)>> {
        self.insert_validated(
            customers,
            None,
            actor,
            action,
            serde_json::json!({"count": customers.len()}),
            None,
            lifecycle,
        )
        .await
    }

    /// [`Veil::insert_sealed`] with the audit entry's `detail`, an import job advanced in the same transaction
    /// (imports), and the lifecycle stage (`lead` or `customer`). `presealed`, one per customer in order, are
    /// their fields already sealed (an import seals on its reading thread); they are sealed again here if a key
    /// rotation retired the key-encryption key they were wrapped under.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_validated(
        &self,
        customers: &[ValidatedCustomer],
        presealed: Option<Vec<SealedFields>>,
        actor: &Actor,
        action: &str,
        detail: serde_json::Value,
        import: Option<&veil_store::ImportBatchWrite>,
        lifecycle: &str,
    ) -> AppResult<Vec<(CustomerRow, veil_store::CustomerKeyRow)>> {
        self.insert_validated_in(
            self.store(),
            customers,
            presealed,
            actor,
            action,
            detail,
            import,
            lifecycle,
        )
        .await
    }

    /// [`Veil::insert_validated`] through `store` (an import's bulk session).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn insert_validated_in(
        &self,
        store: &veil_store::Store,
        customers: &[ValidatedCustomer],
        presealed: Option<Vec<SealedFields>>,
        actor: &Actor,
        action: &str,
        detail: serde_json::Value,
        import: Option<&veil_store::ImportBatchWrite>,
        lifecycle: &str,
    ) -> AppResult<Vec<(CustomerRow, veil_store::CustomerKeyRow)>> {
        let (rules, keys) = self.display_rules().await?;
        let mut presealed = presealed.filter(|sealed| sealed.len() == customers.len());
        for attempt in 0..2 {
            let now = now_ms();
            let sealed: Vec<_> = match presealed.take() {
                Some(sealed) => sealed
                    .into_iter()
                    .zip(customers)
                    .map(|(fields, customer)| fields.into_row(customer, now))
                    .collect(),
                None => customers
                    .iter()
                    .map(|customer| self.seal_customer(customer, now))
                    .collect(),
            };
            let mut displays = veil_store::DisplayWrite::default();
            if !rules.is_empty() {
                let mut vault = match rules.uses_vault() {
                    true => Some(crate::vault::StagedVault::new(
                        self.vault_keys().await?,
                        None,
                    )),
                    false => None,
                };
                for ((row, _), customer) in sealed.iter().zip(customers) {
                    if let Some(vault) = vault.as_mut() {
                        vault.set_customer(Some(row.id.clone()));
                    }
                    for (field, normalized) in &customer.values {
                        if let Some(vault) = vault.as_mut() {
                            rules.prefetch(self, vault, *field, normalized).await?;
                        }
                        rules.compute(
                            &keys,
                            &row.id,
                            *field,
                            normalized,
                            vault.as_mut(),
                            &mut displays.rows,
                        );
                    }
                }
                displays.vault = vault
                    .map(crate::vault::StagedVault::into_rows)
                    .unwrap_or_default();
            }
            let fields: BTreeSet<String> = sealed
                .iter()
                .flat_map(|(row, _)| row.values.keys().map(|field| field.as_str().to_owned()))
                .chain(
                    customers
                        .iter()
                        .flat_map(|customer| customer.custom.audit_fields()),
                )
                .collect();
            let entry = audit::event(Some(actor), action, Outcome::Ok)
                .customers(sealed.iter().map(|(row, _)| row.id.clone()))
                .fields(fields)
                .detail(detail.clone());
            match store
                .insert_customers_with(&sealed, &displays, &[entry], import, lifecycle)
                .await
            {
                Ok(()) => return Ok(sealed),
                Err(StoreError::StaleKey) if attempt == 0 => self.reload_keyring().await?,
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Internal(
            "key-encryption key changed twice during one write".to_owned(),
        ))
    }

    /// Creates a customer after validation and (unless `allow_duplicate`) a duplicate check on mobile and ID number.
    pub async fn create_customer(
        &self,
        actor: &Actor,
        input: &CustomerInput,
        allow_duplicate: bool,
    ) -> AppResult<CustomerView> {
        self.create_customer_in_stage(
            actor,
            input,
            allow_duplicate,
            veil_store::customers::LIFECYCLE_CUSTOMER,
        )
        .await
    }

    /// [`Veil::create_customer`] in a lifecycle stage: a lead (`lead`, audited as `lead.create`) goes through the
    /// same validation, sealing, masking and duplicate check as a customer.
    pub(crate) async fn create_customer_in_stage(
        &self,
        actor: &Actor,
        input: &CustomerInput,
        allow_duplicate: bool,
        lifecycle: &str,
    ) -> AppResult<CustomerView> {
        self.authorize(actor, Action::CustomerCreate, None).await?;
        let mut customer = self.validate_with_custom(input).await?;
        self.resolve_ownership(actor, &mut customer.profile, &mut HashMap::new())
            .await?;
        if !allow_duplicate {
            let keyring = self.keyring();
            let probe: BTreeMap<SensitiveField, SealedValue> =
                [SensitiveField::Phone, SensitiveField::IdNumber]
                    .into_iter()
                    .filter_map(|field| {
                        customer.values.get(&field).map(|normalized| {
                            let blind_index =
                                keyring.blind_indexer().index(field.as_str(), normalized);
                            (
                                field,
                                SealedValue {
                                    ciphertext: Vec::new(),
                                    masked: String::new(),
                                    blind_index: Some(blind_index.to_vec()),
                                },
                            )
                        })
                    })
                    .collect();
            self.check_duplicates(
                &probe,
                None,
                &[SensitiveField::Phone, SensitiveField::IdNumber],
            )
            .await?;
        }
        let action = match lifecycle {
            veil_store::customers::LIFECYCLE_LEAD => "lead.create",
            _ => "customer.create",
        };
        let sealed = self
            .insert_sealed_in_stage(std::slice::from_ref(&customer), actor, action, lifecycle)
            .await?;
        let (row, _) = &sealed[0];
        tracing::info!(customer = %row.id, actor = %actor.user_id, "customer created");
        Ok(Veil::masked_view_of(row))
    }

    /// Creates many customers in one transaction (imports, demo data, benchmarks). No duplicate check.
    pub async fn create_customers_batch(
        &self,
        actor: &Actor,
        inputs: &[CustomerInput],
    ) -> AppResult<Vec<CustomerId>> {
        self.authorize(actor, Action::CustomerCreate, None).await?;
        let mut customers = Vec::with_capacity(inputs.len());
        let mut owner_teams = HashMap::new();
        for (index, input) in inputs.iter().enumerate() {
            let mut customer =
                self.validate_with_custom(input)
                    .await
                    .map_err(|error| match error {
                        AppError::Validation(errors) => AppError::Validation(
                            errors
                                .into_iter()
                                .map(|error| FieldError {
                                    field: format!("[{index}].{}", error.field),
                                    ..error
                                })
                                .collect(),
                        ),
                        other => other,
                    })?;
            self.resolve_ownership(actor, &mut customer.profile, &mut owner_teams)
                .await?;
            customers.push(customer);
        }
        let sealed = self
            .insert_sealed(&customers, actor, "customer.import")
            .await?;
        Ok(sealed
            .iter()
            .map(|(row, _)| row.id.parse().unwrap_or_default())
            .collect())
    }

    /// One customer, masked. Customers outside the caller's scope are reported as not found.
    pub async fn get_customer(&self, actor: &Actor, id: CustomerId) -> AppResult<CustomerView> {
        let row = self
            .store()
            .masked_customer(&id.to_string())
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, Action::CustomerRead, Some((&row.id, &row.profile)))
            .await?;
        self.record(&[audit::event(Some(actor), "customer.read", Outcome::Ok)
            .customers([row.id.clone()])
            .fields(row.masked.keys().map(|field| field.as_str()))])
            .await?;
        let mut views = [Veil::view(row)];
        self.for_role(actor, &mut views).await?;
        let [view] = views;
        Ok(view)
    }

    /// A page of the caller's customers, newest first.
    pub async fn list_customers(
        &self,
        actor: &Actor,
        cursor: Option<&str>,
        limit: u32,
    ) -> AppResult<CustomerPage> {
        self.list_customers_where(
            actor,
            &crate::segments::ListFilter::default(),
            cursor,
            limit,
        )
        .await
    }

    /// A page of the caller's customers matching `filter` (inside the caller's scope), newest first.
    pub async fn list_customers_where(
        &self,
        actor: &Actor,
        filter: &crate::segments::ListFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> AppResult<CustomerPage> {
        let scope = self.authorize(actor, Action::CustomerList, None).await?;
        let filter = filter.validated()?;
        let cursor = match cursor {
            Some(text) => Some(
                text.parse::<CustomerId>()
                    .map_err(|_| {
                        AppError::Validation(vec![FieldError::new(
                            "cursor",
                            "invalid",
                            "is not a cursor returned by this API",
                        )])
                    })?
                    .to_string(),
            ),
            None => None,
        };
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let mut rows = self
            .store()
            .list_masked_customers(&scope, &filter, cursor.as_deref(), i64::from(limit) + 1)
            .await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        self.record(&[audit::event(Some(actor), "customer.list", Outcome::Ok)
            .customers(rows.iter().map(|row| row.id.clone()))
            .detail(
                serde_json::json!({"returned": rows.len(), "paged": cursor.is_some(),
                                       "filter": filter}),
            )])
        .await?;
        let mut items: Vec<CustomerView> = rows.into_iter().map(Veil::view).collect();
        self.for_role(actor, &mut items).await?;
        Ok(CustomerPage { items, next_cursor })
    }

    /// How many of the caller's customers (their scope, as for the list) each industry has, largest first: the
    /// dashboard's numbers. Grouped counts only; recorded like a listing.
    pub async fn customer_industry_counts(
        &self,
        actor: &Actor,
    ) -> AppResult<Vec<(Option<String>, i64)>> {
        let scope = self.authorize(actor, Action::CustomerList, None).await?;
        let counts = self.store().customer_industry_counts(&scope, 1000).await?;
        self.record(&[audit::event(Some(actor), "customer.count", Outcome::Ok)
            .detail(serde_json::json!({"groups": counts.len(), "by": "industry"}))])
            .await?;
        Ok(counts)
    }

    /// Exact search on a blind-indexed field, inside the caller's scope. The value is normalised first
    /// (so `+86 138-1234-5678` finds `13812345678`) and never logged.
    pub async fn search_customers(
        &self,
        actor: &Actor,
        search: &ExactSearch,
    ) -> AppResult<Vec<CustomerView>> {
        let scope = self.authorize(actor, Action::CustomerList, None).await?;
        if !search.field.has_blind_index() {
            return Err(AppError::Validation(vec![FieldError::new(
                search.field.as_str(),
                "not_searchable",
                "this field cannot be searched",
            )]));
        }
        let mut errors = Vec::new();
        let Some(validated) = validate_sensitive(search.field, &search.value, &mut errors) else {
            return Err(AppError::Validation(errors));
        };
        let blind_index = self
            .keyring()
            .blind_indexer()
            .index(search.field.as_str(), &validated.normalized);
        tracing::info!(field = search.field.as_str(), actor = %actor.user_id, "exact search");
        let rows = self
            .store()
            .find_by_blind_index(search.field, &blind_index, &scope, i64::from(MAX_PAGE_SIZE))
            .await?;
        // That a search happened and on which field; never the value searched for.
        self.record(&[audit::event(Some(actor), "customer.search", Outcome::Ok)
            .customers(rows.iter().map(|row| row.id.clone()))
            .fields([search.field.as_str()])
            .detail(serde_json::json!({"matches": rows.len()}))])
            .await?;
        let mut views: Vec<CustomerView> = rows.into_iter().map(Veil::view).collect();
        self.for_role(actor, &mut views).await?;
        Ok(views)
    }

    /// Applies a partial update: changed sensitive fields are re-validated, re-sealed, re-masked and re-indexed.
    pub async fn update_customer(
        &self,
        actor: &Actor,
        id: CustomerId,
        patch: &CustomerPatch,
        allow_duplicate: bool,
    ) -> AppResult<CustomerView> {
        let mut row = self
            .store()
            .customer_row(&id.to_string())
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, Action::CustomerUpdate, Some((&row.id, &row.profile)))
            .await?;
        let expected_updated_at = row.profile.updated_at;
        let mut errors = Vec::new();
        let changes: [(SensitiveField, Option<Option<&String>>); 7] = [
            (SensitiveField::Name, patch.name.as_ref().map(Some)),
            (
                SensitiveField::BirthDate,
                patch.birth_date.as_ref().map(Option::as_ref),
            ),
            (
                SensitiveField::Phone,
                patch.phone.as_ref().map(Option::as_ref),
            ),
            (
                SensitiveField::IdNumber,
                patch.id_number.as_ref().map(Option::as_ref),
            ),
            (
                SensitiveField::Email,
                patch.email.as_ref().map(Option::as_ref),
            ),
            (
                SensitiveField::Address,
                patch.address.as_ref().map(Option::as_ref),
            ),
            (
                SensitiveField::BankCard,
                patch.bank_card.as_ref().map(Option::as_ref),
            ),
        ];
        let mut new_values: BTreeMap<SensitiveField, Option<String>> = BTreeMap::new();
        let mut id_details = None;
        for (field, change) in changes {
            match change {
                None => {}
                Some(None) => {
                    new_values.insert(field, None);
                }
                Some(Some(raw)) => {
                    if let Some(validated) = validate_sensitive(field, raw, &mut errors) {
                        if let Details::CnId(info) = validated.details {
                            id_details = Some(info);
                        }
                        new_values.insert(field, Some(validated.normalized));
                    }
                }
            }
        }
        if let Some(info) = &id_details {
            let encoded = info.birth_date.to_string();
            match new_values.get(&SensitiveField::BirthDate) {
                Some(Some(given)) if *given != encoded => errors.push(FieldError::new(
                    "birth_date",
                    "mismatch",
                    "does not match the birth date encoded in id_number",
                )),
                Some(_) => {}
                None => {
                    new_values.insert(SensitiveField::BirthDate, Some(encoded));
                }
            }
        }
        let mut profile = row.profile.clone();
        if let Some(gender) = &patch.gender {
            profile.gender = gender
                .as_deref()
                .and_then(|value| validate_gender(value, &mut errors));
        }
        if let Some(tags) = &patch.tags {
            profile.tags = serde_json::to_string(&validate_tags(tags, &mut errors))
                .unwrap_or_else(|_| "[]".to_owned());
        }
        for (name, patch_value, target) in [
            ("team", &patch.team, &mut profile.team),
            ("source", &patch.source, &mut profile.source),
            ("industry", &patch.industry, &mut profile.industry),
        ] {
            if let Some(value) = patch_value {
                *target = value
                    .as_deref()
                    .and_then(|value| validate_short_text(name, value, &mut errors));
            }
        }
        if let Some(attributes) = &patch.attributes {
            profile.attributes = validate_attributes(attributes, &mut errors);
        }
        if actor.role == Role::Manager && actor.team.is_some() && profile.team != actor.team {
            errors.push(FieldError::new(
                "team",
                "forbidden",
                "managers can only place customers in their own team",
            ));
        }
        // Custom fields: checked against the (possibly new) industry's template; values of fields that industry
        // does not define are dropped when the industry changes.
        let custom_changed = patch.custom_fields.is_some() || patch.industry.is_some();
        let custom_defs = match custom_changed {
            true => {
                self.industry_field_defs(profile.industry.as_deref())
                    .await?
            }
            false => None,
        };
        let custom = match &patch.custom_fields {
            Some(value) if !value.as_object().is_some_and(serde_json::Map::is_empty) => {
                crate::industries::validate_custom(
                    profile.industry.as_deref(),
                    custom_defs.as_deref(),
                    value,
                    &mut errors,
                )
            }
            _ => Default::default(),
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let key_row = self
            .store()
            .customer_key(&row.id)
            .await?
            .ok_or_else(|| AppError::Internal("customer has no data key".to_owned()))?;
        let dek = self.unwrap_customer_key(&key_row).await?;
        let keyring = self.keyring();
        let cipher = FieldCipher::new(&dek);
        let mut changed_searchable = Vec::new();
        let mut changed_fields: Vec<String> = new_values
            .keys()
            .map(|field| field.as_str().to_owned())
            .collect();
        if custom_changed {
            let before = crate::industries::StoredCustom::parse(&row.profile.custom_fields);
            let defined = |key: &str| {
                custom_defs
                    .as_ref()
                    .is_some_and(|defs| defs.iter().any(|def| def.key == key))
            };
            changed_fields.extend(
                before
                    .values
                    .keys()
                    .filter(|key| !defined(key.as_str()))
                    .map(|key| format!("custom.{key}")),
            );
            changed_fields.extend(custom.audit_fields());
            let (custom_fields, custom_sealed) = crate::industries::apply_custom(
                &row.profile.custom_fields,
                row.custom_sealed.as_deref(),
                &custom,
                defined,
                Some(&cipher),
                &row.id,
                row.dek_version,
            )?;
            profile.custom_fields = custom_fields;
            row.custom_sealed = custom_sealed;
        }
        let (rules, keys) = self.display_rules().await?;
        let mut displays = veil_store::DisplayWrite::default();
        let mut vault = match rules.uses_vault() {
            true => Some(crate::vault::StagedVault::new(
                self.vault_keys().await?,
                Some(row.id.clone()),
            )),
            false => None,
        };
        for (field, value) in new_values {
            if field == SensitiveField::BirthDate {
                profile.birth_md = value.as_deref().and_then(crate::care::birth_month_day);
            }
            displays
                .replaced
                .push((row.id.clone(), field.as_str().to_owned()));
            match value {
                None => {
                    row.values.remove(&field);
                }
                Some(normalized) => {
                    if let Some(vault) = vault.as_mut() {
                        rules.prefetch(self, vault, field, &normalized).await?;
                    }
                    rules.compute(
                        &keys,
                        &row.id,
                        field,
                        &normalized,
                        vault.as_mut(),
                        &mut displays.rows,
                    );
                    if field.has_blind_index() {
                        changed_searchable.push(field);
                    }
                    row.values.insert(
                        field,
                        seal_value(
                            &cipher,
                            keyring.blind_indexer(),
                            &row.id,
                            row.dek_version,
                            field,
                            &normalized,
                        ),
                    );
                }
            }
        }
        displays.vault = vault
            .map(crate::vault::StagedVault::into_rows)
            .unwrap_or_default();
        if !allow_duplicate {
            let checked: Vec<SensitiveField> = changed_searchable
                .into_iter()
                .filter(|field| matches!(field, SensitiveField::Phone | SensitiveField::IdNumber))
                .collect();
            self.check_duplicates(&row.values, Some(&row.id), &checked)
                .await?;
        }
        profile.updated_at = now_ms().max(expected_updated_at + 1);
        for (name, changed) in [
            ("gender", patch.gender.is_some()),
            ("tags", patch.tags.is_some()),
            ("team", patch.team.is_some()),
            ("source", patch.source.is_some()),
            ("industry", patch.industry.is_some()),
            ("attributes", patch.attributes.is_some()),
        ] {
            if changed {
                changed_fields.push(name.to_owned());
            }
        }
        row.profile = profile;
        let entry = audit::event(Some(actor), "customer.update", Outcome::Ok)
            .customers([row.id.clone()])
            .fields(changed_fields);
        self.store()
            .update_customer(&row, expected_updated_at, &displays, &[entry])
            .await
            .map_err(|error| match error {
                StoreError::StaleWrite => AppError::Conflict(
                    "the customer was changed by someone else; reload and retry".to_owned(),
                ),
                other => other.into(),
            })?;
        tracing::info!(customer = %row.id, actor = %actor.user_id, "customer updated");
        Ok(Veil::masked_view_of(&row))
    }

    /// Erases a customer: the data key is destroyed (crypto-shredding) and the row deleted; the erasure is
    /// recorded so that restored backups can be shredded again.
    pub async fn delete_customer(&self, actor: &Actor, id: CustomerId) -> AppResult<()> {
        let id_text = id.to_string();
        let row = self
            .store()
            .masked_customer(&id_text)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, Action::CustomerErase, Some((&row.id, &row.profile)))
            .await?;
        let entry = audit::event(Some(actor), "customer.erase", Outcome::Ok)
            .customers([id_text.clone()])
            .detail(serde_json::json!({"method": "data key destroyed"}));
        let erased = self
            .store()
            .erase_customer(
                &id_text,
                Some(&actor.user_id.to_string()),
                now_ms(),
                &[entry],
            )
            .await?;
        if !erased {
            return Err(AppError::NotFound);
        }
        tracing::info!(customer = %id_text, actor = %actor.user_id, "customer erased (data key destroyed)");
        Ok(())
    }

    /// Number of customers in the database (all scopes).
    pub async fn count_customers(&self) -> AppResult<i64> {
        Ok(self.store().count_customers().await?)
    }
}

/// Decryption of stored fields. The only way in is a [`RevealAuthority`], which code outside this crate cannot
/// construct: the governed reveal path (grants, audit first) will be its only constructor.
pub mod reveal {
    use super::*;
    use zeroize::Zeroizing;

    /// Proof that a reveal was authorised. Private constructor: only code in this crate can make one.
    #[derive(Debug)]
    pub struct RevealAuthority {
        _private: (),
    }

    impl RevealAuthority {
        #[cfg(test)]
        pub(crate) fn for_tests() -> Self {
            RevealAuthority { _private: () }
        }

        /// For the governed reveal, after its grant was checked and used and the audit entry committed.
        pub(crate) fn granted() -> Self {
            RevealAuthority { _private: () }
        }

        /// For internal verification (key rotation checks) that never returns plaintext to a caller.
        pub(crate) fn internal_verification() -> Self {
            RevealAuthority { _private: () }
        }

        /// For the care reminders' backfill, which keeps the month and day of a birth date and returns nothing.
        pub(crate) fn birthday_backfill() -> Self {
            RevealAuthority { _private: () }
        }

        /// For a pseudonymised export, which turns originals into partner pseudonyms and returns none of them.
        pub(crate) fn pseudonymise() -> Self {
            RevealAuthority { _private: () }
        }

        /// For the re-mask job, which turns originals into masked displays and returns none of them.
        pub(crate) fn remask() -> Self {
            RevealAuthority { _private: () }
        }

        /// For sending a message to a customer: the server uses the address or number (and the surname) to
        /// deliver it and returns none of them to the sender.
        pub(crate) fn message_send() -> Self {
            RevealAuthority { _private: () }
        }
    }

    /// Decrypts the requested fields of one stored customer row.
    pub fn open_fields(
        veil: &Veil,
        _authority: &RevealAuthority,
        row: &CustomerRow,
        key_row: &veil_store::CustomerKeyRow,
        fields: &[SensitiveField],
    ) -> AppResult<BTreeMap<SensitiveField, Zeroizing<String>>> {
        open_with_keyring(&veil.keyring(), row, key_row, fields)
    }

    fn open_with_keyring(
        keyring: &crate::Keyring,
        row: &CustomerRow,
        key_row: &veil_store::CustomerKeyRow,
        fields: &[SensitiveField],
    ) -> AppResult<BTreeMap<SensitiveField, Zeroizing<String>>> {
        let dek = keyring.unwrap_customer_key(key_row)?;
        let cipher = FieldCipher::new(&dek);
        let mut out = BTreeMap::new();
        for field in fields {
            if let Some(value) = row.values.get(field) {
                let plaintext = cipher.open(
                    &field_aad(&row.id, *field, row.dek_version),
                    &value.ciphertext,
                )?;
                let text = String::from_utf8(plaintext.to_vec())
                    .map_err(|_| AppError::Internal("stored plaintext is not UTF-8".to_owned()))?;
                out.insert(*field, Zeroizing::new(text));
            }
        }
        Ok(out)
    }

    /// Decrypts every field of one stored customer with `keyring` (that of a restored backup) and drops the
    /// plaintext at once, zeroized: proves a copy of the data is readable without returning any of it. Returns how
    /// many fields were opened.
    pub(crate) fn verify_decrypts(
        keyring: &crate::Keyring,
        _authority: &RevealAuthority,
        row: &CustomerRow,
        key_row: &veil_store::CustomerKeyRow,
    ) -> AppResult<usize> {
        Ok(open_with_keyring(keyring, row, key_row, &SensitiveField::ALL)?.len())
    }

    /// Why a reveal happens, for the audit entry written before it.
    #[derive(Debug, Clone, Default)]
    pub struct RevealContext {
        /// The grant relied on.
        pub grant_id: Option<String>,
        /// The declared purpose.
        pub purpose: Option<String>,
    }

    /// The reveal path: records the reveal (who, which customer, which fields, grant, purpose) in the audit
    /// trail first and decrypts only once that entry is committed. If the entry cannot be written nothing is
    /// decrypted and [`AppError::AuditUnavailable`] is returned (fail closed).
    pub async fn reveal_fields(
        veil: &Veil,
        authority: &RevealAuthority,
        actor: &Actor,
        customer_id: &str,
        fields: &[SensitiveField],
        context: &RevealContext,
    ) -> AppResult<BTreeMap<SensitiveField, Zeroizing<String>>> {
        if let Err(refusal) = veil.ensure_not_locked_down().await {
            let entry = audit::event(Some(actor), "customer.reveal", Outcome::Denied)
                .customers([customer_id.to_owned()])
                .fields(fields.iter().map(|field| field.as_str()))
                .detail(serde_json::json!({"reason": "incident lock-down"}));
            veil.record_best_effort(&[entry]).await;
            return Err(refusal);
        }
        let row = veil
            .store()
            .customer_row(customer_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let key_row = veil
            .store()
            .customer_key(customer_id)
            .await?
            .ok_or(AppError::NotFound)?;
        let mut entry = audit::event(Some(actor), "customer.reveal", Outcome::Ok)
            .customers([customer_id.to_owned()])
            .fields(fields.iter().map(|field| field.as_str()));
        entry.grant_id = context.grant_id.clone();
        entry.purpose = context.purpose.clone();
        veil.record(&[entry]).await?;
        open_fields(veil, authority, &row, &key_row, fields)
    }

    /// Decrypts every field of every customer without returning anything: proves all data is still readable
    /// (after a key rotation). Returns how many customers were checked.
    pub async fn verify_all_decrypt(veil: &Veil) -> AppResult<u64> {
        let authority = RevealAuthority::internal_verification();
        let mut checked = 0u64;
        let mut cursor: Option<String> = None;
        loop {
            let page = veil
                .store()
                .list_masked_customers(
                    &CustomerScope::default(),
                    &Default::default(),
                    cursor.as_deref(),
                    500,
                )
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            cursor = Some(last.id.clone());
            for masked in page {
                let row = veil
                    .store()
                    .customer_row(&masked.id)
                    .await?
                    .ok_or(AppError::NotFound)?;
                let key_row = veil
                    .store()
                    .customer_key(&masked.id)
                    .await?
                    .ok_or_else(|| AppError::Internal("customer has no data key".to_owned()))?;
                open_fields(veil, &authority, &row, &key_row, &SensitiveField::ALL)?;
                checked += 1;
            }
        }
        Ok(checked)
    }
}
