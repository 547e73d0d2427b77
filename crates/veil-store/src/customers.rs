//! Customer rows: for every sensitive field the ciphertext, the masked display value and (for searchable fields)
//! the blind index, plus the non-sensitive profile. Reads that serve lists and searches select masked columns only.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use sqlx::Row;

use crate::keyring::CustomerKeyRow;
use crate::{with_pool, Store, StoreError, StoreResult};

/// The sensitive fields of a customer, each stored as ciphertext + masked value (+ blind index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SensitiveField {
    /// Full name.
    Name,
    /// Date of birth.
    BirthDate,
    /// Mobile number.
    Phone,
    /// Resident ID number.
    IdNumber,
    /// Email address.
    Email,
    /// Postal address.
    Address,
    /// Bank card number.
    BankCard,
}

impl SensitiveField {
    /// Every sensitive field, in column order.
    pub const ALL: [SensitiveField; 7] = [
        SensitiveField::Name,
        SensitiveField::BirthDate,
        SensitiveField::Phone,
        SensitiveField::IdNumber,
        SensitiveField::Email,
        SensitiveField::Address,
        SensitiveField::BankCard,
    ];

    /// The JSON and column-prefix name (`phone`, `id_number`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SensitiveField::Name => "name",
            SensitiveField::BirthDate => "birth_date",
            SensitiveField::Phone => "phone",
            SensitiveField::IdNumber => "id_number",
            SensitiveField::Email => "email",
            SensitiveField::Address => "address",
            SensitiveField::BankCard => "bank_card",
        }
    }

    /// Parses a field name.
    pub fn parse(name: &str) -> Option<SensitiveField> {
        SensitiveField::ALL
            .into_iter()
            .find(|field| field.as_str() == name)
    }

    /// Whether the field has a blind index for exact search and de-duplication.
    pub fn has_blind_index(self) -> bool {
        matches!(
            self,
            SensitiveField::Phone
                | SensitiveField::IdNumber
                | SensitiveField::Email
                | SensitiveField::BankCard
        )
    }

    fn ciphertext_column(self) -> &'static str {
        match self {
            SensitiveField::Name => "name_ct",
            SensitiveField::BirthDate => "birth_date_ct",
            SensitiveField::Phone => "phone_ct",
            SensitiveField::IdNumber => "id_number_ct",
            SensitiveField::Email => "email_ct",
            SensitiveField::Address => "address_ct",
            SensitiveField::BankCard => "bank_card_ct",
        }
    }

    fn masked_column(self) -> &'static str {
        match self {
            SensitiveField::Name => "name_masked",
            SensitiveField::BirthDate => "birth_date_masked",
            SensitiveField::Phone => "phone_masked",
            SensitiveField::IdNumber => "id_number_masked",
            SensitiveField::Email => "email_masked",
            SensitiveField::Address => "address_masked",
            SensitiveField::BankCard => "bank_card_masked",
        }
    }

    pub(crate) fn blind_index_column(self) -> Option<&'static str> {
        match self {
            SensitiveField::Phone => Some("phone_bidx"),
            SensitiveField::IdNumber => Some("id_number_bidx"),
            SensitiveField::Email => Some("email_bidx"),
            SensitiveField::BankCard => Some("bank_card_bidx"),
            _ => None,
        }
    }
}

/// What is stored for one sensitive value.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    /// AEAD ciphertext bound to table, record, field and key version.
    pub ciphertext: Vec<u8>,
    /// Display value computed at write time.
    pub masked: String,
    /// Blind index, for searchable fields.
    pub blind_index: Option<Vec<u8>>,
}

impl std::fmt::Debug for SealedValue {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SealedValue")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("masked", &self.masked)
            .finish_non_exhaustive()
    }
}

/// The non-sensitive part of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerProfile {
    /// `male`, `female`, or other declared values.
    pub gender: Option<String>,
    /// JSON array of strings.
    pub tags: String,
    /// Owning user id.
    pub owner_id: Option<String>,
    /// Owning team.
    pub team: Option<String>,
    /// Lead source.
    pub source: Option<String>,
    /// Industry template.
    pub industry: Option<String>,
    /// JSON object of free-form attributes.
    pub attributes: String,
    /// The industry template's custom fields as reads show them (JSON written by `veil-app`: non-sensitive
    /// values, and only masked displays of sensitive ones).
    pub custom_fields: String,
    /// Month and day of the birthday (`MM-DD`), derived when the customer is written: care reminders find
    /// birthdays with it without decrypting. Not personal data on its own (the year stays sealed).
    pub birth_md: Option<String>,
    /// Creation time, Unix ms.
    pub created_at: i64,
    /// Last change, Unix ms.
    pub updated_at: i64,
}

/// A whole customer as stored (ciphertexts included): for writes and for the reveal path.
#[derive(Debug, Clone)]
pub struct CustomerRow {
    /// Customer id (UUIDv7 text).
    pub id: String,
    /// Version of the customer's data key the ciphertexts are sealed under.
    pub dek_version: i64,
    /// The sensitive values present.
    pub values: BTreeMap<SensitiveField, SealedValue>,
    /// Ciphertexts of sensitive custom fields (JSON written by `veil-app`), if any. Not in masked selects.
    pub custom_sealed: Option<String>,
    /// The rest.
    pub profile: CustomerProfile,
}

/// A customer as lists and searches see it: masked values only, no ciphertext.
#[derive(Debug, Clone)]
pub struct MaskedCustomerRow {
    /// Customer id.
    pub id: String,
    /// Masked display value of each present sensitive field.
    pub masked: BTreeMap<SensitiveField, String>,
    /// The rest.
    pub profile: CustomerProfile,
}

/// Restricts which customers a query may see.
#[derive(Debug, Clone, Default)]
pub struct CustomerScope {
    /// Only customers owned by this user.
    pub owner_id: Option<String>,
    /// Only customers of one of these teams.
    pub teams: Option<Vec<String>>,
    /// Only customers linked to this (service) user.
    pub linked_user: Option<String>,
}

/// Narrows a listing by what the user picks (the scope still applies): every given criterion must hold.
/// None of these is personal data, so a filter may be stored (saved segments) and logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CustomerFilter {
    /// Owned by this user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Of this team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Carrying this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Of this industry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
}

impl CustomerFilter {
    /// Whether nothing narrows the listing.
    pub fn is_empty(&self) -> bool {
        self.owner.is_none() && self.team.is_none() && self.tag.is_none() && self.industry.is_none()
    }
}

/// Adds the filter's conditions. Tags are a JSON array of strings in a TEXT column, searched element by element
/// with each backend's JSON functions (a substring match would confuse `vip` with `vip2`).
fn filter_clause(
    filter: &CustomerFilter,
    backend: crate::Backend,
    next_placeholder: &mut usize,
    clauses: &mut Vec<String>,
) {
    let mut equal = |column: &str, value: &Option<String>, clauses: &mut Vec<String>| {
        if value.is_some() {
            clauses.push(format!("{column} = ${next_placeholder}"));
            *next_placeholder += 1;
        }
    };
    equal("owner_id", &filter.owner, clauses);
    equal("team", &filter.team, clauses);
    equal("industry", &filter.industry, clauses);
    if filter.tag.is_some() {
        clauses.push(match backend {
            crate::Backend::Sqlite => format!(
                "EXISTS (SELECT 1 FROM json_each(customer.tags) WHERE json_each.value = ${next_placeholder})"
            ),
            crate::Backend::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements_text(customer.tags::jsonb) AS tag(value) \
                 WHERE tag.value = ${next_placeholder})"
            ),
        });
        *next_placeholder += 1;
    }
}

/// Binds [`filter_clause`]'s values in its order.
macro_rules! bind_filter {
    ($query:expr, $filter:expr) => {{
        let mut query = $query;
        for value in [
            &$filter.owner,
            &$filter.team,
            &$filter.industry,
            &$filter.tag,
        ]
        .into_iter()
        .flatten()
        {
            query = query.bind(value.as_str());
        }
        query
    }};
}

const PROFILE_COLUMNS: [&str; 11] = [
    "gender",
    "tags",
    "owner_id",
    "team",
    "source",
    "industry",
    "attributes",
    "custom_fields",
    "birth_md",
    "created_at",
    "updated_at",
];

fn all_columns() -> Vec<&'static str> {
    let mut columns = vec!["id", "dek_version"];
    for field in SensitiveField::ALL {
        columns.push(field.ciphertext_column());
        columns.push(field.masked_column());
        columns.extend(field.blind_index_column());
    }
    columns.extend(PROFILE_COLUMNS);
    columns.push("custom_sealed");
    columns
}

fn masked_select() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let mut columns = vec!["id"];
        columns.extend(SensitiveField::ALL.map(SensitiveField::masked_column));
        columns.extend(PROFILE_COLUMNS);
        format!("SELECT {} FROM customer", columns.join(", "))
    })
}

fn full_select() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| format!("SELECT {} FROM customer", all_columns().join(", ")))
}

/// One customer as an unmasked export reads it: ids, the wrapped data key and the ciphertexts of the requested
/// fields, borrowed from the reader's current row (nothing is copied or allocated per customer).
pub struct SealedExportRow<'a> {
    /// Customer id.
    pub customer_id: &'a str,
    /// Version of the data key the ciphertexts are sealed under (`customer.dek_version`).
    pub dek_version: i64,
    /// Version of the data key as its wrapping states it (`customer_key.dek_version`).
    pub key_dek_version: i64,
    /// Version of the key-encryption key that wraps the data key.
    pub kek_version: i64,
    /// The wrapped data key.
    pub wrapped_key: &'a [u8],
    /// The ciphertext of each requested field, in the order asked for (`None`: no value stored).
    pub ciphertexts: &'a [Option<&'a [u8]>],
}

/// The export's narrow query: ids, key columns and only the requested ciphertexts of the customers named in a
/// JSON array (the first parameter) that still have a row and a data key, in id order, in one statement.
fn export_select(backend: crate::Backend, fields: &[SensitiveField]) -> String {
    let mut columns = "c.id, c.dek_version, k.dek_version, k.kek_version, k.wrapped".to_owned();
    for field in fields {
        columns.push_str(", c.");
        columns.push_str(field.ciphertext_column());
    }
    let ids = match backend {
        crate::Backend::Sqlite => "SELECT value FROM json_each(?1)",
        crate::Backend::Postgres => "SELECT json_array_elements_text($1::json)",
    };
    format!(
        "SELECT {columns} FROM customer c JOIN customer_key k ON k.customer_id = c.id \
         WHERE c.id IN ({ids}) ORDER BY c.id"
    )
}

/// Column of the first ciphertext in [`export_select`].
const EXPORT_FIRST_CIPHERTEXT: usize = 5;

/// Runs [`export_select`] on the synchronous SQLite reader, visiting each row where it lies in SQLite's buffers.
fn scan_export_sqlite<S>(
    path: &std::path::Path,
    ids_json: &str,
    fields: &[SensitiveField],
    state: &mut S,
    visit: &mut impl FnMut(&mut S, &SealedExportRow<'_>) -> bool,
) -> rusqlite::Result<()> {
    let connection = crate::open_sqlite_reader(path)?;
    let mut statement = connection.prepare(&export_select(crate::Backend::Sqlite, fields))?;
    let mut rows = statement.query([ids_json])?;
    let conversion = |column: usize, error: rusqlite::types::FromSqlError| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Blob,
            Box::new(error),
        )
    };
    while let Some(row) = rows.next()? {
        let mut ciphertexts = [None; SensitiveField::ALL.len()];
        for (offset, slot) in ciphertexts.iter_mut().take(fields.len()).enumerate() {
            let column = EXPORT_FIRST_CIPHERTEXT + offset;
            *slot = row
                .get_ref(column)?
                .as_blob_or_null()
                .map_err(|error| conversion(column, error))?;
        }
        let sealed = SealedExportRow {
            customer_id: row
                .get_ref(0)?
                .as_str()
                .map_err(|error| conversion(0, error))?,
            dek_version: row.get(1)?,
            key_dek_version: row.get(2)?,
            kek_version: row.get(3)?,
            wrapped_key: row
                .get_ref(4)?
                .as_blob()
                .map_err(|error| conversion(4, error))?,
            ciphertexts: &ciphertexts[..fields.len()],
        };
        if !visit(state, &sealed) {
            break;
        }
    }
    Ok(())
}

/// Rows per multi-row INSERT: few round trips, far below SQLite's and PostgreSQL's bound-parameter limits.
const ROWS_PER_INSERT: usize = 100;

/// `$1, $2, …, $n`: the placeholders of an `IN (…)` list of `n` values.
pub(crate) fn in_list(n: usize) -> String {
    in_list_from(1, n)
}

/// `$first, …`: the placeholders of an `IN (…)` list of `n` values after `first - 1` other parameters.
pub(crate) fn in_list_from(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `rows` groups of `columns` placeholders. SQLite gets anonymous `?`: with numbered parameters it looks every
/// name up linearly on each bind, which makes a many-row statement quadratic.
pub(crate) fn placeholder_rows(backend: crate::Backend, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let placeholders: Vec<String> = (1..=columns)
                .map(|column| match backend {
                    crate::Backend::Sqlite => "?".to_owned(),
                    crate::Backend::Postgres => format!("${}", row * columns + column),
                })
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn insert_sql(backend: crate::Backend, rows: usize) -> String {
    let columns = all_columns();
    format!(
        "INSERT INTO customer ({}) VALUES {}",
        columns.join(", "),
        placeholder_rows(backend, rows, columns.len())
    )
}

fn key_insert_sql(backend: crate::Backend, rows: usize) -> String {
    format!(
        "INSERT INTO customer_key (customer_id, dek_version, kek_version, wrapped, created_at, updated_at) VALUES {}",
        placeholder_rows(backend, rows, 6)
    )
}

fn update_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let columns = all_columns();
        let assignments: Vec<String> = columns
            .iter()
            .enumerate()
            .skip(1)
            .map(|(index, column)| format!("{column} = ${}", index + 1))
            .collect();
        format!(
            "UPDATE customer SET {} WHERE id = $1 AND updated_at = ${}",
            assignments.join(", "),
            columns.len() + 1
        )
    })
}

/// Binds every column of `$row` in [`all_columns`] order onto `$query`.
macro_rules! bind_customer {
    ($query:expr, $row:expr) => {{
        let mut query = $query.bind(&$row.id).bind($row.dek_version);
        for field in SensitiveField::ALL {
            let value = $row.values.get(&field);
            query = query
                .bind(value.map(|value| value.ciphertext.as_slice()))
                .bind(value.map(|value| value.masked.as_str()));
            if field.blind_index_column().is_some() {
                query = query.bind(value.and_then(|value| value.blind_index.as_deref()));
            }
        }
        let profile = &$row.profile;
        query
            .bind(profile.gender.as_deref())
            .bind(profile.tags.as_str())
            .bind(profile.owner_id.as_deref())
            .bind(profile.team.as_deref())
            .bind(profile.source.as_deref())
            .bind(profile.industry.as_deref())
            .bind(profile.attributes.as_str())
            .bind(profile.custom_fields.as_str())
            .bind(profile.birth_md.as_deref())
            .bind(profile.created_at)
            .bind(profile.updated_at)
            .bind($row.custom_sealed.as_deref())
    }};
}

macro_rules! profile_from_row {
    ($row:expr) => {
        CustomerProfile {
            gender: $row.try_get("gender")?,
            tags: $row.try_get("tags")?,
            owner_id: $row.try_get("owner_id")?,
            team: $row.try_get("team")?,
            source: $row.try_get("source")?,
            industry: $row.try_get("industry")?,
            attributes: $row.try_get("attributes")?,
            custom_fields: $row.try_get("custom_fields")?,
            birth_md: $row.try_get("birth_md")?,
            created_at: $row.try_get("created_at")?,
            updated_at: $row.try_get("updated_at")?,
        }
    };
}

macro_rules! masked_from_row {
    ($row:expr) => {
        (|| -> Result<MaskedCustomerRow, sqlx::Error> {
            let mut masked = BTreeMap::new();
            for field in SensitiveField::ALL {
                let value: Option<String> = $row.try_get(field.masked_column())?;
                if let Some(value) = value {
                    masked.insert(field, value);
                }
            }
            Ok(MaskedCustomerRow {
                id: $row.try_get("id")?,
                masked,
                profile: profile_from_row!($row),
            })
        })()
    };
}

macro_rules! full_from_row {
    ($row:expr) => {
        (|| -> Result<CustomerRow, sqlx::Error> {
            let mut values = BTreeMap::new();
            for field in SensitiveField::ALL {
                let ciphertext: Option<Vec<u8>> = $row.try_get(field.ciphertext_column())?;
                let masked: Option<String> = $row.try_get(field.masked_column())?;
                let blind_index: Option<Vec<u8>> = match field.blind_index_column() {
                    Some(column) => $row.try_get(column)?,
                    None => None,
                };
                if let (Some(ciphertext), Some(masked)) = (ciphertext, masked) {
                    values.insert(
                        field,
                        SealedValue {
                            ciphertext,
                            masked,
                            blind_index,
                        },
                    );
                }
            }
            Ok(CustomerRow {
                id: $row.try_get("id")?,
                dek_version: $row.try_get("dek_version")?,
                values,
                custom_sealed: $row.try_get("custom_sealed")?,
                profile: profile_from_row!($row),
            })
        })()
    };
}

/// Builds the WHERE clause for a scope, numbering placeholders from `next_placeholder`.
pub(crate) fn scope_clause(
    scope: &CustomerScope,
    next_placeholder: &mut usize,
    clauses: &mut Vec<String>,
) {
    if scope.owner_id.is_some() {
        clauses.push(format!("owner_id = ${next_placeholder}"));
        *next_placeholder += 1;
    }
    if let Some(teams) = &scope.teams {
        if teams.is_empty() {
            clauses.push("1 = 0".to_owned());
        } else {
            let placeholders: Vec<String> = teams
                .iter()
                .map(|_| {
                    let placeholder = format!("${next_placeholder}");
                    *next_placeholder += 1;
                    placeholder
                })
                .collect();
            clauses.push(format!("team IN ({})", placeholders.join(", ")));
        }
    }
    if scope.linked_user.is_some() {
        clauses.push(format!(
            "id IN (SELECT customer_id FROM customer_service_link WHERE user_id = ${next_placeholder})"
        ));
        *next_placeholder += 1;
    }
}

macro_rules! bind_scope {
    ($query:expr, $scope:expr) => {{
        let mut query = $query;
        if let Some(owner_id) = &$scope.owner_id {
            query = query.bind(owner_id.as_str());
        }
        if let Some(teams) = &$scope.teams {
            for team in teams {
                query = query.bind(team.as_str());
            }
        }
        if let Some(user) = &$scope.linked_user {
            query = query.bind(user.as_str());
        }
        query
    }};
}

impl Store {
    /// Inserts customers with their wrapped data keys, all in one transaction.
    pub async fn insert_customers(
        &self,
        customers: &[(CustomerRow, CustomerKeyRow)],
        displays: &crate::DisplayWrite,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        self.insert_customers_with(customers, displays, audit, None, LIFECYCLE_CUSTOMER)
            .await
    }

    /// [`Store::insert_customers`] in the given lifecycle stage (`lead` or `customer`), also advancing an import
    /// job (its last committed row, counters and the batch's issues) in the same transaction, so that a resumed
    /// import starts exactly after this batch.
    pub async fn insert_customers_with(
        &self,
        customers: &[(CustomerRow, CustomerKeyRow)],
        displays: &crate::DisplayWrite,
        audit: &[crate::AuditEvent],
        import: Option<&crate::imports::ImportBatchWrite>,
        lifecycle: &str,
    ) -> StoreResult<()> {
        let mut kek_versions: Vec<i64> = customers.iter().map(|(_, key)| key.kek_version).collect();
        kek_versions.sort_unstable();
        kek_versions.dedup();
        // The keys are only accepted under a KEK that is still active, so a process holding a stale keyring
        // cannot wrap new data keys under a version that a rotation is retiring. On PostgreSQL the check takes
        // a share lock on the keyring row, so a rotation cannot retire it before this transaction commits; on
        // SQLite the write transaction already excludes the rotation's writes.
        let backend = self.backend();
        let kek_check = match backend {
            crate::Backend::Sqlite => {
                "SELECT version FROM keyring WHERE purpose = 'kek' AND version = $1 AND state = 'active'"
            }
            crate::Backend::Postgres => {
                "SELECT version FROM keyring WHERE purpose = 'kek' AND version = $1 AND state = 'active' FOR SHARE"
            }
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for chunk in customers.chunks(ROWS_PER_INSERT) {
                let sql = insert_sql(backend, chunk.len());
                let mut query = sqlx::query(&sql);
                for (row, _) in chunk {
                    query = bind_customer!(query, row);
                }
                query.execute(&mut *tx).await?;
                let sql = key_insert_sql(backend, chunk.len());
                let mut query = sqlx::query(&sql);
                for (row, key) in chunk {
                    query = query
                        .bind(&key.customer_id)
                        .bind(key.dek_version)
                        .bind(key.kek_version)
                        .bind(&key.wrapped)
                        .bind(row.profile.created_at)
                        .bind(row.profile.created_at);
                }
                query.execute(&mut *tx).await?;
            }
            if lifecycle != LIFECYCLE_CUSTOMER {
                for (row, _) in customers {
                    sqlx::query("UPDATE customer SET lifecycle = $1 WHERE id = $2")
                        .bind(lifecycle)
                        .bind(&row.id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for version in &kek_versions {
                let active: Option<i64> = sqlx::query_scalar(kek_check)
                    .bind(*version)
                    .fetch_optional(&mut *tx)
                    .await?;
                if active.is_none() {
                    return Err(StoreError::StaleKey);
                }
            }
            crate::displays::write_displays!(backend, tx, displays);
            if let Some(batch) = import {
                crate::imports::write_import_batch!(backend, tx, batch);
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Replaces a customer row, provided nobody changed it since `expected_updated_at`.
    pub async fn update_customer(
        &self,
        row: &CustomerRow,
        expected_updated_at: i64,
        displays: &crate::DisplayWrite,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        let backend = self.backend();
        let result = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let affected = bind_customer!(sqlx::query(update_sql()), row)
                .bind(expected_updated_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if affected == 1 {
                crate::displays::write_displays!(backend, tx, displays);
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<u64, StoreError>(affected)
        })?;
        if result == 1 {
            Ok(())
        } else {
            Err(StoreError::StaleWrite)
        }
    }

    /// Deletes a customer and its data key (crypto-shredding) and records the erasure, in one transaction.
    /// Returns whether the customer existed.
    pub async fn erase_customer(
        &self,
        customer_id: &str,
        erased_by: Option<&str>,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        let existed = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM customer_key WHERE customer_id = $1")
                .bind(customer_id)
                .execute(&mut *tx)
                .await?;
            // Pseudonyms and other per-rule displays go with the customer (whatever the foreign-key setting).
            sqlx::query("DELETE FROM customer_display WHERE customer_id = $1")
                .bind(customer_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM token_vault WHERE customer_id = $1")
                .bind(customer_id)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM customer WHERE id = $1")
                .bind(customer_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 1 {
                sqlx::query(
                    "INSERT INTO erasure (customer_id, erased_by, erased_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (customer_id) DO NOTHING",
                )
                .bind(customer_id)
                .bind(erased_by)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok::<bool, StoreError>(deleted == 1)
        })?;
        Ok(existed)
    }

    /// A whole customer row, ciphertexts included.
    pub async fn customer_row(&self, customer_id: &str) -> StoreResult<Option<CustomerRow>> {
        let sql = format!("{} WHERE id = $1", full_select());
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(customer_id)
                .fetch_optional(pool)
                .await?
                .map(|row| full_from_row!(row))
        });
        Ok(row.transpose()?)
    }

    /// The whole rows of `customer_ids` (those that exist), in one query per 500 ids.
    pub async fn customer_rows_by_ids(
        &self,
        customer_ids: &[String],
    ) -> StoreResult<Vec<CustomerRow>> {
        let mut out = Vec::with_capacity(customer_ids.len());
        for chunk in customer_ids.chunks(500) {
            let sql = format!("{} WHERE id IN ({})", full_select(), in_list(chunk.len()));
            let rows = with_pool!(self, |pool| {
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                query
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|row| full_from_row!(row))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Calls `visit` with the sealed `fields` and wrapped data key of every customer in `customer_ids` that still
    /// exists (erased customers have neither row nor key and are skipped), in id order, until it returns `false`;
    /// returns `state`. One statement reads only the columns an export needs, from one consistent snapshot: on
    /// SQLite through the synchronous read-only reader on a blocking thread (like [`Store::scan_audit`]), on
    /// PostgreSQL as one streamed query.
    pub async fn scan_sealed_for_export<S, F>(
        &self,
        customer_ids: &[String],
        fields: &[SensitiveField],
        mut state: S,
        mut visit: F,
    ) -> StoreResult<S>
    where
        S: Send + 'static,
        F: FnMut(&mut S, &SealedExportRow<'_>) -> bool + Send + 'static,
    {
        if fields.len() > SensitiveField::ALL.len() {
            return Err(StoreError::Snapshot(
                "an export names more fields than a customer has".to_owned(),
            ));
        }
        let ids_json = serde_json::to_string(customer_ids)
            .map_err(|error| StoreError::Snapshot(error.to_string()))?;
        if let Some(path) = self.sqlite_path.clone() {
            let fields = fields.to_vec();
            return tokio::task::spawn_blocking(move || -> StoreResult<S> {
                scan_export_sqlite(&path, &ids_json, &fields, &mut state, &mut visit)
                    .map_err(crate::reader_error)?;
                Ok(state)
            })
            .await
            .map_err(crate::reader_error)?;
        }
        use futures_util::TryStreamExt;
        let sql = export_select(self.backend(), fields);
        with_pool!(self, |pool| {
            let mut rows = sqlx::query(&sql).bind(&ids_json).fetch(pool);
            while let Some(row) = rows.try_next().await? {
                let mut ciphertexts = [None; SensitiveField::ALL.len()];
                for (offset, slot) in ciphertexts.iter_mut().take(fields.len()).enumerate() {
                    *slot = row.try_get::<Option<&[u8]>, _>(EXPORT_FIRST_CIPHERTEXT + offset)?;
                }
                let sealed = SealedExportRow {
                    customer_id: row.try_get(0)?,
                    dek_version: row.try_get(1)?,
                    key_dek_version: row.try_get(2)?,
                    kek_version: row.try_get(3)?,
                    wrapped_key: row.try_get(4)?,
                    ciphertexts: &ciphertexts[..fields.len()],
                };
                if !visit(&mut state, &sealed) {
                    break;
                }
            }
        });
        Ok(state)
    }

    /// Up to `limit` whole customer rows with ids after `after` (ascending), for jobs that walk every customer.
    pub async fn customer_rows_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<CustomerRow>> {
        let sql = format!("{} WHERE id > $1 ORDER BY id LIMIT $2", full_select());
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| full_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Up to `limit` whole rows of customers with a birth date but no `birth_md` yet, ids after `after`
    /// (ascending): the care reminders' backfill of customers written before `birth_md` existed.
    pub async fn customer_rows_missing_birth_md(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<CustomerRow>> {
        let sql = format!(
            "{} WHERE id > $1 AND birth_md IS NULL AND birth_date_ct IS NOT NULL ORDER BY id LIMIT $2",
            full_select()
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| full_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Sets `birth_md` of customers that still have none, in one transaction with `audit`. `updated_at` is left
    /// alone: the value is derived from what is stored, not a change by anyone.
    pub async fn set_birth_md(
        &self,
        values: &[(String, String)],
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for (customer_id, month_day) in values {
                sqlx::query("UPDATE customer SET birth_md = $1 WHERE id = $2 AND birth_md IS NULL")
                    .bind(month_day.as_str())
                    .bind(customer_id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// One customer's masked view.
    pub async fn masked_customer(
        &self,
        customer_id: &str,
    ) -> StoreResult<Option<MaskedCustomerRow>> {
        let sql = format!("{} WHERE id = $1", masked_select());
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(customer_id)
                .fetch_optional(pool)
                .await?
                .map(|row| masked_from_row!(row))
        });
        Ok(row.transpose()?)
    }

    /// A page of masked customers in `scope` matching `filter`, newest first, starting after the cursor id
    /// `before`.
    pub async fn list_masked_customers(
        &self,
        scope: &CustomerScope,
        filter: &CustomerFilter,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MaskedCustomerRow>> {
        let mut clauses = Vec::new();
        let mut next_placeholder = 1;
        scope_clause(scope, &mut next_placeholder, &mut clauses);
        filter_clause(filter, self.backend(), &mut next_placeholder, &mut clauses);
        if before.is_some() {
            clauses.push(format!("id < ${next_placeholder}"));
            next_placeholder += 1;
        }
        let where_clause = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "{}{where_clause} ORDER BY id DESC LIMIT ${next_placeholder}",
            masked_select()
        );
        let rows = with_pool!(self, |pool| {
            let mut query = bind_filter!(bind_scope!(sqlx::query(&sql), scope), filter);
            if let Some(before) = before {
                query = query.bind(before);
            }
            query
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| masked_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// A page of the pool (customers without an owner) matching `filter`'s industry and tag, newest first, after
    /// the cursor id `before`. Masked columns only, like every listing.
    pub async fn list_pool_customers(
        &self,
        filter: &CustomerFilter,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MaskedCustomerRow>> {
        let filter = CustomerFilter {
            owner: None,
            team: None,
            ..filter.clone()
        };
        let mut clauses = vec!["owner_id IS NULL".to_owned()];
        let mut next_placeholder = 1;
        filter_clause(&filter, self.backend(), &mut next_placeholder, &mut clauses);
        if before.is_some() {
            clauses.push(format!("id < ${next_placeholder}"));
            next_placeholder += 1;
        }
        let sql = format!(
            "{} WHERE {} ORDER BY id DESC LIMIT ${next_placeholder}",
            masked_select(),
            clauses.join(" AND ")
        );
        let rows = with_pool!(self, |pool| {
            let mut query = bind_filter!(sqlx::query(&sql), filter);
            if let Some(before) = before {
                query = query.bind(before);
            }
            query
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| masked_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Up to `limit` masked customers in `scope` whose birthday (`birth_md`, `MM-DD`) is one of `month_days`, in
    /// id order: the care reminders' birthdays, found without decrypting.
    pub async fn masked_customers_by_birth_md(
        &self,
        scope: &CustomerScope,
        month_days: &[String],
        limit: i64,
    ) -> StoreResult<Vec<MaskedCustomerRow>> {
        if month_days.is_empty() {
            return Ok(Vec::new());
        }
        let mut clauses = Vec::new();
        let mut next_placeholder = 1;
        scope_clause(scope, &mut next_placeholder, &mut clauses);
        let placeholders: Vec<String> = month_days
            .iter()
            .map(|_| {
                let placeholder = format!("${next_placeholder}");
                next_placeholder += 1;
                placeholder
            })
            .collect();
        clauses.push(format!("birth_md IN ({})", placeholders.join(", ")));
        let sql = format!(
            "{} WHERE {} ORDER BY id LIMIT ${next_placeholder}",
            masked_select(),
            clauses.join(" AND ")
        );
        let rows = with_pool!(self, |pool| {
            let mut query = bind_scope!(sqlx::query(&sql), scope);
            for month_day in month_days {
                query = query.bind(month_day.as_str());
            }
            query
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| masked_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Ids of up to `limit` customers in `scope` matching `filter`, ascending (a segment's members).
    pub async fn customer_ids_matching(
        &self,
        scope: &CustomerScope,
        filter: &CustomerFilter,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let mut clauses = Vec::new();
        let mut next_placeholder = 1;
        scope_clause(scope, &mut next_placeholder, &mut clauses);
        filter_clause(filter, self.backend(), &mut next_placeholder, &mut clauses);
        let where_clause = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let sql =
            format!("SELECT id FROM customer{where_clause} ORDER BY id LIMIT ${next_placeholder}");
        let ids = with_pool!(self, |pool| {
            bind_filter!(
                bind_scope!(sqlx::query_scalar::<_, String>(&sql), scope),
                filter
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(ids)
    }

    /// Masked customers in `scope` whose `field` has the given blind index, newest first.
    pub async fn find_by_blind_index(
        &self,
        field: SensitiveField,
        blind_index: &[u8],
        scope: &CustomerScope,
        limit: i64,
    ) -> StoreResult<Vec<MaskedCustomerRow>> {
        let Some(column) = field.blind_index_column() else {
            return Ok(Vec::new());
        };
        let mut clauses = vec![format!("{column} = $1")];
        let mut next_placeholder = 2;
        scope_clause(scope, &mut next_placeholder, &mut clauses);
        let sql = format!(
            "{} WHERE {} ORDER BY id DESC LIMIT ${next_placeholder}",
            masked_select(),
            clauses.join(" AND ")
        );
        let rows = with_pool!(self, |pool| {
            bind_scope!(sqlx::query(&sql).bind(blind_index), scope)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| masked_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Ids of customers (any scope) whose `field` has the given blind index, excluding `except`.
    /// Used for de-duplication, which must see across owners.
    pub async fn customer_ids_by_blind_index(
        &self,
        field: SensitiveField,
        blind_index: &[u8],
        except: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let Some(column) = field.blind_index_column() else {
            return Ok(Vec::new());
        };
        let sql = format!(
            "SELECT id FROM customer WHERE {column} = $1 AND id <> $2 ORDER BY id LIMIT 10"
        );
        let ids = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(&sql)
                .bind(blind_index)
                .bind(except.unwrap_or(""))
                .fetch_all(pool)
                .await
        })?;
        Ok(ids)
    }

    /// Whether `customer_id` is linked to the service user `user_id`.
    pub async fn is_linked(&self, customer_id: &str, user_id: &str) -> StoreResult<bool> {
        let found = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "SELECT customer_id FROM customer_service_link WHERE customer_id = $1 AND user_id = $2",
            )
            .bind(customer_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(found.is_some())
    }

    /// Links a customer to a service user (idempotent).
    pub async fn link_service_user(
        &self,
        customer_id: &str,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO customer_service_link (customer_id, user_id, reason, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (customer_id, user_id) DO NOTHING",
            )
            .bind(customer_id)
            .bind(user_id)
            .bind(reason)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Number of customers.
    pub async fn count_customers(&self) -> StoreResult<i64> {
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM customer")
                .fetch_one(pool)
                .await
        })?;
        Ok(count)
    }

    /// How many customers in `scope` each industry has (`None`: not given), largest first, at most `limit`
    /// industries. One grouped count, no decryption: the dashboard's chart.
    pub async fn customer_industry_counts(
        &self,
        scope: &CustomerScope,
        limit: i64,
    ) -> StoreResult<Vec<(Option<String>, i64)>> {
        let mut clauses = Vec::new();
        let mut next_placeholder = 1;
        scope_clause(scope, &mut next_placeholder, &mut clauses);
        // Everyone's customers: the counts the triggers of migration 0020 keep. A scope: a GROUP BY over its own
        // rows, answered from the (owner_id, industry) or (team, industry) index.
        let sql = if clauses.is_empty() {
            "SELECT industry, customers AS n FROM customer_industry_count \
             ORDER BY n DESC, industry LIMIT $1"
                .to_owned()
        } else {
            format!(
                "SELECT industry, COUNT(*) AS n FROM customer WHERE {} GROUP BY industry \
                 ORDER BY n DESC, industry LIMIT ${next_placeholder}",
                clauses.join(" AND ")
            )
        };
        let counts = with_pool!(self, |pool| {
            bind_scope!(sqlx::query(&sql), scope)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| Ok((row.try_get("industry")?, row.try_get("n")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(counts)
    }
}

/// The lifecycle stage of a customer record that is still a lead.
pub const LIFECYCLE_LEAD: &str = "lead";
/// The lifecycle stage of a customer record proper (the default).
pub const LIFECYCLE_CUSTOMER: &str = "customer";

impl Store {
    /// A customer record's lifecycle stage and, once converted from a lead, when (Unix ms).
    pub async fn customer_lifecycle(
        &self,
        customer_id: &str,
    ) -> StoreResult<Option<(String, Option<i64>)>> {
        let row = with_pool!(self, |pool| {
            match sqlx::query("SELECT lifecycle, converted_at FROM customer WHERE id = $1")
                .bind(customer_id)
                .fetch_optional(pool)
                .await?
            {
                Some(row) => Some((row.try_get("lifecycle")?, row.try_get("converted_at")?)),
                None => None,
            }
        });
        Ok(row)
    }

    /// Turns a lead into a customer with the audit entries, in one transaction. `false` (nothing written) when the
    /// record was no lead (already converted, or gone).
    pub async fn convert_lead(
        &self,
        customer_id: &str,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The guarded UPDATE is the whole decision: of two concurrent conversions exactly one changes the row.
            // updated_at moves (strictly forward) so that an edit form opened before the conversion is stale.
            let changed = sqlx::query(
                "UPDATE customer SET lifecycle = $2, converted_at = $3, \
                 updated_at = CASE WHEN updated_at >= $3 THEN updated_at + 1 ELSE $3 END \
                 WHERE id = $1 AND lifecycle = $4",
            )
            .bind(customer_id)
            .bind(LIFECYCLE_CUSTOMER)
            .bind(now)
            .bind(LIFECYCLE_LEAD)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<bool, StoreError>(true)
        })
    }

    /// A page of masked leads (customer records in the `lead` stage) in `scope`, newest first, ids below
    /// `before`.
    pub async fn list_masked_leads(
        &self,
        scope: &CustomerScope,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MaskedCustomerRow>> {
        let mut clauses = Vec::new();
        let mut next_placeholder = 1;
        scope_clause(scope, &mut next_placeholder, &mut clauses);
        clauses.push(format!("lifecycle = ${next_placeholder}"));
        next_placeholder += 1;
        if before.is_some() {
            clauses.push(format!("id < ${next_placeholder}"));
            next_placeholder += 1;
        }
        let sql = format!(
            "{} WHERE {} ORDER BY id DESC LIMIT ${next_placeholder}",
            masked_select(),
            clauses.join(" AND ")
        );
        let rows = with_pool!(self, |pool| {
            let mut query = bind_scope!(sqlx::query(&sql), scope).bind(LIFECYCLE_LEAD);
            if let Some(before) = before {
                query = query.bind(before);
            }
            query
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| masked_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The masked rows of the customers named (missing ones are left out), in chunks of 200 ids.
    pub async fn masked_customers_by_ids(
        &self,
        customer_ids: &[String],
    ) -> StoreResult<Vec<MaskedCustomerRow>> {
        let mut out = Vec::with_capacity(customer_ids.len());
        for chunk in customer_ids.chunks(200) {
            let sql = format!("{} WHERE id IN ({})", masked_select(), in_list(chunk.len()));
            let rows = with_pool!(self, |pool| {
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id.as_str());
                }
                query
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|row| masked_from_row!(row))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })?;
            out.extend(rows);
        }
        Ok(out)
    }
}
