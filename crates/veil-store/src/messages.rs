//! Message templates and the record of every message sent to a customer. Neither holds personal data: templates
//! carry placeholders, and a message record keeps only the masked recipient, its status and an error from which
//! the application has removed the address or number.

use sqlx::Row;

use crate::{with_pool, Store, StoreError, StoreResult};

/// A message template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    /// Id (UUIDv7).
    pub id: String,
    /// Unique name (`birthday_zh`).
    pub name: String,
    /// `email` or `sms`.
    pub channel: String,
    /// `zh` or `en`.
    pub language: String,
    /// `care` or `marketing`.
    pub purpose: String,
    /// Email subject (with placeholders).
    pub subject: Option<String>,
    /// Body (with placeholders).
    pub body: String,
    /// Who created it.
    pub created_by: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A message sent (or tried) to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// Id (UUIDv7).
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// The template used.
    pub template_id: Option<String>,
    /// Its name at the time.
    pub template_name: String,
    /// `email` or `sms`.
    pub channel: String,
    /// `care` or `marketing`.
    pub purpose: String,
    /// The address or number, masked.
    pub recipient_masked: String,
    /// `sending`, `sent` or `failed`.
    pub status: String,
    /// Why it failed, without personal data.
    pub error: Option<String>,
    /// The staff member who sent it.
    pub sent_by: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

const TEMPLATE_COLUMNS: &str =
    "id, name, channel, language, purpose, subject, body, created_by, created_at, updated_at";
const MESSAGE_COLUMNS: &str = "id, customer_id, template_id, template_name, channel, purpose, \
     recipient_masked, status, error, sent_by, created_at, updated_at";

/// The statement that records a message.
pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO customer_message (id, customer_id, template_id, \
     template_name, channel, purpose, recipient_masked, status, error, sent_by, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

macro_rules! bind_message {
    ($row:expr) => {
        sqlx::query(crate::messages::INSERT_MESSAGE)
            .bind(&$row.id)
            .bind(&$row.customer_id)
            .bind($row.template_id.as_deref())
            .bind(&$row.template_name)
            .bind(&$row.channel)
            .bind(&$row.purpose)
            .bind(&$row.recipient_masked)
            .bind(&$row.status)
            .bind($row.error.as_deref())
            .bind($row.sent_by.as_deref())
            .bind($row.created_at)
            .bind($row.updated_at)
    };
}
pub(crate) use bind_message;

macro_rules! template_from_row {
    ($row:expr) => {
        TemplateRow {
            id: $row.try_get("id")?,
            name: $row.try_get("name")?,
            channel: $row.try_get("channel")?,
            language: $row.try_get("language")?,
            purpose: $row.try_get("purpose")?,
            subject: $row.try_get("subject")?,
            body: $row.try_get("body")?,
            created_by: $row.try_get("created_by")?,
            created_at: $row.try_get("created_at")?,
            updated_at: $row.try_get("updated_at")?,
        }
    };
}

macro_rules! message_from_row {
    ($row:expr) => {
        MessageRow {
            id: $row.try_get("id")?,
            customer_id: $row.try_get("customer_id")?,
            template_id: $row.try_get("template_id")?,
            template_name: $row.try_get("template_name")?,
            channel: $row.try_get("channel")?,
            purpose: $row.try_get("purpose")?,
            recipient_masked: $row.try_get("recipient_masked")?,
            status: $row.try_get("status")?,
            error: $row.try_get("error")?,
            sent_by: $row.try_get("sent_by")?,
            created_at: $row.try_get("created_at")?,
            updated_at: $row.try_get("updated_at")?,
        }
    };
}

impl Store {
    /// Adds a template with its audit entry; a taken name is a conflict.
    pub async fn insert_template(
        &self,
        row: &TemplateRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO message_template ({TEMPLATE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(&row.id)
            .bind(&row.name)
            .bind(&row.channel)
            .bind(&row.language)
            .bind(&row.purpose)
            .bind(row.subject.as_deref())
            .bind(&row.body)
            .bind(row.created_by.as_deref())
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Replaces a template, provided nobody changed it since `expected_updated_at`.
    pub async fn update_template(
        &self,
        row: &TemplateRow,
        expected_updated_at: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE message_template SET name = $2, channel = $3, language = $4, purpose = $5, \
                 subject = $6, body = $7, updated_at = $8 WHERE id = $1 AND updated_at = $9",
            )
            .bind(&row.id)
            .bind(&row.name)
            .bind(&row.channel)
            .bind(&row.language)
            .bind(&row.purpose)
            .bind(row.subject.as_deref())
            .bind(&row.body)
            .bind(row.updated_at)
            .bind(expected_updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                tx.rollback().await?;
                return Err(StoreError::StaleWrite);
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a template (messages already sent keep its name). Returns whether it existed.
    pub async fn delete_template(
        &self,
        id: &str,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM message_template WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 1 {
                crate::audit::append_in(&mut *tx, audit).await?;
            }
            tx.commit().await?;
            Ok(deleted == 1)
        })
    }

    /// Every template, by name.
    pub async fn list_templates(&self) -> StoreResult<Vec<TemplateRow>> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM message_template ORDER BY name");
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<TemplateRow, sqlx::Error> { Ok(template_from_row!(row)) })
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// One template by id or by name.
    pub async fn template(&self, id_or_name: &str) -> StoreResult<Option<TemplateRow>> {
        let sql =
            format!("SELECT {TEMPLATE_COLUMNS} FROM message_template WHERE id = $1 OR name = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id_or_name)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<TemplateRow, sqlx::Error> { Ok(template_from_row!(row)) })
        });
        Ok(row.transpose()?)
    }

    /// Records a message about to be sent, with its audit entry (committed before anything is decrypted).
    pub async fn insert_message(
        &self,
        row: &MessageRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            bind_message!(row).execute(&mut *tx).await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Sets a message's outcome (`sent` or `failed`, with an error free of personal data), with `audit`.
    pub async fn finish_message(
        &self,
        id: &str,
        status: &str,
        error: Option<&str>,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE customer_message SET status = $2, error = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(status)
            .bind(error)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// One message.
    pub async fn message(&self, id: &str) -> StoreResult<Option<MessageRow>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM customer_message WHERE id = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<MessageRow, sqlx::Error> { Ok(message_from_row!(row)) })
        });
        Ok(row.transpose()?)
    }

    /// A customer's newest `limit` messages.
    pub async fn customer_messages(
        &self,
        customer_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<MessageRow>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM customer_message WHERE customer_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(customer_id)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<MessageRow, sqlx::Error> { Ok(message_from_row!(row)) })
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }
}
