//! Customer feedback: surveys (CSAT after a ticket closes, NPS batches) whose public links carry a token stored
//! only as its hash, and the feedback rows (score, masked comment, and what the analysis groups by). Every write
//! appends its audit entries in the same transaction.

use sqlx::Row;

use crate::{with_pool, CustomerScope, Store, StoreError, StoreResult};

/// A survey: an invitation to answer once through a public link.
#[derive(Clone)]
pub struct SurveyRow {
    /// Survey id (UUIDv7 text).
    pub id: String,
    /// `csat` or `nps`.
    pub kind: String,
    /// Who is asked.
    pub customer_id: String,
    /// The ticket a CSAT survey is about.
    pub ticket_id: Option<String>,
    /// The NPS batch it was sent with.
    pub campaign_id: Option<String>,
    /// SHA-256 of the link's token (the token itself is never stored).
    pub token_hash: Vec<u8>,
    /// Who created it (`None`: the system, when a ticket closed).
    pub created_by: Option<String>,
    /// After this (Unix ms) it can no longer be answered.
    pub expires_at: i64,
    /// When it was answered.
    pub answered_at: Option<i64>,
    /// How often the server has sent its link to the customer (by e-mail or SMS).
    pub sent_count: i64,
    /// When it last did.
    pub last_sent_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
}

/// A link the server sent to a customer: a token of its own (only its hash is stored), valid with the survey.
#[derive(Clone)]
pub struct SurveyLinkRow {
    /// SHA-256 of the sent link's token.
    pub token_hash: Vec<u8>,
    /// The survey it answers.
    pub survey_id: String,
    /// The message that carried it.
    pub message_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

impl std::fmt::Debug for SurveyLinkRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SurveyLinkRow")
            .field("survey_id", &self.survey_id)
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

const SURVEY_COLUMNS: &str =
    "survey.id AS id, survey.kind AS kind, survey.customer_id AS customer_id, \
     survey.ticket_id AS ticket_id, survey.campaign_id AS campaign_id, \
     survey.token_hash AS token_hash, survey.created_by AS created_by, \
     survey.expires_at AS expires_at, survey.answered_at AS answered_at, \
     survey.sent_count AS sent_count, survey.last_sent_at AS last_sent_at, \
     survey.created_at AS created_at";

macro_rules! survey_from_row {
    ($row:expr) => {
        SurveyRow {
            id: $row.try_get("id")?,
            kind: $row.try_get("kind")?,
            customer_id: $row.try_get("customer_id")?,
            ticket_id: $row.try_get("ticket_id")?,
            campaign_id: $row.try_get("campaign_id")?,
            token_hash: $row.try_get("token_hash")?,
            created_by: $row.try_get("created_by")?,
            expires_at: $row.try_get("expires_at")?,
            answered_at: $row.try_get("answered_at")?,
            sent_count: $row.try_get("sent_count")?,
            last_sent_at: $row.try_get("last_sent_at")?,
            created_at: $row.try_get("created_at")?,
        }
    };
}

impl std::fmt::Debug for SurveyRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SurveyRow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The statement that records a survey; a CSAT survey for a ticket that already has one is skipped.
pub(crate) const INSERT_SURVEY: &str =
    "INSERT INTO survey (id, kind, customer_id, ticket_id, campaign_id, token_hash, created_by, expires_at, \
     answered_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
     ON CONFLICT (ticket_id) DO NOTHING";

macro_rules! bind_survey {
    ($survey:expr) => {
        sqlx::query(crate::feedback::INSERT_SURVEY)
            .bind(&$survey.id)
            .bind(&$survey.kind)
            .bind(&$survey.customer_id)
            .bind(&$survey.ticket_id)
            .bind(&$survey.campaign_id)
            .bind(&$survey.token_hash)
            .bind(&$survey.created_by)
            .bind($survey.expires_at)
            .bind($survey.answered_at)
            .bind($survey.created_at)
    };
}
pub(crate) use bind_survey;

/// One score with what the analysis needs.
#[derive(Clone)]
pub struct FeedbackRow {
    /// Feedback id (UUIDv7 text).
    pub id: String,
    /// The customer it came from.
    pub customer_id: String,
    /// `csat` (1–5) or `nps` (0–10).
    pub kind: String,
    /// The score.
    pub score: i64,
    /// The comment with personal data masked in place.
    pub comment_masked: String,
    /// The comment's original spans, sealed under the customer's key.
    pub comment_spans_ct: Option<Vec<u8>>,
    /// JSON span index of the comment.
    pub comment_span_index: String,
    /// `survey` (answered through a link) or `staff` (recorded by staff).
    pub source: String,
    /// The survey answered.
    pub survey_id: Option<String>,
    /// The ticket it is about.
    pub ticket_id: Option<String>,
    /// The ticket's channel.
    pub channel: Option<String>,
    /// The ticket's assignee (the agent judged).
    pub agent_id: Option<String>,
    /// The product, when it is about an order item.
    pub product_id: Option<String>,
    /// The staff member who recorded it.
    pub recorded_by: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

impl std::fmt::Debug for FeedbackRow {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FeedbackRow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("score", &self.score)
            .finish_non_exhaustive()
    }
}

/// What the analysis reads of one feedback row (the comment only for low scores).
#[derive(Debug, Clone)]
pub struct FeedbackStatRow {
    /// `csat` or `nps`.
    pub kind: String,
    /// The score.
    pub score: i64,
    /// The ticket's channel.
    pub channel: Option<String>,
    /// The agent.
    pub agent_id: Option<String>,
    /// The product.
    pub product_id: Option<String>,
    /// The masked comment of a low score (CSAT ≤ 2, NPS ≤ 6); empty otherwise.
    pub low_comment: String,
    /// Unix ms.
    pub created_at: i64,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// `customer_id IN (…the scope…)` with its binds, numbering from `next`; `None` for an unrestricted scope.
fn scope_filter(
    scope: Option<&CustomerScope>,
    next: &mut usize,
    binds: &mut Vec<Bind>,
) -> Option<String> {
    let scope = scope?;
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
    if clauses.is_empty() {
        return None;
    }
    Some(format!(
        "customer_id IN (SELECT id FROM customer WHERE {})",
        clauses.join(" AND ")
    ))
}

fn insert_feedback_sql() -> &'static str {
    "INSERT INTO feedback (id, customer_id, kind, score, comment_masked, comment_spans_ct, comment_span_index, \
     source, survey_id, ticket_id, channel, agent_id, product_id, recorded_by, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)"
}

macro_rules! bind_feedback {
    ($row:expr) => {
        sqlx::query(insert_feedback_sql())
            .bind(&$row.id)
            .bind(&$row.customer_id)
            .bind(&$row.kind)
            .bind($row.score)
            .bind(&$row.comment_masked)
            .bind(&$row.comment_spans_ct)
            .bind(&$row.comment_span_index)
            .bind(&$row.source)
            .bind(&$row.survey_id)
            .bind(&$row.ticket_id)
            .bind(&$row.channel)
            .bind(&$row.agent_id)
            .bind(&$row.product_id)
            .bind(&$row.recorded_by)
            .bind($row.created_at)
    };
}

impl Store {
    /// Records surveys (an NPS batch) with their audit entries, in one transaction.
    pub async fn insert_surveys(
        &self,
        surveys: &[SurveyRow],
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for survey in surveys {
                bind_survey!(survey).execute(&mut *tx).await?;
            }
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// The survey whose token hashes to `token_hash`: the link shown at creation, or one the server sent (then
    /// with the id of the message that carried it).
    pub async fn survey_by_token_hash(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(SurveyRow, Option<String>)>> {
        let sql = format!(
            "SELECT {SURVEY_COLUMNS}, NULL AS message_id FROM survey WHERE survey.token_hash = $1 \
             UNION ALL \
             SELECT {SURVEY_COLUMNS}, survey_link.message_id AS message_id FROM survey_link \
             JOIN survey ON survey.id = survey_link.survey_id WHERE survey_link.token_hash = $1"
        );
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(token_hash)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<(SurveyRow, Option<String>), sqlx::Error> {
                    Ok((survey_from_row!(row), row.try_get("message_id")?))
                })
        });
        Ok(row.transpose()?)
    }

    /// One survey.
    pub async fn survey(&self, id: &str) -> StoreResult<Option<SurveyRow>> {
        let sql = format!("SELECT {SURVEY_COLUMNS} FROM survey WHERE survey.id = $1");
        let row = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<SurveyRow, sqlx::Error> { Ok(survey_from_row!(row)) })
        });
        Ok(row.transpose()?)
    }

    /// The surveys of one customer, newest first (at most `limit`).
    pub async fn customer_surveys(
        &self,
        customer_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<SurveyRow>> {
        self.surveys_where(
            "survey.customer_id = $1 ORDER BY survey.created_at DESC, survey.id DESC",
            customer_id,
            limit,
        )
        .await
    }

    /// The surveys of an NPS batch, oldest first.
    pub async fn campaign_surveys(&self, campaign_id: &str) -> StoreResult<Vec<SurveyRow>> {
        self.surveys_where(
            "survey.campaign_id = $1 ORDER BY survey.created_at, survey.id",
            campaign_id,
            i64::MAX,
        )
        .await
    }

    /// At most `limit` surveys chosen and ordered by `filter` (a condition on `$1`, then `ORDER BY`).
    async fn surveys_where(
        &self,
        filter: &'static str,
        key: &str,
        limit: i64,
    ) -> StoreResult<Vec<SurveyRow>> {
        let sql = format!("SELECT {SURVEY_COLUMNS} FROM survey WHERE {filter} LIMIT $2");
        let rows = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(key)
                .bind(limit)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<SurveyRow, sqlx::Error> { Ok(survey_from_row!(row)) })
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(rows)
    }

    /// Records the sending of a survey's link: claims the survey for the send — only while it is unanswered and
    /// unexpired at `link.created_at`, and not sent since the sender read it (its last send is still
    /// `seen_last_sent`, so two sends racing for one survey send once) — counting the send and replacing the
    /// creation token's hash by `retired_hash` (a token nobody holds), then records the message, the sent link and
    /// the audit entries, in one transaction. `false` when the survey was answered, has expired or was sent
    /// meanwhile (nothing is written).
    pub async fn insert_survey_message(
        &self,
        message: &crate::MessageRow,
        link: &SurveyLinkRow,
        retired_hash: &[u8],
        seen_last_sent: Option<i64>,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE survey SET token_hash = $2, sent_count = sent_count + 1, last_sent_at = $3, \
                 updated_at = $3 WHERE id = $1 AND answered_at IS NULL AND expires_at > $3 \
                 AND (last_sent_at = $4 OR (last_sent_at IS NULL AND $4 IS NULL))",
            )
            .bind(&link.survey_id)
            .bind(retired_hash)
            .bind(link.created_at)
            .bind(seen_last_sent)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            crate::messages::bind_message!(message)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO survey_link (token_hash, survey_id, message_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(&link.token_hash)
            .bind(&link.survey_id)
            .bind(link.message_id.as_deref())
            .bind(link.created_at)
            .execute(&mut *tx)
            .await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<bool, StoreError>(true)
        })
    }

    /// How many surveys a ticket has (zero or one).
    pub async fn ticket_survey_count(&self, ticket_id: &str) -> StoreResult<i64> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM survey WHERE ticket_id = $1")
                .bind(ticket_id)
                .fetch_one(pool)
                .await?
        }))
    }

    /// Answers a survey: marks it answered — only if it is still open at `feedback.created_at`, so a token works
    /// once however many requests race — and records the feedback and the audit entries, in one transaction.
    /// `false` when the survey was already answered or has expired (nothing is written).
    pub async fn answer_survey(
        &self,
        survey_id: &str,
        feedback: &FeedbackRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<bool> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE survey SET answered_at = $2, updated_at = $2 \
                 WHERE id = $1 AND answered_at IS NULL AND expires_at > $2",
            )
            .bind(survey_id)
            .bind(feedback.created_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            bind_feedback!(feedback).execute(&mut *tx).await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<bool, StoreError>(true)
        })
    }

    /// Records feedback staff received, with its audit entries, in one transaction.
    pub async fn insert_feedback(
        &self,
        feedback: &FeedbackRow,
        audit: &[crate::AuditEvent],
    ) -> StoreResult<()> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            bind_feedback!(feedback).execute(&mut *tx).await?;
            crate::audit::append_in(&mut *tx, audit).await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })
    }

    /// The feedback of customers in `scope` (`None`: all) created in `[from, to)`, oldest first.
    pub async fn feedback_stats(
        &self,
        scope: Option<&CustomerScope>,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<FeedbackStatRow>> {
        let mut next = 1usize;
        let mut binds = Vec::new();
        let mut clauses = Vec::new();
        if let Some(clause) = scope_filter(scope, &mut next, &mut binds) {
            clauses.push(clause);
        }
        clauses.push(format!(
            "created_at >= ${next} AND created_at < ${}",
            next + 1
        ));
        binds.push(Bind::Int(from));
        binds.push(Bind::Int(to));
        let sql = format!(
            "SELECT kind, score, channel, agent_id, product_id, created_at, \
             CASE WHEN (kind = 'csat' AND score <= 2) OR (kind = 'nps' AND score <= 6) \
             THEN comment_masked ELSE '' END AS low_comment \
             FROM feedback WHERE {} ORDER BY created_at, id",
            clauses.join(" AND ")
        );
        let rows = with_pool!(self, |pool| {
            // Planned for these values at every run, as the reports' queries (`reports::bound!`).
            let mut query = sqlx::query(&sql).persistent(false);
            for bind in &binds {
                query = match bind {
                    Bind::Text(text) => query.bind(text.as_str()),
                    Bind::Int(number) => query.bind(*number),
                };
            }
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<FeedbackStatRow, sqlx::Error> {
                    Ok(FeedbackStatRow {
                        kind: row.try_get("kind")?,
                        score: row.try_get("score")?,
                        channel: row.try_get("channel")?,
                        agent_id: row.try_get("agent_id")?,
                        product_id: row.try_get("product_id")?,
                        low_comment: row.try_get("low_comment")?,
                        created_at: row.try_get("created_at")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }

    /// The masked subject and description of the newest `limit` complaint tickets of customers in `scope`
    /// (`None`: all) opened in `[from, to)`.
    pub async fn complaint_texts(
        &self,
        scope: Option<&CustomerScope>,
        from: i64,
        to: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let mut next = 1usize;
        let mut binds = Vec::new();
        let mut clauses = vec!["category = 'complaint'".to_owned()];
        if let Some(clause) = scope_filter(scope, &mut next, &mut binds) {
            clauses.push(clause);
        }
        clauses.push(format!(
            "created_at >= ${next} AND created_at < ${}",
            next + 1
        ));
        binds.push(Bind::Int(from));
        binds.push(Bind::Int(to));
        let sql = format!(
            "SELECT subject_masked, description_masked FROM ticket WHERE {} \
             ORDER BY created_at DESC, id DESC LIMIT ${}",
            clauses.join(" AND "),
            next + 2
        );
        binds.push(Bind::Int(limit));
        let rows = with_pool!(self, |pool| {
            // Planned for these values at every run, as the reports' queries (`reports::bound!`).
            let mut query = sqlx::query(&sql).persistent(false);
            for bind in &binds {
                query = match bind {
                    Bind::Text(text) => query.bind(text.as_str()),
                    Bind::Int(number) => query.bind(*number),
                };
            }
            query
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| -> Result<String, sqlx::Error> {
                    let subject: String = row.try_get("subject_masked")?;
                    let description: String = row.try_get("description_masked")?;
                    Ok(format!("{subject}\n{description}"))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })?;
        Ok(rows)
    }
}
