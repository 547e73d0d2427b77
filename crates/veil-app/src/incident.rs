//! Incident response: lock-down, the affected-subjects report, notification templates.
//!
//! Opening an incident (admin or DPO, or the host operator on the command line) puts Veil in lock-down at once:
//! reveals and exports are refused (every grant is suspended for as long as it lasts — grants cannot be used
//! while it is open), and every session and API token of users other than admins and DPOs is revoked, in the
//! same transaction as the `incident.open` audit entry. The report lists, from the audit trail, who revealed or
//! exported which customers' which fields in a period — the affected-subjects list a breach notification needs
//! (PIPL Art. 57, GDPR Art. 33/34) — and fills notification templates in Chinese and English.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{AuditFilter, IncidentRow};

use crate::audit::{event, EventExt, Outcome};
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::users::{Actor, Role};
use crate::{format_time, now_ms, Veil};

/// Actions whose entries show personal data leaving its masked form.
pub const EXPOSING_ACTIONS: [&str; 3] = ["customer.reveal", "customer.export", "note.reveal"];

/// Roles that keep their sessions during a lock-down (to investigate and respond).
const RESPONDERS: [Role; 2] = [Role::Admin, Role::Dpo];

/// An incident as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentView {
    /// Id.
    pub id: String,
    /// Why it was opened (personal data masked).
    pub reason: String,
    /// Who opened it (user id; absent when opened on the server's command line).
    pub opened_by: Option<String>,
    /// When.
    pub opened_at: String,
    /// Who closed it.
    pub closed_by: Option<String>,
    /// When it was closed (absent while open: lock-down in force).
    pub closed_at: Option<String>,
    /// Closing note (masked).
    pub close_note: Option<String>,
    /// Whether lock-down is in force.
    pub open: bool,
}

fn view(row: &IncidentRow) -> IncidentView {
    IncidentView {
        id: row.id.clone(),
        reason: row.reason.clone(),
        opened_by: row.opened_by.clone(),
        opened_at: format_time(row.opened_at),
        closed_by: row.closed_by.clone(),
        closed_at: row.closed_at.map(format_time),
        close_note: row.close_note.clone(),
        open: row.closed_at.is_none(),
    }
}

/// What opening an incident did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Lockdown {
    /// The incident.
    pub incident: IncidentView,
    /// Sessions and tokens revoked (everyone but admins and DPOs).
    pub sessions_revoked: u64,
}

/// Opening input.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenIncident {
    /// Why (any personal data in it is masked before it is stored).
    pub reason: String,
}

/// Closing input.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseIncident {
    /// What was found and done (masked before it is stored).
    pub note: String,
}

/// One exposure of one customer's data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Exposure {
    /// Audit sequence number.
    pub seq: i64,
    /// When.
    pub time: String,
    /// Who (user name).
    pub who: Option<String>,
    /// Their role.
    pub role: Option<String>,
    /// From where.
    pub source_ip: Option<String>,
    /// `customer.reveal`, `customer.export`, …
    pub action: String,
    /// Fields exposed.
    pub fields: Vec<String>,
    /// Grant relied on.
    pub grant_id: Option<String>,
}

/// One affected data subject.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AffectedSubject {
    /// Customer id.
    pub customer_id: String,
    /// Every field of theirs exposed in the period.
    pub fields: Vec<String>,
    /// The exposures.
    pub exposures: Vec<Exposure>,
}

/// The incident report for a period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentReport {
    /// Period start (inclusive).
    pub from: String,
    /// Period end (exclusive).
    pub to: String,
    /// Customers whose data was revealed or exported.
    pub affected: Vec<AffectedSubject>,
    /// Staff who revealed or exported.
    pub actors: Vec<String>,
    /// Kinds of data exposed across all subjects.
    pub fields: Vec<String>,
    /// Notification to data subjects, Chinese.
    pub notice_subject_zh: String,
    /// Notification to data subjects, English.
    pub notice_subject_en: String,
    /// Report to the regulator, Chinese.
    pub notice_regulator_zh: String,
    /// Report to the regulator, English.
    pub notice_regulator_en: String,
}

fn field_label_zh(field: &str) -> &'static str {
    match field {
        "name" => "姓名",
        "phone" => "手机号码",
        "id_number" => "身份证号码",
        "email" => "电子邮箱",
        "address" => "地址",
        "bank_card" => "银行卡号",
        "birth_date" => "出生日期",
        _ => "其他信息",
    }
}

fn field_label_en(field: &str) -> &'static str {
    match field {
        "name" => "name",
        "phone" => "mobile number",
        "id_number" => "resident ID number",
        "email" => "email address",
        "address" => "address",
        "bank_card" => "bank card number",
        "birth_date" => "date of birth",
        _ => "other information",
    }
}

impl Veil {
    /// The open incident, if lock-down is in force.
    pub async fn open_incident(&self) -> AppResult<Option<IncidentView>> {
        Ok(self.store().open_incident_row().await?.as_ref().map(view))
    }

    /// Refuses while an incident is open: called by every reveal and export before anything is decrypted.
    pub async fn ensure_not_locked_down(&self) -> AppResult<()> {
        if self.store().open_incident_row().await?.is_some() {
            return Err(AppError::Forbidden(
                "an incident is open: reveals and exports are blocked until it is closed",
            ));
        }
        Ok(())
    }

    /// Opens an incident: lock-down (see the module docs). `actor` is `None` on the server's command line.
    pub async fn open_incident_as(
        &self,
        actor: Option<&Actor>,
        input: &OpenIncident,
    ) -> AppResult<Lockdown> {
        if let Some(actor) = actor {
            self.permit_recorded(actor, Action::IncidentManage, None)
                .await?;
        }
        let reason = input.reason.trim();
        if reason.is_empty() || reason.chars().count() > 2000 {
            return Err(AppError::Validation(vec![FieldError::new(
                "reason",
                "invalid_length",
                "must be 1 to 2000 characters",
            )]));
        }
        let masked = crate::notes::mask_text(reason).body;
        let row = IncidentRow {
            id: uuid::Uuid::now_v7().to_string(),
            reason: masked.clone(),
            opened_by: actor.map(|actor| actor.user_id.to_string()),
            opened_at: now_ms(),
            closed_by: None,
            closed_at: None,
            close_note: None,
        };
        let entry = event(actor, "incident.open", Outcome::Ok)
            .detail(serde_json::json!({"incident_id": row.id, "reason": masked}));
        let keep: Vec<&str> = RESPONDERS.iter().map(|role| role.as_str()).collect();
        let revoked = self
            .store()
            .open_incident(&row, &keep, &entry)
            .await
            .map_err(|error| match error {
                veil_store::StoreError::Conflict(_) => {
                    AppError::Conflict("an incident is already open".to_owned())
                }
                other => other.into(),
            })?;
        let grants = self.revoke_all_grants(actor, "incident lock-down").await?;
        tracing::warn!(incident = %row.id, sessions_revoked = revoked, grants_revoked = grants, "incident opened: lock-down in force");
        Ok(Lockdown {
            incident: view(&row),
            sessions_revoked: revoked,
        })
    }

    /// Closes the open incident (`id`, when given, must be it): reveals and exports work again (grants still
    /// within their time resume).
    pub async fn close_incident_as(
        &self,
        actor: Option<&Actor>,
        id: Option<&str>,
        input: &CloseIncident,
    ) -> AppResult<IncidentView> {
        if let Some(actor) = actor {
            self.permit_recorded(actor, Action::IncidentManage, None)
                .await?;
        }
        let open = self
            .store()
            .open_incident_row()
            .await?
            .ok_or_else(|| AppError::Conflict("no incident is open".to_owned()))?;
        if id.is_some_and(|id| id != open.id) {
            return Err(AppError::Conflict(
                "that incident is not the open one".to_owned(),
            ));
        }
        let note = crate::notes::mask_text(input.note.trim()).body;
        if note.is_empty() {
            return Err(AppError::Validation(vec![FieldError::new(
                "note",
                "required",
                "say what was found and done",
            )]));
        }
        let now = now_ms();
        let closed_by = actor.map(|actor| actor.user_id.to_string());
        let entry = event(actor, "incident.close", Outcome::Ok)
            .detail(serde_json::json!({"incident_id": open.id, "note": note}));
        if !self
            .store()
            .close_incident(&open.id, closed_by.as_deref(), &note, now, &[entry])
            .await?
        {
            return Err(AppError::Conflict(
                "the incident was closed meanwhile".to_owned(),
            ));
        }
        tracing::warn!(incident = %open.id, "incident closed: lock-down lifted");
        Ok(view(&IncidentRow {
            closed_by,
            closed_at: Some(now),
            close_note: Some(note),
            ..open
        }))
    }

    /// Every incident, newest first.
    pub async fn list_incidents(&self, actor: &Actor) -> AppResult<Vec<IncidentView>> {
        self.permit_recorded(actor, Action::IncidentManage, None)
            .await?;
        Ok(self.store().incidents().await?.iter().map(view).collect())
    }

    /// Who revealed or exported which customers' which fields with `from <= time < to`, and notification texts.
    /// The report itself is recorded.
    pub async fn incident_report(
        &self,
        actor: Option<&Actor>,
        from: i64,
        to: i64,
    ) -> AppResult<IncidentReport> {
        if let Some(actor) = actor {
            self.permit_recorded(actor, Action::IncidentManage, None)
                .await?;
        }
        if from >= to {
            return Err(AppError::Validation(vec![FieldError::new(
                "to",
                "invalid",
                "must be later than from",
            )]));
        }
        let mut subjects: BTreeMap<String, AffectedSubject> = BTreeMap::new();
        let mut actors = BTreeSet::new();
        let mut all_fields = BTreeSet::new();
        for action in EXPOSING_ACTIONS {
            let mut after = 0;
            loop {
                let filter = AuditFilter {
                    action: Some(action.to_owned()),
                    from: Some(from),
                    to: Some(to),
                    after_seq: Some(after),
                    ..AuditFilter::default()
                };
                let page = self.store().query_audit(&filter, 5_000).await?;
                let Some(last) = page.last() else {
                    break;
                };
                after = last.seq;
                for entry in page.iter().filter(|entry| entry.event.outcome == "ok") {
                    if let Some(name) = &entry.event.actor_name {
                        actors.insert(name.clone());
                    }
                    for field in &entry.event.fields {
                        all_fields.insert(field.clone());
                    }
                    for customer in &entry.event.customer_ids {
                        let subject =
                            subjects
                                .entry(customer.clone())
                                .or_insert_with(|| AffectedSubject {
                                    customer_id: customer.clone(),
                                    fields: Vec::new(),
                                    exposures: Vec::new(),
                                });
                        for field in &entry.event.fields {
                            if !subject.fields.contains(field) {
                                subject.fields.push(field.clone());
                            }
                        }
                        subject.exposures.push(Exposure {
                            seq: entry.seq,
                            time: format_time(entry.event.at),
                            who: entry.event.actor_name.clone(),
                            role: entry.event.actor_role.clone(),
                            source_ip: entry.event.source_ip.clone(),
                            action: entry.event.action.clone(),
                            fields: entry.event.fields.clone(),
                            grant_id: entry.event.grant_id.clone(),
                        });
                    }
                }
            }
        }
        let affected: Vec<AffectedSubject> = subjects.into_values().collect();
        let fields: Vec<String> = all_fields.into_iter().collect();
        let (from_text, to_text) = (format_time(from), format_time(to));
        let fields_zh: Vec<&str> = fields.iter().map(|field| field_label_zh(field)).collect();
        let fields_en: Vec<&str> = fields.iter().map(|field| field_label_en(field)).collect();
        let count = affected.len();
        let notice_subject_zh = format!(
            "尊敬的客户：\n\n我们在安全检查中发现，{from_text} 至 {to_text} 期间，您的部分个人信息（{}）可能被超出授权范围地查看或导出。\
             我们已立即启动应急响应：暂停所有取消脱敏与导出操作、撤销相关访问权限，并对事件进行调查。\n\n\
             您可以采取的措施：留意陌生来电和短信，不向他人透露验证码；如发现异常，请联系我们。\n\
             如需了解我们处理您个人信息的详细记录，您有权依据《个人信息保护法》第四十五条要求查阅。\n\n\
             联系方式：[数据保护负责人联系方式]\n",
            fields_zh.join("、")
        );
        let notice_subject_en = format!(
            "Dear customer,\n\nDuring a security review we found that between {from_text} and {to_text} some of your \
             personal information ({}) may have been viewed or exported beyond what was authorised. We responded \
             at once: all unmasking and exports were suspended, the access involved was revoked, and the incident is \
             under investigation.\n\nWhat you can do: be wary of unexpected calls and messages and never share \
             verification codes; contact us if you notice anything unusual. You have the right to a record of how we \
             processed your personal data (PIPL Art. 45, GDPR Art. 15).\n\nContact: [data protection officer]\n",
            fields_en.join(", ")
        );
        let notice_regulator_zh = format!(
            "个人信息安全事件报告\n\n一、事件概况：{from_text} 至 {to_text} 期间发生个人信息取消脱敏/导出相关的安全事件。\n\
             二、涉及个人信息种类：{}。\n三、涉及个人数量：{count} 人。\n四、涉及人员：{} 名员工账户。\n\
             五、已采取的补救措施：开启事件锁定，暂停全部取消脱敏与导出，撤销除管理员与数据保护负责人外的全部会话，保全审计日志（哈希链已校验）。\n\
             六、可能造成的影响：[评估]\n七、联系人：[数据保护负责人]\n",
            fields_zh.join("、"),
            actors.len()
        );
        let notice_regulator_en = format!(
            "Personal data breach notification\n\n1. Summary: an incident involving unmasking/export of personal data \
             between {from_text} and {to_text}.\n2. Categories of personal data: {}.\n3. Approximate number of data \
             subjects: {count}.\n4. Staff accounts involved: {}.\n5. Measures taken: lock-down opened, all unmasking \
             and exports suspended, all sessions except administrators' and the DPO's revoked, audit trail preserved \
             (hash chain verified).\n6. Likely consequences: [assessment]\n7. Contact: [data protection officer]\n",
            fields_en.join(", "),
            actors.len()
        );
        self.record(&[
            event(actor, "incident.report", Outcome::Ok).detail(serde_json::json!({
                "from": from_text, "to": to_text, "affected": count,
            })),
        ])
        .await?;
        Ok(IncidentReport {
            from: from_text,
            to: to_text,
            affected,
            actors: actors.into_iter().collect(),
            fields,
            notice_subject_zh,
            notice_subject_en,
            notice_regulator_zh,
            notice_regulator_en,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::reveal::{reveal_fields, RevealAuthority, RevealContext};
    use crate::customers::CustomerInput;
    use crate::{both_backends, SensitiveField};

    both_backends!(
        lockdown_blocks_reveals_ends_sessions_and_reports_exposures,
        |harness| {
            let veil = &harness.veil;
            let admin = harness.actor("root", Role::Admin, None).await;
            let dpo = harness.actor("dora", Role::Dpo, None).await;
            harness.actor("sam", Role::Sales, None).await;
            let password = crate::users::Password::new("correct horse battery".to_owned());
            let sales_session = veil.login("sam", &password).await.unwrap();
            let dpo_session = veil.login("dora", &password).await.unwrap();
            let created = veil
                .create_customer(
                    &admin,
                    &CustomerInput {
                        name: Some("欧阳娜娜".to_owned()),
                        phone: Some("13912345678".to_owned()),
                        ..CustomerInput::default()
                    },
                    false,
                )
                .await
                .unwrap();
            let id = created.id.to_string();
            let authority = RevealAuthority::for_tests();
            let context = RevealContext::default();
            let start = now_ms() - 1;
            reveal_fields(
                veil,
                &authority,
                &admin,
                &id,
                &[SensitiveField::Phone],
                &context,
            )
            .await
            .unwrap();

            // A salesperson cannot open an incident; the DPO can.
            let sam = veil.actor_by_username("sam").await.unwrap();
            let input = OpenIncident {
                reason: "suspected scraping by 13912345678".to_owned(),
            };
            assert!(matches!(
                veil.open_incident_as(Some(&sam), &input).await,
                Err(AppError::Forbidden(_))
            ));
            let lockdown = veil.open_incident_as(Some(&dpo), &input).await.unwrap();
            assert!(lockdown.sessions_revoked >= 1);
            assert!(
                !lockdown.incident.reason.contains("13912345678"),
                "reason is masked"
            );
            // Only one open incident at a time.
            assert!(matches!(
                veil.open_incident_as(Some(&dpo), &input).await,
                Err(AppError::Conflict(_))
            ));
            // Sessions: the salesperson's ended, the DPO's kept.
            assert!(veil
                .authenticate(sales_session.token.expose())
                .await
                .is_err());
            assert!(veil.authenticate(dpo_session.token.expose()).await.is_ok());
            // Reveals are refused, and the refusal is recorded.
            assert!(matches!(
                reveal_fields(
                    veil,
                    &authority,
                    &admin,
                    &id,
                    &[SensitiveField::Phone],
                    &context
                )
                .await,
                Err(AppError::Forbidden(_))
            ));
            let denied = veil
                .store()
                .query_audit(
                    &AuditFilter {
                        action: Some("customer.reveal".to_owned()),
                        ..AuditFilter::default()
                    },
                    10,
                )
                .await
                .unwrap();
            assert_eq!(denied[0].event.outcome, "denied");

            // The report names the customer, the field and who revealed it — only the successful reveal.
            let report = veil
                .incident_report(Some(&dpo), start, now_ms() + 1)
                .await
                .unwrap();
            assert_eq!(report.affected.len(), 1);
            assert_eq!(report.affected[0].customer_id, id);
            assert_eq!(report.affected[0].fields, vec!["phone".to_owned()]);
            assert_eq!(report.affected[0].exposures.len(), 1);
            assert_eq!(report.actors, vec!["root".to_owned()]);
            assert!(report.notice_subject_zh.contains("手机号码"));
            assert!(report
                .notice_regulator_en
                .contains("number of data subjects: 1."));
            let text = serde_json::to_string(&report).unwrap();
            assert!(!text.contains("13912345678") && !text.contains("欧阳娜娜"));

            // Closing lifts the lock-down.
            let closed = veil
                .close_incident_as(
                    Some(&dpo),
                    None,
                    &CloseIncident {
                        note: "contained".to_owned(),
                    },
                )
                .await
                .unwrap();
            assert!(!closed.open);
            assert!(veil.open_incident().await.unwrap().is_none());
            reveal_fields(
                veil,
                &authority,
                &admin,
                &id,
                &[SensitiveField::Phone],
                &context,
            )
            .await
            .unwrap();
            let actions: Vec<String> = veil
                .store()
                .query_audit(
                    &AuditFilter {
                        action: Some("incident.".to_owned()),
                        ..AuditFilter::default()
                    },
                    10,
                )
                .await
                .unwrap()
                .into_iter()
                .map(|entry| format!("{} {}", entry.event.action, entry.event.outcome))
                .collect();
            assert_eq!(
                actions,
                vec![
                    "incident.close ok",
                    "incident.report ok",
                    "incident.open ok",
                    // sam's attempt, refused and recorded
                    "incident.manage denied",
                ]
            );
            assert!(veil.verify_audit_chain().await.unwrap().ok);
        }
    );
}
