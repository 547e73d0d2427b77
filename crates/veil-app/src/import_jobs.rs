//! Reading customer import jobs back (the web page `/imports` lists them and shows one job's result): the job's
//! counters and its issues (row, column, field, reason — never a value), as [`crate::imports`] recorded them.
//! Who may read: the roles that may import (`CustomerCreate`); admins see every job, everyone else their own.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::ImportJobRow;

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::{AppError, AppResult};
use crate::imports::{ImportIssue, MAX_REPORTED_ISSUES};
use crate::users::{Actor, Role};
use crate::{format_time, Veil};

/// Jobs listed, at most.
pub const MAX_JOBS: i64 = 50;

/// An import job as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportJobView {
    /// Job id.
    pub id: String,
    /// Who ran it (user id).
    pub actor: String,
    /// `csv` or `xlsx`.
    pub format: String,
    /// `running` (interrupted or in progress: `--resume` continues it) or `done`.
    pub state: String,
    /// The last file row whose batch committed.
    pub rows_done: i64,
    /// Customers imported.
    pub imported: i64,
    /// Rows refused by validation.
    pub invalid: i64,
    /// Rows refused as duplicates.
    pub duplicates: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// One job with its issues.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportJobDetail {
    /// The job.
    pub job: ImportJobView,
    /// Its issues in row order.
    pub issues: Vec<ImportIssue>,
    /// More issues exist than are listed.
    pub issues_truncated: bool,
}

fn job_view(row: ImportJobRow) -> ImportJobView {
    ImportJobView {
        id: row.id,
        actor: row.actor_id,
        format: row.format,
        state: row.state,
        rows_done: row.rows_done,
        imported: row.imported,
        invalid: row.invalid,
        duplicates: row.duplicates,
        created_at: format_time(row.created_at),
        updated_at: format_time(row.updated_at),
    }
}

impl Veil {
    /// The newest import jobs the caller may read, newest first.
    pub async fn list_import_jobs(&self, actor: &Actor) -> AppResult<Vec<ImportJobView>> {
        self.permit_recorded(actor, Action::CustomerCreate, None)
            .await?;
        let me = actor.user_id.to_string();
        let only = (actor.role != Role::Admin).then_some(me.as_str());
        let rows = self.store().import_jobs(only, MAX_JOBS).await?;
        Ok(rows.into_iter().map(job_view).collect())
    }

    /// One import job and its issues; 404 for a job the caller may not read.
    pub async fn import_job_detail(&self, actor: &Actor, id: &str) -> AppResult<ImportJobDetail> {
        self.permit_recorded(actor, Action::CustomerCreate, None)
            .await?;
        let row = self
            .store()
            .import_job(id)
            .await?
            .filter(|row| actor.role == Role::Admin || row.actor_id == actor.user_id.to_string())
            .ok_or(AppError::NotFound)?;
        let mut issues = self
            .store()
            .import_issues(&row.id, MAX_REPORTED_ISSUES as i64 + 1)
            .await?;
        let issues_truncated = issues.len() > MAX_REPORTED_ISSUES;
        issues.truncate(MAX_REPORTED_ISSUES);
        self.record(&[
            crate::audit::event(Some(actor), "import.read", crate::audit::Outcome::Ok)
                .detail(serde_json::json!({"job_id": row.id})),
        ])
        .await?;
        Ok(ImportJobDetail {
            job: job_view(row),
            issues: issues.iter().map(ImportIssue::from).collect(),
            issues_truncated,
        })
    }
}
