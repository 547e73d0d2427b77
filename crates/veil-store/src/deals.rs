//! Deals (opportunities) with their stage history, and follow-up tasks. Amounts are integers in minor units;
//! titles and reasons are stored masked by the application. Nothing here is personal data beyond the customer id.
//! Visibility is the customer's: list queries take the caller's [`CustomerScope`] as a subquery over `customer`,
//! the same clause the customer list uses.

use sqlx::Row;

use crate::{with_pool, CustomerScope, Store, StoreError, StoreResult};

/// A deal as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealRow {
    /// Deal id (UUIDv7 text).
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// Masked title.
    pub title: String,
    /// Amount in minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Expected close date, `YYYY-MM-DD`.
    pub expected_close: Option<String>,
    /// The salesperson responsible.
    pub owner_id: Option<String>,
    /// Pipeline template key.
    pub pipeline: String,
    /// Stage key within the pipeline.
    pub stage: String,
    /// `open`, `won` or `lost`.
    pub status: String,
    /// Masked reason, when lost.
    pub lost_reason: Option<String>,
    /// Optimistic-concurrency counter, from 1.
    pub version: i64,
    /// Who entered it.
    pub created_by: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
    /// Unix ms, once won or lost.
    pub closed_at: Option<i64>,
}

const DEAL_COLUMNS: &str =
    "id, customer_id, title, amount_minor, currency, expected_close, owner_id, pipeline, \
     stage, status, lost_reason, version, created_by, created_at, updated_at, closed_at";

macro_rules! deal_from_row {
    ($row:expr) => {
        (|| -> Result<DealRow, sqlx::Error> {
            Ok(DealRow {
                id: $row.try_get("id")?,
                customer_id: $row.try_get("customer_id")?,
                title: $row.try_get("title")?,
                amount_minor: $row.try_get("amount_minor")?,
                currency: $row.try_get("currency")?,
                expected_close: $row.try_get("expected_close")?,
                owner_id: $row.try_get("owner_id")?,
                pipeline: $row.try_get("pipeline")?,
                stage: $row.try_get("stage")?,
                status: $row.try_get("status")?,
                lost_reason: $row.try_get("lost_reason")?,
                version: $row.try_get("version")?,
                created_by: $row.try_get("created_by")?,
                created_at: $row.try_get("created_at")?,
                updated_at: $row.try_get("updated_at")?,
                closed_at: $row.try_get("closed_at")?,
            })
        })()
    };
}

/// One entry of a deal's stage history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealStageChangeRow {
    /// Entry id (UUIDv7 text, so id order is time order).
    pub id: String,
    /// The deal.
    pub deal_id: String,
    /// Stage before (none for the creation entry).
    pub from_stage: Option<String>,
    /// Stage after.
    pub to_stage: String,
    /// Status before (none for the creation entry).
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: String,
    /// Who.
    pub actor_id: Option<String>,
    /// Unix ms.
    pub changed_at: i64,
}

/// Narrows a deal listing (the scope still applies).
#[derive(Debug, Clone, Default)]
pub struct DealFilter {
    /// Only this pipeline.
    pub pipeline: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this customer.
    pub customer: Option<String>,
    /// Only deals owned by this user.
    pub owner: Option<String>,
    /// Ids strictly below this one (paging, newest first).
    pub before_id: Option<String>,
    /// At most this many.
    pub limit: i64,
}

/// Open deals of one stage and currency: the funnel's and the board's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTotalRow {
    /// Stage key.
    pub stage: String,
    /// ISO 4217 code.
    pub currency: String,
    /// How many open deals.
    pub deals: i64,
    /// Their amounts summed, minor units.
    pub amount_minor: i64,
}

/// A follow-up task as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRow {
    /// Task id (UUIDv7 text).
    pub id: String,
    /// Masked title.
    pub title: String,
    /// Unix ms.
    pub due_at: i64,
    /// Who is to do it.
    pub assignee_id: String,
    /// The customer it concerns.
    pub customer_id: Option<String>,
    /// The deal it concerns.
    pub deal_id: Option<String>,
    /// Unix ms, once done.
    pub done_at: Option<i64>,
    /// Who marked it done.
    pub done_by: Option<String>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

const TASK_COLUMNS: &str =
    "id, title, due_at, assignee_id, customer_id, deal_id, done_at, done_by, created_by, \
     created_at, updated_at";

macro_rules! task_from_row {
    ($row:expr) => {
        (|| -> Result<TaskRow, sqlx::Error> {
            Ok(TaskRow {
                id: $row.try_get("id")?,
                title: $row.try_get("title")?,
                due_at: $row.try_get("due_at")?,
                assignee_id: $row.try_get("assignee_id")?,
                customer_id: $row.try_get("customer_id")?,
                deal_id: $row.try_get("deal_id")?,
                done_at: $row.try_get("done_at")?,
                done_by: $row.try_get("done_by")?,
                created_by: $row.try_get("created_by")?,
                created_at: $row.try_get("created_at")?,
                updated_at: $row.try_get("updated_at")?,
            })
        })()
    };
}

/// Which tasks a caller sees: all (`scope: None`), or those assigned to or created by `user`, or about a customer
/// inside `scope`.
#[derive(Debug, Clone)]
pub struct TaskVisibility {
    /// The caller.
    pub user: String,
    /// The caller's customer scope; `None` sees every task.
    pub scope: Option<CustomerScope>,
}

/// Narrows a task listing.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Assigned to this user.
    pub assignee: Option<String>,
    /// Due strictly before this time (Unix ms).
    pub due_before: Option<i64>,
    /// Done (`true`) or not (`false`).
    pub done: Option<bool>,
    /// About this customer.
    pub customer: Option<String>,
    /// About this deal.
    pub deal: Option<String>,
    /// At most this many.
    pub limit: i64,
}

enum Bind {
    Text(String),
    Int(i64),
}

fn placeholder(binds: &mut Vec<Bind>, next: &mut usize, value: Bind) -> String {
    binds.push(value);
    let text = format!("${next}");
    *next += 1;
    text
}

/// `customer_id IN (SELECT id FROM customer WHERE <scope>)`, its values pushed in the clause's order.
fn scope_subquery(scope: &CustomerScope, binds: &mut Vec<Bind>, next: &mut usize) -> String {
    let mut clauses = Vec::new();
    crate::customers::scope_clause(scope, next, &mut clauses);
    if let Some(owner) = &scope.owner_id {
        binds.push(Bind::Text(owner.clone()));
    }
    for team in scope.teams.iter().flatten() {
        binds.push(Bind::Text(team.clone()));
    }
    if let Some(user) = &scope.linked_user {
        binds.push(Bind::Text(user.clone()));
    }
    let condition = if clauses.is_empty() {
        "1 = 1".to_owned()
    } else {
        clauses.join(" AND ")
    };
    format!("customer_id IN (SELECT id FROM customer WHERE {condition})")
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut query = $query;
        for bind in $binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.as_str()),
                Bind::Int(number) => query.bind(*number),
            };
        }
        query
    }};
}

fn where_sql(clauses: &[String]) -> String {
    if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    }
}

macro_rules! insert_change {
    ($executor:expr, $change:expr) => {{
        let change: &DealStageChangeRow = $change;
        sqlx::query(
            "INSERT INTO deal_stage_change (id, deal_id, from_stage, to_stage, from_status, to_status, actor_id, \
             changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&change.id)
        .bind(&change.deal_id)
        .bind(&change.from_stage)
        .bind(&change.to_stage)
        .bind(&change.from_status)
        .bind(&change.to_status)
        .bind(&change.actor_id)
        .bind(change.changed_at)
        .execute($executor)
        .await?;
    }};
}

impl Store {
    /// Stores a new deal, its first history entry and the audit entries, in one transaction.
    pub async fn insert_deal(
        &self,
        row: &DealRow,
        opened: &DealStageChangeRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO deal ({DEAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
             $14, $15, $16)"
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&sql)
                .bind(&row.id)
                .bind(&row.customer_id)
                .bind(&row.title)
                .bind(row.amount_minor)
                .bind(&row.currency)
                .bind(&row.expected_close)
                .bind(&row.owner_id)
                .bind(&row.pipeline)
                .bind(&row.stage)
                .bind(&row.status)
                .bind(&row.lost_reason)
                .bind(row.version)
                .bind(&row.created_by)
                .bind(row.created_at)
                .bind(row.updated_at)
                .bind(row.closed_at)
                .execute(&mut *tx)
                .await?;
            insert_change!(&mut *tx, opened);
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// One deal.
    pub async fn deal(&self, id: &str) -> StoreResult<Option<DealRow>> {
        let sql = format!("SELECT {DEAL_COLUMNS} FROM deal WHERE id = $1");
        let row = with_pool!(self, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Some(deal_from_row!(row)?),
                None => None,
            }
        });
        Ok(row)
    }

    /// Writes a deal's changeable fields if its version is still `expected_version` (`row.version` is the new
    /// one), with a history entry when the stage or status changed and the audit entries, in one transaction.
    /// `StaleWrite` (nothing written) when someone changed it first.
    pub async fn update_deal(
        &self,
        row: &DealRow,
        expected_version: i64,
        change: Option<&DealStageChangeRow>,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The guarded UPDATE comes first: it takes the row (PostgreSQL) or the write lock (SQLite), so of two
            // concurrent moves from the same version exactly one succeeds.
            let changed = sqlx::query(
                "UPDATE deal SET title = $2, amount_minor = $3, currency = $4, expected_close = $5, owner_id = $6, \
                 stage = $7, status = $8, lost_reason = $9, version = $10, updated_at = $11, closed_at = $12 \
                 WHERE id = $1 AND version = $13",
            )
            .bind(&row.id)
            .bind(&row.title)
            .bind(row.amount_minor)
            .bind(&row.currency)
            .bind(&row.expected_close)
            .bind(&row.owner_id)
            .bind(&row.stage)
            .bind(&row.status)
            .bind(&row.lost_reason)
            .bind(row.version)
            .bind(row.updated_at)
            .bind(row.closed_at)
            .bind(expected_version)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                tx.rollback().await?;
                return Err(StoreError::StaleWrite);
            }
            if let Some(change) = change {
                insert_change!(&mut *tx, change);
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// A deal's stage history, oldest first.
    pub async fn deal_history(&self, deal_id: &str) -> StoreResult<Vec<DealStageChangeRow>> {
        let rows = with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, deal_id, from_stage, to_stage, from_status, to_status, actor_id, changed_at \
                 FROM deal_stage_change WHERE deal_id = $1 ORDER BY changed_at, id",
            )
            .bind(deal_id)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<DealStageChangeRow, sqlx::Error> {
                Ok(DealStageChangeRow {
                    id: row.try_get("id")?,
                    deal_id: row.try_get("deal_id")?,
                    from_stage: row.try_get("from_stage")?,
                    to_stage: row.try_get("to_stage")?,
                    from_status: row.try_get("from_status")?,
                    to_status: row.try_get("to_status")?,
                    actor_id: row.try_get("actor_id")?,
                    changed_at: row.try_get("changed_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Deals of customers inside `scope` that pass `filter`, newest first.
    pub async fn list_deals(
        &self,
        scope: &CustomerScope,
        filter: &DealFilter,
    ) -> StoreResult<Vec<DealRow>> {
        let mut binds = Vec::new();
        let mut next = 1usize;
        let mut clauses = vec![scope_subquery(scope, &mut binds, &mut next)];
        for (column, value) in [
            ("pipeline", &filter.pipeline),
            ("status", &filter.status),
            ("customer_id", &filter.customer),
            ("owner_id", &filter.owner),
        ] {
            if let Some(value) = value {
                let slot = placeholder(&mut binds, &mut next, Bind::Text(value.clone()));
                clauses.push(format!("{column} = {slot}"));
            }
        }
        if let Some(before) = &filter.before_id {
            let slot = placeholder(&mut binds, &mut next, Bind::Text(before.clone()));
            clauses.push(format!("id < {slot}"));
        }
        let limit = placeholder(&mut binds, &mut next, Bind::Int(filter.limit));
        let sql = format!(
            "SELECT {DEAL_COLUMNS} FROM deal {} ORDER BY id DESC LIMIT {limit}",
            where_sql(&clauses)
        );
        let rows = with_pool!(self, |pool| {
            bind_all!(sqlx::query(&sql), &binds)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| deal_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Open deals of `pipeline` inside `scope`, counted and summed per stage and currency by the database.
    pub async fn open_deal_totals(
        &self,
        scope: &CustomerScope,
        pipeline: &str,
    ) -> StoreResult<Vec<StageTotalRow>> {
        let mut binds = Vec::new();
        let mut next = 1usize;
        let mut clauses = vec![scope_subquery(scope, &mut binds, &mut next)];
        let slot = placeholder(&mut binds, &mut next, Bind::Text(pipeline.to_owned()));
        clauses.push(format!("pipeline = {slot}"));
        clauses.push("status = 'open'".to_owned());
        let sql = format!(
            "SELECT stage, currency, COUNT(*) AS deals, CAST(SUM(amount_minor) AS BIGINT) AS amount \
             FROM deal {} GROUP BY stage, currency ORDER BY stage, currency",
            where_sql(&clauses)
        );
        let rows = with_pool!(self, |pool| {
            bind_all!(sqlx::query(&sql), &binds)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<StageTotalRow, sqlx::Error> {
                    Ok(StageTotalRow {
                        stage: row.try_get("stage")?,
                        currency: row.try_get("currency")?,
                        deals: row.try_get("deals")?,
                        amount_minor: row.try_get("amount")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// Stores a task with its audit entries.
    pub async fn insert_task(&self, row: &TaskRow, audit: &[crate::AuditEvent]) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO follow_up_task ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&sql)
                .bind(&row.id)
                .bind(&row.title)
                .bind(row.due_at)
                .bind(&row.assignee_id)
                .bind(&row.customer_id)
                .bind(&row.deal_id)
                .bind(row.done_at)
                .bind(&row.done_by)
                .bind(&row.created_by)
                .bind(row.created_at)
                .bind(row.updated_at)
                .execute(&mut *tx)
                .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// One task.
    pub async fn task(&self, id: &str) -> StoreResult<Option<TaskRow>> {
        let sql = format!("SELECT {TASK_COLUMNS} FROM follow_up_task WHERE id = $1");
        let row = with_pool!(self, |pool| {
            match sqlx::query(&sql).bind(id).fetch_optional(pool).await? {
                Some(row) => Some(task_from_row!(row)?),
                None => None,
            }
        });
        Ok(row)
    }

    /// Marks a task done (by `actor` at `now`) or not done, if it is not already so, with the audit entries.
    /// `StaleWrite` (nothing written) when it already was.
    pub async fn set_task_done(
        &self,
        id: &str,
        done: bool,
        actor: &str,
        now: i64,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        let sql = if done {
            "UPDATE follow_up_task SET done_at = $2, done_by = $3, updated_at = $2 WHERE id = $1 AND done_at IS NULL"
        } else {
            "UPDATE follow_up_task SET done_at = NULL, done_by = NULL, updated_at = $2 \
             WHERE id = $1 AND done_at IS NOT NULL"
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut query = sqlx::query(sql).bind(id).bind(now);
            if done {
                query = query.bind(actor);
            }
            let changed = query.execute(&mut *tx).await?.rows_affected();
            if changed == 0 {
                tx.rollback().await?;
                return Err(StoreError::StaleWrite);
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// Tasks visible under `visibility` that pass `filter`, soonest due first.
    pub async fn list_tasks(
        &self,
        visibility: &TaskVisibility,
        filter: &TaskFilter,
    ) -> StoreResult<Vec<TaskRow>> {
        let mut binds = Vec::new();
        let mut next = 1usize;
        let mut clauses = Vec::new();
        if let Some(scope) = &visibility.scope {
            let mine = placeholder(&mut binds, &mut next, Bind::Text(visibility.user.clone()));
            let scoped = scope_subquery(scope, &mut binds, &mut next);
            clauses.push(format!(
                "(assignee_id = {mine} OR created_by = {mine} OR {scoped})"
            ));
        }
        for (column, value) in [
            ("assignee_id", &filter.assignee),
            ("customer_id", &filter.customer),
            ("deal_id", &filter.deal),
        ] {
            if let Some(value) = value {
                let slot = placeholder(&mut binds, &mut next, Bind::Text(value.clone()));
                clauses.push(format!("{column} = {slot}"));
            }
        }
        if let Some(before) = filter.due_before {
            let slot = placeholder(&mut binds, &mut next, Bind::Int(before));
            clauses.push(format!("due_at < {slot}"));
        }
        match filter.done {
            Some(true) => clauses.push("done_at IS NOT NULL".to_owned()),
            Some(false) => clauses.push("done_at IS NULL".to_owned()),
            None => {}
        }
        let limit = placeholder(&mut binds, &mut next, Bind::Int(filter.limit));
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM follow_up_task {} ORDER BY due_at, id LIMIT {limit}",
            where_sql(&clauses)
        );
        let rows = with_pool!(self, |pool| {
            bind_all!(sqlx::query(&sql), &binds)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| task_from_row!(row))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }
}
