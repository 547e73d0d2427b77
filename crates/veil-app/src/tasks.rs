//! Follow-up tasks (跟进任务): a title, a due time, an assignee, optionally the customer and/or deal they are
//! about; done or not.
//!
//! Who sees a task: its assignee, its creator, and whoever sees its customer (admins see all). A task about a
//! customer or deal can only be created by someone who sees that customer ([`Veil::authorize`]); anyone else gets
//! 404 as for the customer. Titles are masked like notes before they are stored. Creating, completing and
//! reopening are audited in the same transaction (`task.create`, `task.complete`, `task.reopen`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{StoreError, TaskFilter, TaskRow, TaskVisibility};

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::interactions::parse_rfc3339;
use crate::users::{Actor, Role};
use crate::{format_time, now_ms, Veil};

/// A new task.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// 1–200 characters; personal data typed into it is masked before it is stored.
    pub title: String,
    /// When it is due (RFC 3339).
    pub due_at: String,
    /// Who is to do it (a user id; default: the caller).
    #[serde(default)]
    pub assignee: Option<String>,
    /// The customer it is about (one the caller sees).
    #[serde(default)]
    pub customer_id: Option<String>,
    /// The deal it is about (one the caller sees; its customer becomes the task's).
    #[serde(default)]
    pub deal_id: Option<String>,
}

/// Marks a task done or not done.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    /// `true`: done; `false`: not done.
    pub done: bool,
}

/// A task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// Title (masked).
    pub title: String,
    /// RFC 3339.
    pub due_at: String,
    /// Assignee's user id.
    pub assignee: String,
    /// Customer id.
    pub customer_id: Option<String>,
    /// Deal id.
    pub deal_id: Option<String>,
    /// Whether it is done.
    pub done: bool,
    /// RFC 3339, once done.
    pub done_at: Option<String>,
    /// Not done and past due.
    pub overdue: bool,
    /// Who created it.
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// Filters of the task list.
#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    /// `me` or a user id.
    pub assignee: Option<String>,
    /// Due strictly before this time (RFC 3339).
    pub due_before: Option<String>,
    /// Done or not.
    pub done: Option<bool>,
    /// About this customer.
    pub customer: Option<String>,
    /// About this deal.
    pub deal: Option<String>,
    /// At most this many (1–500, default 100).
    pub limit: Option<u32>,
}

fn view(row: TaskRow, now: i64) -> TaskView {
    TaskView {
        overdue: row.done_at.is_none() && row.due_at < now,
        id: row.id,
        title: row.title,
        due_at: format_time(row.due_at),
        assignee: row.assignee_id,
        customer_id: row.customer_id,
        deal_id: row.deal_id,
        done: row.done_at.is_some(),
        done_at: row.done_at.map(format_time),
        created_by: row.created_by,
        created_at: format_time(row.created_at),
    }
}

impl Veil {
    async fn task_visibility(&self, actor: &Actor) -> AppResult<TaskVisibility> {
        Ok(TaskVisibility {
            user: actor.user_id.to_string(),
            scope: match actor.role {
                Role::Admin => None,
                _ => Some(self.customer_scope(actor).await?),
            },
        })
    }

    /// Creates a follow-up task.
    pub async fn create_task(&self, actor: &Actor, input: &TaskInput) -> AppResult<TaskView> {
        self.permit_recorded(actor, Action::TaskWrite, None).await?;
        let mut errors = Vec::new();
        let title = input.title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            errors.push(FieldError::new(
                "title",
                "invalid_length",
                "must be 1 to 200 characters",
            ));
        }
        let due_at = parse_rfc3339("due_at", &input.due_at).unwrap_or_else(|error| {
            errors.push(error);
            0
        });
        let assignee = match input.assignee.as_deref().map(str::trim) {
            None | Some("") | Some("me") => actor.user_id.to_string(),
            Some(id) => match self.store().user_by_id(id).await? {
                Some(user)
                    if !user.disabled
                        && matches!(
                            user.role.as_str(),
                            "admin" | "manager" | "sales" | "service"
                        ) =>
                {
                    user.id
                }
                _ => {
                    errors.push(FieldError::new(
                        "assignee",
                        "unknown",
                        "no such active staff user",
                    ));
                    String::new()
                }
            },
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        // The deal (and so its customer) must be visible; a given customer must be visible and match.
        let mut customer_id = None;
        let mut deal_id = None;
        if let Some(deal) = input.deal_id.as_deref() {
            let deal = self.store().deal(deal).await?.ok_or(AppError::NotFound)?;
            self.customer_for(actor, &deal.customer_id, Action::TaskWrite)
                .await?;
            customer_id = Some(deal.customer_id);
            deal_id = Some(deal.id);
        }
        if let Some(customer) = input.customer_id.as_deref() {
            let row = self
                .customer_for(actor, customer, Action::TaskWrite)
                .await?;
            if customer_id.as_ref().is_some_and(|id| *id != row.id) {
                return Err(AppError::Validation(vec![FieldError::new(
                    "customer_id",
                    "mismatch",
                    "the deal belongs to another customer",
                )]));
            }
            customer_id = Some(row.id);
        }
        let now = now_ms();
        let row = TaskRow {
            id: uuid::Uuid::now_v7().to_string(),
            title: crate::notes::mask_text(title).body,
            due_at,
            assignee_id: assignee,
            customer_id,
            deal_id,
            done_at: None,
            done_by: None,
            created_by: Some(actor.user_id.to_string()),
            created_at: now,
            updated_at: now,
        };
        let entry = crate::audit::event(Some(actor), "task.create", crate::audit::Outcome::Ok)
            .customers(row.customer_id.clone())
            .detail(serde_json::json!({
                "task_id": row.id, "assignee": row.assignee_id, "deal_id": row.deal_id,
                "due_at": format_time(row.due_at)
            }));
        self.store().insert_task(&row, &[entry]).await?;
        Ok(view(row, now))
    }

    /// Tasks the caller sees, soonest due first. `assignee = "me"` means the caller.
    pub async fn list_tasks(&self, actor: &Actor, query: &TaskQuery) -> AppResult<Vec<TaskView>> {
        self.permit_recorded(actor, Action::TaskRead, None).await?;
        let mut errors = Vec::new();
        let due_before = query.due_before.as_deref().and_then(|text| {
            parse_rfc3339("due_before", text)
                .map_err(|error| errors.push(error))
                .ok()
        });
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let assignee = match query.assignee.as_deref() {
            Some("me") => Some(actor.user_id.to_string()),
            other => other.map(str::to_owned),
        };
        let visibility = self.task_visibility(actor).await?;
        let rows = self
            .store()
            .list_tasks(
                &visibility,
                &TaskFilter {
                    assignee,
                    due_before,
                    done: query.done,
                    customer: query.customer.clone(),
                    deal: query.deal.clone(),
                    limit: i64::from(query.limit.unwrap_or(100).clamp(1, 500)),
                },
            )
            .await?;
        let now = now_ms();
        Ok(rows.into_iter().map(|row| view(row, now)).collect())
    }

    /// Marks a task done or not done (audited); 409 when it already is.
    pub async fn set_task_done(
        &self,
        actor: &Actor,
        id: &str,
        patch: &TaskPatch,
    ) -> AppResult<TaskView> {
        self.permit_recorded(actor, Action::TaskWrite, None).await?;
        let task = self.store().task(id).await?.ok_or(AppError::NotFound)?;
        let me = actor.user_id.to_string();
        let mine = task.assignee_id == me || task.created_by.as_deref() == Some(me.as_str());
        if !mine && actor.role != Role::Admin {
            match &task.customer_id {
                Some(customer) => {
                    self.customer_for(actor, customer, Action::TaskWrite)
                        .await?;
                }
                None => return Err(AppError::NotFound),
            }
        }
        let now = now_ms().max(task.updated_at + 1);
        let action = if patch.done {
            "task.complete"
        } else {
            "task.reopen"
        };
        let entry = crate::audit::event(Some(actor), action, crate::audit::Outcome::Ok)
            .customers(task.customer_id.clone())
            .detail(serde_json::json!({"task_id": task.id}));
        match self
            .store()
            .set_task_done(&task.id, patch.done, &me, now, &[entry])
            .await
        {
            Ok(()) => {}
            Err(StoreError::StaleWrite) => {
                return Err(AppError::Conflict(if patch.done {
                    "the task is already done".to_owned()
                } else {
                    "the task is not done".to_owned()
                }))
            }
            Err(error) => return Err(error.into()),
        }
        let row = self.store().task(id).await?.ok_or(AppError::NotFound)?;
        Ok(view(row, now_ms()))
    }
}
