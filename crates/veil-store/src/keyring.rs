//! Wrapped key material: the master key's check value, the key-encryption keys and blind-index key (wrapped by
//! the master key), and each customer's data key (wrapped by a key-encryption key).

use sqlx::Row;

use crate::{with_pool, Store, StoreResult};

macro_rules! customer_key_from_row {
    ($row:expr) => {
        (|| -> Result<CustomerKeyRow, sqlx::Error> {
            Ok(CustomerKeyRow {
                customer_id: $row.try_get("customer_id")?,
                dek_version: $row.try_get("dek_version")?,
                kek_version: $row.try_get("kek_version")?,
                wrapped: $row.try_get("wrapped")?,
            })
        })()
    };
}

/// How the master key is obtained and the value that proves a candidate key is the right one.
#[derive(Debug, Clone)]
pub struct MasterKeyMeta {
    /// `file` or `passphrase`.
    pub source: String,
    /// Argon2id salt for passphrase-derived keys.
    pub salt: Option<Vec<u8>>,
    /// A constant sealed under the master key.
    pub check_blob: Vec<u8>,
}

/// One version of a key kept in the keyring.
#[derive(Debug, Clone)]
pub struct KeyringRow {
    /// `kek` or `blind_index`.
    pub purpose: String,
    /// Version number, from 1.
    pub version: i64,
    /// The key wrapped by the master key; `None` once retired.
    pub wrapped: Option<Vec<u8>>,
    /// `active`, `previous` or `retired`.
    pub state: String,
}

/// A customer's wrapped data key.
#[derive(Debug, Clone)]
pub struct CustomerKeyRow {
    /// The customer.
    pub customer_id: String,
    /// Version of the data key (part of every field's associated data).
    pub dek_version: i64,
    /// Version of the key-encryption key that wraps it.
    pub kek_version: i64,
    /// The wrapped data key.
    pub wrapped: Vec<u8>,
}

impl Store {
    /// The master key metadata, if the database has been initialised.
    pub async fn master_key_meta(&self) -> StoreResult<Option<MasterKeyMeta>> {
        let row = with_pool!(self, |pool| {
            sqlx::query("SELECT source, salt, check_blob FROM master_key_meta WHERE id = 1")
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<MasterKeyMeta, sqlx::Error> {
                    Ok(MasterKeyMeta {
                        source: row.try_get("source")?,
                        salt: row.try_get("salt")?,
                        check_blob: row.try_get("check_blob")?,
                    })
                })
        });
        Ok(row.transpose()?)
    }

    /// Records (or replaces, on master key rotation) the master key metadata.
    pub async fn put_master_key_meta(&self, meta: &MasterKeyMeta, now: i64) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO master_key_meta (id, source, salt, check_blob, created_at, updated_at) \
                 VALUES (1, $1, $2, $3, $4, $4) \
                 ON CONFLICT (id) DO UPDATE SET source = $1, salt = $2, check_blob = $3, updated_at = $4",
            )
            .bind(&meta.source)
            .bind(&meta.salt)
            .bind(&meta.check_blob)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Every keyring row, in (purpose, version) order.
    pub async fn keyring_rows(&self) -> StoreResult<Vec<KeyringRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT purpose, version, wrapped, state FROM keyring ORDER BY purpose, version",
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<KeyringRow, sqlx::Error> {
                Ok(KeyringRow {
                    purpose: row.try_get("purpose")?,
                    version: row.try_get("version")?,
                    wrapped: row.try_get("wrapped")?,
                    state: row.try_get("state")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Adds a key version.
    pub async fn insert_keyring_row(&self, row: &KeyringRow, now: i64) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO keyring (purpose, version, wrapped, state, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(&row.purpose)
            .bind(row.version)
            .bind(&row.wrapped)
            .bind(&row.state)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Changes a key version's wrapped material and state (re-wrap under a new master key, or retirement).
    pub async fn update_keyring_row(&self, row: &KeyringRow, now: i64) -> StoreResult<()> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE keyring SET wrapped = $3, state = $4, updated_at = $5 \
                 WHERE purpose = $1 AND version = $2",
            )
            .bind(&row.purpose)
            .bind(row.version)
            .bind(&row.wrapped)
            .bind(&row.state)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Replaces the master key: every keyring row re-wrapped and the new check value, in one transaction, so a
    /// crash leaves the database wholly under the old key or wholly under the new one.
    pub async fn replace_master_key(
        &self,
        rows: &[KeyringRow],
        meta: &MasterKeyMeta,
        now: i64,
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for row in rows {
                sqlx::query(
                    "UPDATE keyring SET wrapped = $3, updated_at = $4 WHERE purpose = $1 AND version = $2",
                )
                .bind(&row.purpose)
                .bind(row.version)
                .bind(&row.wrapped)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE master_key_meta SET source = $1, salt = $2, check_blob = $3, updated_at = $4 WHERE id = 1",
            )
            .bind(&meta.source)
            .bind(&meta.salt)
            .bind(&meta.check_blob)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The wrapped data key of one customer.
    pub async fn customer_key(&self, customer_id: &str) -> StoreResult<Option<CustomerKeyRow>> {
        let row = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT customer_id, dek_version, kek_version, wrapped FROM customer_key \
                 WHERE customer_id = $1",
            )
            .bind(customer_id)
            .fetch_optional(pool)
            .await?
            .map(|row| customer_key_from_row!(row))
        });
        Ok(row.transpose()?)
    }

    /// The data keys of `customer_ids` (those that exist), in one query per 500 ids.
    pub async fn customer_keys_by_ids(
        &self,
        customer_ids: &[String],
    ) -> StoreResult<Vec<CustomerKeyRow>> {
        let mut out = Vec::with_capacity(customer_ids.len());
        for chunk in customer_ids.chunks(500) {
            let sql = format!(
                "SELECT customer_id, dek_version, kek_version, wrapped FROM customer_key \
                 WHERE customer_id IN ({})",
                crate::customers::in_list(chunk.len())
            );
            let rows = with_pool!(self, |pool| {
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                query
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|row| customer_key_from_row!(row))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Up to `limit` customer keys still wrapped by a key-encryption key older than `kek_version`.
    pub async fn customer_keys_below_kek(
        &self,
        kek_version: i64,
        limit: i64,
    ) -> StoreResult<Vec<CustomerKeyRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT customer_id, dek_version, kek_version, wrapped FROM customer_key \
                 WHERE kek_version < $1 ORDER BY customer_id LIMIT $2",
            )
            .bind(kek_version)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| customer_key_from_row!(row))
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// How many customer keys each key-encryption key version wraps.
    pub async fn customer_key_counts(&self) -> StoreResult<Vec<(i64, i64)>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT kek_version, COUNT(*) AS n FROM customer_key GROUP BY kek_version ORDER BY kek_version",
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<(i64, i64), sqlx::Error> {
                Ok((row.try_get("kek_version")?, row.try_get("n")?))
            })
            .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Replaces re-wrapped customer keys in one transaction; a row is only replaced if it is still under the
    /// key-encryption key it was read with, so concurrent rotations cannot lose a key.
    pub async fn rewrap_customer_keys(
        &self,
        rewrapped: &[(CustomerKeyRow, i64)],
        now: i64,
    ) -> StoreResult<u64> {
        let changed = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut changed = 0u64;
            for (row, previous_kek) in rewrapped {
                changed += sqlx::query(
                    "UPDATE customer_key SET kek_version = $2, wrapped = $3, updated_at = $4 \
                     WHERE customer_id = $1 AND kek_version = $5",
                )
                .bind(&row.customer_id)
                .bind(row.kek_version)
                .bind(&row.wrapped)
                .bind(now)
                .bind(previous_kek)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            Ok::<u64, sqlx::Error>(changed)
        })?;
        Ok(changed)
    }
}
