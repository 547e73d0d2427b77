//! The audit trail's storage: append-only, hash-chained entries, the subjects (customers) each entry concerns,
//! and signed checkpoints.
//!
//! Each entry's hash is `SHA-256("veil-audit-v1" ‖ previous hash ‖ canonical encoding)`, the first entry's
//! previous hash being 32 zero bytes. The canonical encoding ([`canonical_bytes`]) is length-prefixed binary, so
//! no two different entries encode alike. Appenders serialise on the single `audit_head` row (its sequence and
//! hash are read and advanced by one `UPDATE … RETURNING`), which on PostgreSQL is a row lock held to commit and on
//! SQLite the database write lock: concurrent servers sharing one database still build one chain.
//!
//! Entries are appended inside the transaction of the action they record ([`append_in`] from the other
//! repositories), or on their own ([`Store::append_audit`]) for reads and failed attempts. Triggers in the schema
//! refuse `UPDATE` and `DELETE` (and `TRUNCATE` on PostgreSQL) of the log.

use sha2::{Digest, Sha256};

use crate::{with_pool, Backend, Store, StoreResult};

/// Length of an entry hash.
pub const HASH_LEN: usize = 32;

/// The previous hash of the first entry.
pub const GENESIS_HASH: [u8; HASH_LEN] = [0; HASH_LEN];

const DOMAIN: &[u8] = b"veil-audit-v1";
const ENCODING_VERSION: u8 = 1;
const COLUMNS: usize = 15;
const ROWS_PER_INSERT: usize = 500;

/// What happened, by whom, to what — everything an entry records except its place in the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    /// When (Unix milliseconds).
    pub at: i64,
    /// The acting user's id; `None` for the system or an unknown user.
    pub actor_id: Option<String>,
    /// The acting user's name (or the name tried, for a failed login).
    pub actor_name: Option<String>,
    /// The actor's role at the time.
    pub actor_role: Option<String>,
    /// The client address, when the action came over the network.
    pub source_ip: Option<String>,
    /// What was done, e.g. `customer.read`, `auth.login`.
    pub action: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// The customers concerned.
    pub customer_ids: Vec<String>,
    /// The fields concerned (names, never values).
    pub fields: Vec<String>,
    /// The grant the action relied on.
    pub grant_id: Option<String>,
    /// The declared purpose.
    pub purpose: Option<String>,
    /// Further non-personal detail as a JSON object.
    pub detail: String,
}

/// An entry as stored: the event with its sequence number and chain hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// The event.
    pub event: AuditEvent,
    /// The previous entry's hash.
    pub prev_hash: Vec<u8>,
    /// This entry's hash.
    pub hash: Vec<u8>,
}

/// A signed statement of the chain head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// Sequence number of the head at signing.
    pub seq: i64,
    /// Hash of that entry.
    pub head_hash: Vec<u8>,
    /// When it was signed (Unix milliseconds).
    pub at: i64,
    /// The Ed25519 public key that signed it.
    pub public_key: Vec<u8>,
    /// The signature over [`checkpoint_message`].
    pub signature: Vec<u8>,
}

/// A retention prune: entries up to `upto_seq` were archived (the archive's SHA-256) and deleted; the chain is
/// verified from `upto_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRow {
    /// The last pruned entry.
    pub upto_seq: i64,
    /// Its hash: the anchor of the retained chain.
    pub upto_hash: Vec<u8>,
    /// SHA-256 (hex) of the archive the pruned entries were written to.
    pub archive_sha256: String,
    /// When (Unix ms).
    pub pruned_at: i64,
}

/// Filters of an audit query; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor (user id).
    pub actor_id: Option<String>,
    /// Only this action; a value ending in `.` matches every action with that prefix.
    pub action: Option<String>,
    /// Only entries concerning this customer.
    pub customer_id: Option<String>,
    /// From this time (Unix milliseconds, inclusive).
    pub from: Option<i64>,
    /// Before this time (Unix milliseconds, exclusive).
    pub to: Option<i64>,
    /// Only entries with a sequence number below this (paging backwards).
    pub before_seq: Option<i64>,
    /// Only entries with a sequence number above this (paging forwards).
    pub after_seq: Option<i64>,
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_optional(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.push(0),
        Some(text) => {
            out.push(1);
            put_bytes(out, text.as_bytes());
        }
    }
}

fn put_list(out: &mut Vec<u8>, values: &[String]) {
    out.extend_from_slice(&(values.len() as u32).to_be_bytes());
    for value in values {
        put_bytes(out, value.as_bytes());
    }
}

/// The canonical encoding of an entry: version, sequence, time, then every field length-prefixed in a fixed order.
pub fn canonical_bytes(seq: i64, event: &AuditEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + event.detail.len() + 40 * event.customer_ids.len());
    out.push(ENCODING_VERSION);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&event.at.to_be_bytes());
    put_optional(&mut out, event.actor_id.as_deref());
    put_optional(&mut out, event.actor_name.as_deref());
    put_optional(&mut out, event.actor_role.as_deref());
    put_optional(&mut out, event.source_ip.as_deref());
    put_bytes(&mut out, event.action.as_bytes());
    put_bytes(&mut out, event.outcome.as_bytes());
    put_list(&mut out, &event.customer_ids);
    put_list(&mut out, &event.fields);
    put_optional(&mut out, event.grant_id.as_deref());
    put_optional(&mut out, event.purpose.as_deref());
    put_bytes(&mut out, event.detail.as_bytes());
    out
}

/// The hash of entry `seq` given the previous entry's hash.
pub fn chain_hash(prev_hash: &[u8], seq: i64, event: &AuditEvent) -> [u8; HASH_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(prev_hash);
    hasher.update(canonical_bytes(seq, event));
    hasher.finalize().into()
}

/// The bytes a checkpoint signature covers: domain, sequence and head hash.
pub fn checkpoint_message(seq: i64, head_hash: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(64);
    message.extend_from_slice(b"veil-audit-checkpoint-v1");
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(head_hash);
    message
}

fn insert_sql(backend: Backend, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let placeholders: Vec<String> = (1..=COLUMNS)
                .map(|column| match backend {
                    Backend::Sqlite => "?".to_owned(),
                    Backend::Postgres => format!("${}", row * COLUMNS + column),
                })
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO audit_log (seq, at, actor_id, actor_name, actor_role, source_ip, action, outcome, \
         customer_ids, fields, grant_id, purpose, detail, prev_hash, hash) VALUES {}",
        values.join(", ")
    )
}

/// One statement per event for all its subjects, the ids passed as one JSON array: SQLite's driver looks each
/// bound parameter up by position in a list, so a statement with thousands of parameters costs quadratic time.
fn subject_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "INSERT INTO audit_subject (customer_id, seq) SELECT value, $2 FROM json_each($1) WHERE true \
             ON CONFLICT DO NOTHING"
        }
        Backend::Postgres => {
            "INSERT INTO audit_subject (customer_id, seq) \
             SELECT value, $2 FROM jsonb_array_elements_text($1::jsonb) ON CONFLICT DO NOTHING"
        }
    }
}

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Appends `events` to the chain on an open connection (normally inside the caller's transaction), returning
/// their sequence numbers. Implemented for both backends' connections.
#[allow(async_fn_in_trait)]
pub trait AuditAppend {
    /// See the trait.
    async fn append_audit_events(&mut self, events: &[AuditEvent]) -> StoreResult<Vec<i64>>;
}

macro_rules! impl_append {
    ($connection:ty, $backend:expr) => {
        impl AuditAppend for $connection {
            async fn append_audit_events(
                &mut self,
                events: &[AuditEvent],
            ) -> StoreResult<Vec<i64>> {
                if events.is_empty() {
                    return Ok(Vec::new());
                }
                let count = events.len() as i64;
                let (last_seq, mut prev_hash): (i64, Vec<u8>) = sqlx::query_as(
                    "UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash",
                )
                .bind(count)
                .fetch_one(&mut *self)
                .await?;
                let first_seq = last_seq - count + 1;
                let mut hashed = Vec::with_capacity(events.len());
                for (offset, event) in events.iter().enumerate() {
                    let seq = first_seq + offset as i64;
                    let hash = chain_hash(&prev_hash, seq, event);
                    hashed.push((seq, prev_hash, hash));
                    prev_hash = hash.to_vec();
                }
                let with_events: Vec<(&AuditEvent, &(i64, Vec<u8>, [u8; HASH_LEN]))> =
                    events.iter().zip(hashed.iter()).collect();
                for chunk in with_events.chunks(ROWS_PER_INSERT) {
                    let sql = insert_sql($backend, chunk.len());
                    let mut query = sqlx::query(&sql);
                    for (event, (seq, prev, hash)) in chunk {
                        query = query
                            .bind(*seq)
                            .bind(event.at)
                            .bind(event.actor_id.as_deref())
                            .bind(event.actor_name.as_deref())
                            .bind(event.actor_role.as_deref())
                            .bind(event.source_ip.as_deref())
                            .bind(event.action.as_str())
                            .bind(event.outcome.as_str())
                            .bind(json_list(&event.customer_ids))
                            .bind(json_list(&event.fields))
                            .bind(event.grant_id.as_deref())
                            .bind(event.purpose.as_deref())
                            .bind(event.detail.as_str())
                            .bind(prev.as_slice())
                            .bind(hash.as_slice());
                    }
                    query.execute(&mut *self).await?;
                }
                for (event, (seq, _, _)) in events.iter().zip(hashed.iter()) {
                    if event.customer_ids.is_empty() {
                        continue;
                    }
                    sqlx::query(subject_sql($backend))
                        .bind(json_list(&event.customer_ids))
                        .bind(*seq)
                        .execute(&mut *self)
                        .await?;
                }
                sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                    .bind(prev_hash.as_slice())
                    .execute(&mut *self)
                    .await?;
                Ok(hashed.iter().map(|(seq, _, _)| *seq).collect())
            }
        }
    };
}

impl_append!(sqlx::SqliteConnection, Backend::Sqlite);
impl_append!(sqlx::PgConnection, Backend::Postgres);

/// Appends inside an open transaction (shorthand for [`AuditAppend::append_audit_events`]).
pub async fn append_in<C: AuditAppend>(
    connection: &mut C,
    events: &[AuditEvent],
) -> StoreResult<Vec<i64>> {
    connection.append_audit_events(events).await
}

type EntryTuple = (
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Vec<u8>,
    Vec<u8>,
);

fn entry_from(tuple: EntryTuple) -> AuditEntry {
    let (
        seq,
        at,
        actor_id,
        actor_name,
        actor_role,
        source_ip,
        action,
        outcome,
        customer_ids,
        fields,
        grant_id,
        purpose,
        detail,
        prev_hash,
        hash,
    ) = tuple;
    AuditEntry {
        seq,
        event: AuditEvent {
            at,
            actor_id,
            actor_name,
            actor_role,
            source_ip,
            action,
            outcome,
            customer_ids: parse_list(&customer_ids),
            fields: parse_list(&fields),
            grant_id,
            purpose,
            detail,
        },
        prev_hash,
        hash,
    }
}

/// Streams entries from the SQLite file through a synchronous read-only connection, several times faster than
/// the async driver decodes rows. (A reader thread overlapping with the visitor measured slower.)
fn scan_sqlite<S>(
    path: &std::path::Path,
    after_seq: i64,
    upto_seq: i64,
    state: &mut S,
    visit: &mut impl FnMut(&mut S, &AuditEntry) -> bool,
) -> rusqlite::Result<()> {
    let connection = crate::open_sqlite_reader(path)?;
    let mut statement = connection.prepare(&format!(
        "{SELECT_ENTRY} WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
    ))?;
    let mut rows = statement.query(rusqlite::params![after_seq, upto_seq])?;
    while let Some(row) = rows.next()? {
        let tuple: EntryTuple = (
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
            row.get(8)?,
            row.get(9)?,
            row.get(10)?,
            row.get(11)?,
            row.get(12)?,
            row.get(13)?,
            row.get(14)?,
        );
        if !visit(state, &entry_from(tuple)) {
            break;
        }
    }
    Ok(())
}

const SELECT_ENTRY: &str =
    "SELECT seq, at, actor_id, actor_name, actor_role, source_ip, action, outcome, \
     customer_ids, fields, grant_id, purpose, detail, prev_hash, hash FROM audit_log";

impl Store {
    /// Appends events in their own transaction (reads, failed attempts, system events). Returns their sequence
    /// numbers once committed; an error means nothing was recorded.
    pub async fn append_audit(&self, events: &[AuditEvent]) -> StoreResult<Vec<i64>> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let seqs = append_in(&mut *tx, events).await?;
            tx.commit().await?;
            Ok(seqs)
        })
    }

    /// The head of the chain: `(sequence, hash)` of the newest entry (`(0, zeros)` when empty).
    pub async fn audit_head(&self) -> StoreResult<(i64, Vec<u8>)> {
        let head = with_pool!(self, |pool| {
            sqlx::query_as::<_, (i64, Vec<u8>)>("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(pool)
                .await
        })?;
        Ok(head)
    }

    /// Up to `limit` entries in chain order with a sequence number above `after_seq`.
    pub async fn audit_entries_after(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let sql = format!("{SELECT_ENTRY} WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, EntryTuple>(&sql)
                .bind(after_seq)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(entry_from).collect())
    }

    /// How many entries with `action` and `outcome` each UTC day in `from <= at < to` has (milliseconds since the
    /// epoch), as `(day number since the epoch, count)`, days without entries left out. One range over the
    /// `(action, outcome, at)` index: its cost follows the entries in the range, not the size of the log.
    pub async fn audit_counts_per_day(
        &self,
        action: &str,
        outcome: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<(i64, i64)>> {
        // A day is 86,400,000 ms; written into the SQL so both backends group by the same integer division.
        let counts = with_pool!(self, |pool| {
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT at / 86400000 AS day, COUNT(*) FROM audit_log \
                 WHERE action = $1 AND outcome = $2 AND at >= $3 AND at < $4 \
                 GROUP BY at / 86400000 ORDER BY day",
            )
            .bind(action)
            .bind(outcome)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
        })?;
        Ok(counts)
    }

    /// Entries matching `filter`, newest first (oldest first when paging forwards with `after_seq`).
    pub async fn query_audit(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let mut clauses = Vec::new();
        let mut next = 1;
        let mut placeholder = || {
            let text = format!("${next}");
            next += 1;
            text
        };
        if filter.actor_id.is_some() {
            clauses.push(format!("actor_id = {}", placeholder()));
        }
        if let Some(action) = &filter.action {
            if action.ends_with('.') {
                let length = action.chars().count();
                clauses.push(format!("substr(action, 1, {length}) = {}", placeholder()));
            } else {
                clauses.push(format!("action = {}", placeholder()));
            }
        }
        if filter.customer_id.is_some() {
            clauses.push(format!(
                "seq IN (SELECT seq FROM audit_subject WHERE customer_id = {})",
                placeholder()
            ));
        }
        if filter.from.is_some() {
            clauses.push(format!("at >= {}", placeholder()));
        }
        if filter.to.is_some() {
            clauses.push(format!("at < {}", placeholder()));
        }
        if filter.before_seq.is_some() {
            clauses.push(format!("seq < {}", placeholder()));
        }
        if filter.after_seq.is_some() {
            clauses.push(format!("seq > {}", placeholder()));
        }
        let limit_placeholder = placeholder();
        let order = if filter.after_seq.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        let sql = format!(
            "{SELECT_ENTRY}{}{} ORDER BY seq {order} LIMIT {limit_placeholder}",
            if clauses.is_empty() { "" } else { " WHERE " },
            clauses.join(" AND ")
        );
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, EntryTuple>(&sql);
            if let Some(actor) = &filter.actor_id {
                query = query.bind(actor.as_str());
            }
            if let Some(action) = &filter.action {
                query = query.bind(action.as_str());
            }
            if let Some(customer) = &filter.customer_id {
                query = query.bind(customer.as_str());
            }
            if let Some(from) = filter.from {
                query = query.bind(from);
            }
            if let Some(to) = filter.to {
                query = query.bind(to);
            }
            if let Some(before) = filter.before_seq {
                query = query.bind(before);
            }
            if let Some(after) = filter.after_seq {
                query = query.bind(after);
            }
            query.bind(limit).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(entry_from).collect())
    }

    /// Stores a signed checkpoint. A checkpoint for a sequence already signed is a conflict.
    pub async fn insert_audit_checkpoint(&self, checkpoint: &CheckpointRow) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO audit_checkpoint (seq, head_hash, at, public_key, signature) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(checkpoint.seq)
            .bind(checkpoint.head_hash.as_slice())
            .bind(checkpoint.at)
            .bind(checkpoint.public_key.as_slice())
            .bind(checkpoint.signature.as_slice())
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Every checkpoint, oldest first.
    pub async fn audit_checkpoints(&self) -> StoreResult<Vec<CheckpointRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>)>(
                "SELECT seq, head_hash, at, public_key, signature FROM audit_checkpoint ORDER BY seq",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(seq, head_hash, at, public_key, signature)| CheckpointRow {
                    seq,
                    head_hash,
                    at,
                    public_key,
                    signature,
                },
            )
            .collect())
    }

    /// Every prune, oldest first.
    pub async fn audit_prunes(&self) -> StoreResult<Vec<PruneRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, (i64, Vec<u8>, String, i64)>(
                "SELECT upto_seq, upto_hash, archive_sha256, pruned_at FROM audit_prune ORDER BY upto_seq",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(
                |(upto_seq, upto_hash, archive_sha256, pruned_at)| PruneRow {
                    upto_seq,
                    upto_hash,
                    archive_sha256,
                    pruned_at,
                },
            )
            .collect())
    }

    /// The first entry that must be kept: the lowest sequence number with `at >= ordinary_cutoff`, or with
    /// `at >= governance_cutoff` among actions starting with one of `governance_prefixes`. `None` when every
    /// entry has expired.
    pub async fn first_retained_seq(
        &self,
        ordinary_cutoff: i64,
        governance_cutoff: i64,
        governance_prefixes: &[&str],
    ) -> StoreResult<Option<i64>> {
        let ordinary = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>("SELECT MIN(seq) FROM audit_log WHERE at >= $1")
                .bind(ordinary_cutoff)
                .fetch_one(pool)
                .await
        })?;
        let mut first = ordinary;
        for prefix in governance_prefixes {
            let length = prefix.chars().count();
            let sql = format!(
                "SELECT MIN(seq) FROM audit_log WHERE at >= $1 AND substr(action, 1, {length}) = $2"
            );
            let governed = with_pool!(self, |pool| {
                sqlx::query_scalar::<_, Option<i64>>(&sql)
                    .bind(governance_cutoff)
                    .bind(*prefix)
                    .fetch_one(pool)
                    .await
            })?;
            first = match (first, governed) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(first)
    }

    /// Records a prune and deletes the entries (and their subject rows) up to `prune.upto_seq`, with `audit`
    /// appended, in one transaction.
    pub async fn prune_audit(&self, prune: &PruneRow, audit: &AuditEvent) -> StoreResult<u64> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO audit_prune (upto_seq, upto_hash, archive_sha256, pruned_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(prune.upto_seq)
            .bind(prune.upto_hash.as_slice())
            .bind(&prune.archive_sha256)
            .bind(prune.pruned_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM audit_subject WHERE seq <= $1")
                .bind(prune.upto_seq)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
                .bind(prune.upto_seq)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            append_in(&mut *tx, std::slice::from_ref(audit)).await?;
            tx.commit().await?;
            Ok::<u64, crate::StoreError>(deleted)
        })
    }

    /// Calls `visit` with every entry `after_seq < seq <= upto_seq` in chain order, from one consistent
    /// snapshot, until it returns `false`; returns `state`. On SQLite a second, synchronous reader (rusqlite on a
    /// read-only connection) streams the rows several times faster than the async driver; on PostgreSQL the rows
    /// come in pages.
    pub async fn scan_audit<S, F>(
        &self,
        after_seq: i64,
        upto_seq: i64,
        mut state: S,
        mut visit: F,
    ) -> StoreResult<S>
    where
        S: Send + 'static,
        F: FnMut(&mut S, &AuditEntry) -> bool + Send + 'static,
    {
        if let Some(path) = self.sqlite_path.clone() {
            return tokio::task::spawn_blocking(move || -> StoreResult<S> {
                scan_sqlite(&path, after_seq, upto_seq, &mut state, &mut visit)
                    .map_err(crate::reader_error)?;
                Ok(state)
            })
            .await
            .map_err(crate::reader_error)?;
        }
        let mut after = after_seq;
        loop {
            let filter = AuditFilter {
                after_seq: Some(after),
                before_seq: Some(upto_seq.saturating_add(1)),
                ..AuditFilter::default()
            };
            let page = self.query_audit(&filter, 10_000).await?;
            let Some(last) = page.last() else {
                return Ok(state);
            };
            after = last.seq;
            for entry in &page {
                if !visit(&mut state, entry) {
                    return Ok(state);
                }
            }
        }
    }

    /// Number of audit entries in the table (which, in an intact log, equals the head's sequence number).
    pub async fn count_audit_entries(&self) -> StoreResult<i64> {
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log")
                .fetch_one(pool)
                .await
        })?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            at: 1_700_000_000_000,
            actor_id: Some("u1".to_owned()),
            actor_name: Some("alice".to_owned()),
            actor_role: Some("sales".to_owned()),
            source_ip: None,
            action: action.to_owned(),
            outcome: "ok".to_owned(),
            customer_ids: vec!["c1".to_owned()],
            fields: vec![],
            grant_id: None,
            purpose: None,
            detail: "{}".to_owned(),
        }
    }

    #[test]
    fn encoding_separates_fields_unambiguously() {
        let mut a = event("customer.read");
        a.actor_name = Some("ab".to_owned());
        a.actor_role = Some("c".to_owned());
        let mut b = event("customer.read");
        b.actor_name = Some("a".to_owned());
        b.actor_role = Some("bc".to_owned());
        assert_ne!(canonical_bytes(1, &a), canonical_bytes(1, &b));
        let mut c = event("customer.read");
        c.customer_ids = vec!["c1".to_owned(), "c2".to_owned()];
        let mut d = event("customer.read");
        d.customer_ids = vec!["c1c2".to_owned()];
        assert_ne!(canonical_bytes(1, &c), canonical_bytes(1, &d));
        let mut e = event("customer.read");
        e.grant_id = None;
        let mut f = event("customer.read");
        f.grant_id = Some(String::new());
        assert_ne!(canonical_bytes(1, &e), canonical_bytes(1, &f));
    }

    #[test]
    fn hash_depends_on_previous_hash_and_sequence() {
        let entry = event("customer.read");
        let first = chain_hash(&GENESIS_HASH, 1, &entry);
        assert_ne!(first, chain_hash(&GENESIS_HASH, 2, &entry));
        assert_ne!(first, chain_hash(&[1; 32], 1, &entry));
        assert_eq!(first, chain_hash(&GENESIS_HASH, 1, &entry));
    }
}
