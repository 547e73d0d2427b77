//! Leads, deals (opportunities) and the per-industry sales pipelines.
//!
//! - A **lead** is a customer record in the `lead` lifecycle stage (`POST /leads`): it goes through the customer's
//!   validation, sealing, masking and blind-index duplicate check, and its visibility and audit are the
//!   customer's. Converting it (`POST /leads/{id}/convert`) is a guarded, audited state change; a record that is
//!   no (longer a) lead is a conflict.
//! - A **deal** belongs to a customer and follows its visibility ([`Veil::authorize`]): a salesperson works with
//!   deals of their own customers, a manager with their team tree's, an admin with all; an invisible deal is "not
//!   found". Its stage is one of its pipeline's (templates in code, [`PIPELINES`]); moving it is optimistic (the
//!   caller names the `version` it saw; a concurrent change is 409) and leaves a history entry and an audit entry
//!   in the same transaction. Titles and lost reasons are masked like notes before they are stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{DealFilter, DealRow, DealStageChangeRow, SensitiveField, StoreError};

use crate::audit::EventExt;
use crate::authz::Action;
use crate::customers::{CustomerInput, CustomerView};
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::CustomerId;
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// Highest deal amount, in minor units (¥10,000,000,000).
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;
/// Most deals one list or board returns.
pub const MAX_DEALS: u32 = 500;

/// A sales pipeline template: an industry's stages, in order. Names are translated by key
/// (`pipeline.<key>` and `stage.<key>.<stage>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pipeline {
    /// Stable key, also the industry it is for.
    pub key: &'static str,
    /// Chinese name (the API's `name_zh`).
    pub name_zh: &'static str,
    /// English name.
    pub name_en: &'static str,
    /// Stages: key, Chinese name, English name.
    pub stages: &'static [(&'static str, &'static str, &'static str)],
}

/// The pipeline templates, one per industry.
pub const PIPELINES: &[Pipeline] = &[
    Pipeline {
        key: "real_estate",
        name_zh: "房产销售",
        name_en: "Real estate",
        stages: &[
            ("first_contact", "首次接触", "First contact"),
            ("viewing", "带看", "Viewing"),
            ("intent", "意向", "Intent"),
            ("subscription", "认购", "Subscription"),
            ("contract", "签约", "Contract signed"),
            ("closing", "成交", "Closing"),
        ],
    },
    Pipeline {
        key: "automotive",
        name_zh: "汽车销售",
        name_en: "Automotive",
        stages: &[
            ("lead", "线索", "Lead"),
            ("showroom_visit", "到店", "Showroom visit"),
            ("test_drive", "试驾", "Test drive"),
            ("quotation", "报价", "Quotation"),
            ("order", "订车", "Order"),
            ("delivery", "交车", "Delivery"),
        ],
    },
    Pipeline {
        key: "finance",
        name_zh: "金融理财",
        name_en: "Finance",
        stages: &[
            ("contact", "接洽", "Contact"),
            ("needs_analysis", "需求分析", "Needs analysis"),
            ("risk_assessment", "风险测评", "Risk assessment"),
            ("proposal", "方案建议", "Proposal"),
            ("signing", "签约", "Signing"),
        ],
    },
    Pipeline {
        key: "education",
        name_zh: "教育招生",
        name_en: "Education enrolment",
        stages: &[
            ("inquiry", "咨询", "Inquiry"),
            ("trial_class", "试听", "Trial class"),
            ("enrolment", "报名", "Enrolment"),
            ("payment", "缴费", "Payment"),
        ],
    },
    Pipeline {
        key: "ecommerce",
        name_zh: "电商",
        name_en: "E-commerce",
        stages: &[
            ("interest", "兴趣", "Interest"),
            ("consultation", "咨询", "Consultation"),
            ("cart", "加购", "Added to cart"),
            ("order", "下单", "Order placed"),
            ("repeat", "复购", "Repeat purchase"),
        ],
    },
    Pipeline {
        key: "services",
        name_zh: "专业服务",
        name_en: "Services",
        stages: &[
            ("inquiry", "咨询", "Inquiry"),
            ("assessment", "需求评估", "Assessment"),
            ("quotation", "报价", "Quotation"),
            ("contract", "签约", "Contract"),
            ("delivery", "交付", "Delivery"),
        ],
    },
];

/// The pipeline used when neither the deal nor its customer's industry names one.
pub const DEFAULT_PIPELINE: &str = "services";

/// The template with `key`.
pub fn pipeline(key: &str) -> Option<&'static Pipeline> {
    PIPELINES.iter().find(|pipeline| pipeline.key == key)
}

impl Pipeline {
    /// Position of `stage` in the pipeline.
    pub fn position(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|(key, _, _)| *key == stage)
    }
}

/// A stage as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StageView {
    /// Stable key.
    pub key: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
}

/// A pipeline template as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PipelineView {
    /// Stable key (the industry).
    pub key: String,
    /// Chinese name.
    pub name_zh: String,
    /// English name.
    pub name_en: String,
    /// Its stages, in order.
    pub stages: Vec<StageView>,
}

fn pipeline_view(pipeline: &Pipeline) -> PipelineView {
    PipelineView {
        key: pipeline.key.to_owned(),
        name_zh: pipeline.name_zh.to_owned(),
        name_en: pipeline.name_en.to_owned(),
        stages: pipeline
            .stages
            .iter()
            .map(|(key, zh, en)| StageView {
                key: (*key).to_owned(),
                name_zh: (*zh).to_owned(),
                name_en: (*en).to_owned(),
            })
            .collect(),
    }
}

/// Where a deal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DealStatus {
    /// In the pipeline.
    Open,
    /// Won.
    Won,
    /// Lost (with a reason).
    Lost,
}

impl DealStatus {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            DealStatus::Open => "open",
            DealStatus::Won => "won",
            DealStatus::Lost => "lost",
        }
    }

    /// Parses a stable name.
    pub fn parse(text: &str) -> Option<DealStatus> {
        [DealStatus::Open, DealStatus::Won, DealStatus::Lost]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// A new lead: the customer fields, stored as a customer record in the `lead` stage.
pub type LeadInput = CustomerInput;

/// A lead or a converted customer record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeadView {
    /// `lead` or `customer`.
    pub lifecycle: String,
    /// When it was converted (RFC 3339), once it was.
    pub converted_at: Option<String>,
    /// The record, masked.
    pub customer: CustomerView,
}

/// A page of leads.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LeadPage {
    /// Newest first.
    pub items: Vec<LeadView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// A new deal.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealInput {
    /// The customer (one the caller sees).
    pub customer_id: String,
    /// 1–200 characters; personal data typed into it is masked before it is stored.
    pub title: String,
    /// Minor units (fen), 0 to 1,000,000,000,000.
    pub amount_minor: i64,
    /// ISO 4217 code (default `CNY`).
    #[serde(default)]
    pub currency: Option<String>,
    /// Expected close date, `YYYY-MM-DD`.
    #[serde(default)]
    pub expected_close: Option<String>,
    /// Pipeline key (default: the customer's industry if it has a pipeline, else `services`).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Stage key (default: the pipeline's first).
    #[serde(default)]
    pub stage: Option<String>,
}

/// A change to a deal's details; absent fields stay. The stage and status move with `/stage`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    /// The version the caller saw (409 if it changed since).
    pub version: i64,
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New amount (minor units).
    #[serde(default)]
    pub amount_minor: Option<i64>,
    /// New currency.
    #[serde(default)]
    pub currency: Option<String>,
    /// New expected close date (`YYYY-MM-DD`; empty clears it).
    #[serde(default)]
    pub expected_close: Option<String>,
}

/// A stage move or a close.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageMove {
    /// The version the caller saw (409 if it changed since).
    pub version: i64,
    /// New stage of the deal's pipeline.
    #[serde(default)]
    pub stage: Option<String>,
    /// New status: `won`, `lost` (needs `lost_reason`) or `open` (reopens).
    #[serde(default)]
    pub status: Option<DealStatus>,
    /// Why it was lost (1–500 characters, masked like notes).
    #[serde(default)]
    pub lost_reason: Option<String>,
}

/// One entry of a deal's stage history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StageChangeView {
    /// Stage before (none when the deal was entered).
    pub from_stage: Option<String>,
    /// Stage after.
    pub to_stage: String,
    /// Status before.
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: String,
    /// Who (user id).
    pub by: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// A deal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DealView {
    /// Deal id.
    pub id: String,
    /// Customer id.
    pub customer_id: String,
    /// The customer's name, masked as the caller's role sees it.
    pub customer_name: String,
    /// Title (masked).
    pub title: String,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// `YYYY-MM-DD`.
    pub expected_close: Option<String>,
    /// The responsible user's id.
    pub owner: Option<String>,
    /// Pipeline key.
    pub pipeline: String,
    /// Stage key.
    pub stage: String,
    /// `open`, `won` or `lost`.
    pub status: String,
    /// Why it was lost (masked).
    pub lost_reason: Option<String>,
    /// Pass back when changing it.
    pub version: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339, once won or lost.
    pub closed_at: Option<String>,
    /// Stage history, oldest first (on single reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<StageChangeView>>,
}

/// A page of deals.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DealPage {
    /// Newest first.
    pub items: Vec<DealView>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// Filters of the deal list.
#[derive(Debug, Clone, Default)]
pub struct DealQuery {
    /// Only this pipeline.
    pub pipeline: Option<String>,
    /// Only this status.
    pub status: Option<DealStatus>,
    /// Only this customer.
    pub customer: Option<String>,
    /// Only deals owned by this user id.
    pub owner: Option<String>,
    /// Paging cursor (a deal id).
    pub cursor: Option<String>,
    /// Page size, 1–500.
    pub limit: u32,
}

/// One stage of a pipeline with its open deals' count and amounts: a board column or a funnel step.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StageTotal {
    /// Stage key.
    pub stage: String,
    /// Open deals in it.
    pub deals: i64,
    /// Their amounts per currency (minor units).
    pub amounts: BTreeMap<String, i64>,
}

fn history_view(row: DealStageChangeRow) -> StageChangeView {
    StageChangeView {
        from_stage: row.from_stage,
        to_stage: row.to_stage,
        from_status: row.from_status,
        to_status: row.to_status,
        by: row.actor_id,
        at: format_time(row.changed_at),
    }
}

fn deal_view(row: DealRow, customer_name: String) -> DealView {
    DealView {
        id: row.id,
        customer_id: row.customer_id,
        customer_name,
        title: row.title,
        amount_minor: row.amount_minor,
        currency: row.currency,
        expected_close: row.expected_close,
        owner: row.owner_id,
        pipeline: row.pipeline,
        stage: row.stage,
        status: row.status,
        lost_reason: row.lost_reason,
        version: row.version,
        created_at: format_time(row.created_at),
        updated_at: format_time(row.updated_at),
        closed_at: row.closed_at.map(format_time),
        history: None,
    }
}

fn masked_text(field: &str, text: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "invalid_length",
            format!("must be 1 to {max} characters"),
        ));
        return String::new();
    }
    crate::notes::mask_text(text).body
}

fn check_amount(amount: i64, errors: &mut Vec<FieldError>) {
    if !(0..=MAX_AMOUNT_MINOR).contains(&amount) {
        errors.push(FieldError::new(
            "amount_minor",
            "out_of_range",
            format!("must be 0 to {MAX_AMOUNT_MINOR} (minor units)"),
        ));
    }
}

fn check_currency(text: &str, errors: &mut Vec<FieldError>) -> String {
    let currency = text.trim().to_ascii_uppercase();
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
        errors.push(FieldError::new(
            "currency",
            "invalid",
            "must be a three-letter ISO 4217 code",
        ));
    }
    currency
}

fn check_date(text: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) => Some(date.format("%Y-%m-%d").to_string()),
        Err(_) => {
            errors.push(FieldError::new(
                "expected_close",
                "invalid_date",
                "must be a date YYYY-MM-DD",
            ));
            None
        }
    }
}

fn conflict() -> AppError {
    AppError::Conflict("the deal was changed by someone else; reload and retry".to_owned())
}

impl Veil {
    /// The pipeline templates.
    pub async fn list_pipelines(&self, actor: &Actor) -> AppResult<Vec<PipelineView>> {
        self.permit_recorded(actor, Action::DealRead, None).await?;
        Ok(PIPELINES.iter().map(pipeline_view).collect())
    }

    /// Creates a lead: a customer record in the `lead` stage, with every check a customer gets.
    pub async fn create_lead(
        &self,
        actor: &Actor,
        input: &LeadInput,
        allow_duplicate: bool,
    ) -> AppResult<LeadView> {
        let customer = self
            .create_customer_in_stage(
                actor,
                input,
                allow_duplicate,
                veil_store::customers::LIFECYCLE_LEAD,
            )
            .await?;
        Ok(LeadView {
            lifecycle: veil_store::customers::LIFECYCLE_LEAD.to_owned(),
            converted_at: None,
            customer,
        })
    }

    /// The caller's leads (the customer list's scope), newest first.
    pub async fn list_leads(
        &self,
        actor: &Actor,
        cursor: Option<&str>,
        limit: u32,
    ) -> AppResult<LeadPage> {
        let scope = self.authorize(actor, Action::CustomerList, None).await?;
        let limit = limit.clamp(1, 200);
        let mut rows = self
            .store()
            .list_masked_leads(&scope, cursor, i64::from(limit) + 1)
            .await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        self.record(&[
            crate::audit::event(Some(actor), "lead.list", crate::audit::Outcome::Ok)
                .customers(rows.iter().map(|row| row.id.clone()))
                .fields(["name"])
                .detail(serde_json::json!({"count": rows.len()})),
        ])
        .await?;
        for row in &mut rows {
            row.masked.retain(|field, _| *field == SensitiveField::Name);
        }
        let mut views: Vec<CustomerView> = rows.into_iter().map(Veil::view).collect();
        self.for_role_fields(actor, &mut views, Some(&[SensitiveField::Name]))
            .await?;
        Ok(LeadPage {
            items: views
                .into_iter()
                .map(|customer| LeadView {
                    lifecycle: veil_store::customers::LIFECYCLE_LEAD.to_owned(),
                    converted_at: None,
                    customer,
                })
                .collect(),
            next_cursor,
        })
    }

    /// Converts a lead into a customer (audited as `lead.convert`); 409 when it is no lead.
    pub async fn convert_lead(&self, actor: &Actor, id: CustomerId) -> AppResult<LeadView> {
        let id = id.to_string();
        self.customer_for(actor, &id, Action::CustomerUpdate)
            .await?;
        let now = now_ms();
        let entry = crate::audit::event(Some(actor), "lead.convert", crate::audit::Outcome::Ok)
            .customers([id.clone()])
            .detail(serde_json::json!({"from": "lead", "to": "customer"}));
        if !self.store().convert_lead(&id, now, &[entry]).await? {
            return Err(AppError::Conflict(
                "this record is not a lead (already a customer)".to_owned(),
            ));
        }
        let row = self
            .store()
            .masked_customer(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        let mut views = [Veil::view(row)];
        self.for_role_fields(actor, &mut views, None).await?;
        let [customer] = views;
        let converted_at = self
            .store()
            .customer_lifecycle(&id)
            .await?
            .and_then(|(_, at)| at)
            .map(format_time);
        Ok(LeadView {
            lifecycle: veil_store::customers::LIFECYCLE_CUSTOMER.to_owned(),
            converted_at,
            customer,
        })
    }

    /// The customers' names as `actor`'s role sees them, by id (missing customers are left out).
    async fn masked_names(
        &self,
        actor: &Actor,
        ids: BTreeSet<String>,
    ) -> AppResult<HashMap<String, String>> {
        let ids: Vec<String> = ids.into_iter().collect();
        let mut rows = self.store().masked_customers_by_ids(&ids).await?;
        for row in &mut rows {
            row.masked.retain(|field, _| *field == SensitiveField::Name);
        }
        let mut views: Vec<CustomerView> = rows.into_iter().map(Veil::view).collect();
        self.for_role_fields(actor, &mut views, Some(&[SensitiveField::Name]))
            .await?;
        Ok(views
            .into_iter()
            .map(|view| (view.id.to_string(), view.name))
            .collect())
    }

    /// Enters a deal on a customer the caller sees.
    pub async fn create_deal(&self, actor: &Actor, input: &DealInput) -> AppResult<DealView> {
        self.permit_recorded(actor, Action::DealWrite, None).await?;
        let customer_id: CustomerId = input.customer_id.trim().parse().map_err(|_| {
            AppError::Validation(vec![FieldError::new(
                "customer_id",
                "invalid",
                "must be a customer id",
            )])
        })?;
        let customer = self
            .customer_for(actor, &customer_id.to_string(), Action::DealWrite)
            .await?;
        let mut errors = Vec::new();
        let title = masked_text("title", &input.title, 200, &mut errors);
        check_amount(input.amount_minor, &mut errors);
        let currency = check_currency(input.currency.as_deref().unwrap_or("CNY"), &mut errors);
        let expected_close = input
            .expected_close
            .as_deref()
            .and_then(|text| check_date(text, &mut errors));
        let pipeline_key = input.pipeline.clone().unwrap_or_else(|| {
            customer
                .profile
                .industry
                .as_deref()
                .filter(|industry| pipeline(industry).is_some())
                .unwrap_or(DEFAULT_PIPELINE)
                .to_owned()
        });
        let stage = match pipeline(&pipeline_key) {
            None => {
                errors.push(FieldError::new(
                    "pipeline",
                    "unknown",
                    "no such pipeline (see GET /api/v1/pipelines)",
                ));
                String::new()
            }
            Some(template) => match &input.stage {
                None => template.stages[0].0.to_owned(),
                Some(stage) if template.position(stage).is_some() => stage.clone(),
                Some(_) => {
                    errors.push(FieldError::new(
                        "stage",
                        "unknown",
                        "not a stage of this pipeline",
                    ));
                    String::new()
                }
            },
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let now = now_ms();
        let row = DealRow {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: customer.id.clone(),
            title,
            amount_minor: input.amount_minor,
            currency,
            expected_close,
            owner_id: customer
                .profile
                .owner_id
                .clone()
                .or_else(|| Some(actor.user_id.to_string())),
            pipeline: pipeline_key,
            stage,
            status: DealStatus::Open.as_str().to_owned(),
            lost_reason: None,
            version: 1,
            created_by: Some(actor.user_id.to_string()),
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        let opened = DealStageChangeRow {
            id: uuid::Uuid::now_v7().to_string(),
            deal_id: row.id.clone(),
            from_stage: None,
            to_stage: row.stage.clone(),
            from_status: None,
            to_status: row.status.clone(),
            actor_id: Some(actor.user_id.to_string()),
            changed_at: now,
        };
        let entry = crate::audit::event(Some(actor), "deal.create", crate::audit::Outcome::Ok)
            .customers([row.customer_id.clone()])
            .detail(serde_json::json!({
                "deal_id": row.id, "pipeline": row.pipeline, "stage": row.stage,
                "amount_minor": row.amount_minor, "currency": row.currency
            }));
        self.store().insert_deal(&row, &opened, &[entry]).await?;
        let names = self
            .masked_names(actor, BTreeSet::from([row.customer_id.clone()]))
            .await?;
        let name = names.get(&row.customer_id).cloned().unwrap_or_default();
        let mut view = deal_view(row, name);
        view.history = Some(vec![history_view(opened)]);
        Ok(view)
    }

    /// The deal `id` if its customer is visible to `actor` for `action` (404 otherwise, 403 for the role).
    async fn deal_for(&self, actor: &Actor, id: &str, action: Action) -> AppResult<DealRow> {
        self.permit_recorded(actor, action, None).await?;
        let deal = self.store().deal(id).await?.ok_or(AppError::NotFound)?;
        self.customer_for(actor, &deal.customer_id, action).await?;
        Ok(deal)
    }

    /// One deal with its stage history.
    pub async fn get_deal(&self, actor: &Actor, id: &str) -> AppResult<DealView> {
        let deal = self.deal_for(actor, id, Action::DealRead).await?;
        let history = self.store().deal_history(&deal.id).await?;
        self.record(&[
            crate::audit::event(Some(actor), "deal.read", crate::audit::Outcome::Ok)
                .customers([deal.customer_id.clone()])
                .fields(["name"])
                .detail(serde_json::json!({"deal_id": deal.id})),
        ])
        .await?;
        let names = self
            .masked_names(actor, BTreeSet::from([deal.customer_id.clone()]))
            .await?;
        let name = names.get(&deal.customer_id).cloned().unwrap_or_default();
        let mut view = deal_view(deal, name);
        view.history = Some(history.into_iter().map(history_view).collect());
        Ok(view)
    }

    /// Deals of the customers the caller sees, newest first.
    pub async fn list_deals(&self, actor: &Actor, query: &DealQuery) -> AppResult<DealPage> {
        self.permit_recorded(actor, Action::DealRead, None).await?;
        let scope = self.customer_scope(actor).await?;
        let limit = query.limit.clamp(1, MAX_DEALS);
        let mut rows = self
            .store()
            .list_deals(
                &scope,
                &DealFilter {
                    pipeline: query.pipeline.clone(),
                    status: query.status.map(|status| status.as_str().to_owned()),
                    customer: query.customer.clone(),
                    owner: query.owner.clone(),
                    before_id: query.cursor.clone(),
                    limit: i64::from(limit) + 1,
                },
            )
            .await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        let customers: BTreeSet<String> = rows.iter().map(|row| row.customer_id.clone()).collect();
        self.record(&[
            crate::audit::event(Some(actor), "deal.list", crate::audit::Outcome::Ok)
                .customers(customers.iter().cloned())
                .fields(["name"])
                .detail(serde_json::json!({"count": rows.len(), "pipeline": query.pipeline})),
        ])
        .await?;
        let names = self.masked_names(actor, customers).await?;
        Ok(DealPage {
            items: rows
                .into_iter()
                .map(|row| {
                    let name = names.get(&row.customer_id).cloned().unwrap_or_default();
                    deal_view(row, name)
                })
                .collect(),
            next_cursor,
        })
    }

    /// Open deals of `pipeline` in the caller's scope per stage (in the pipeline's order, every stage present):
    /// the board's column totals and the sales funnel.
    pub async fn deal_funnel(
        &self,
        actor: &Actor,
        pipeline_key: &str,
    ) -> AppResult<Vec<StageTotal>> {
        self.permit_recorded(actor, Action::DealRead, None).await?;
        let template = pipeline(pipeline_key).ok_or_else(|| {
            AppError::Validation(vec![FieldError::new(
                "pipeline",
                "unknown",
                "no such pipeline",
            )])
        })?;
        let scope = self.customer_scope(actor).await?;
        let rows = self.store().open_deal_totals(&scope, template.key).await?;
        Ok(template
            .stages
            .iter()
            .map(|(stage, _, _)| {
                let mut total = StageTotal {
                    stage: (*stage).to_owned(),
                    deals: 0,
                    amounts: BTreeMap::new(),
                };
                for row in rows.iter().filter(|row| row.stage == *stage) {
                    total.deals += row.deals;
                    *total.amounts.entry(row.currency.clone()).or_default() += row.amount_minor;
                }
                total
            })
            .collect())
    }

    /// Changes a deal's title, amount, currency or expected close date (optimistic on `version`).
    pub async fn update_deal(
        &self,
        actor: &Actor,
        id: &str,
        patch: &DealPatch,
    ) -> AppResult<DealView> {
        let current = self.deal_for(actor, id, Action::DealWrite).await?;
        if patch.version != current.version {
            return Err(conflict());
        }
        let mut errors = Vec::new();
        let mut row = current.clone();
        if let Some(title) = &patch.title {
            row.title = masked_text("title", title, 200, &mut errors);
        }
        if let Some(amount) = patch.amount_minor {
            check_amount(amount, &mut errors);
            row.amount_minor = amount;
        }
        if let Some(currency) = &patch.currency {
            row.currency = check_currency(currency, &mut errors);
        }
        if let Some(date) = &patch.expected_close {
            row.expected_close = check_date(date, &mut errors);
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        row.version = current.version + 1;
        row.updated_at = now_ms().max(current.updated_at + 1);
        let entry = crate::audit::event(Some(actor), "deal.update", crate::audit::Outcome::Ok)
            .customers([row.customer_id.clone()])
            .detail(serde_json::json!({
                "deal_id": row.id, "amount_minor": row.amount_minor, "currency": row.currency,
                "expected_close": row.expected_close, "title_changed": row.title != current.title
            }));
        match self
            .store()
            .update_deal(&row, current.version, None, &[entry])
            .await
        {
            Ok(()) => self.get_deal(actor, id).await,
            Err(StoreError::StaleWrite) => Err(conflict()),
            Err(error) => Err(error.into()),
        }
    }

    /// Moves a deal to another stage of its pipeline and/or closes (won, lost with a reason) or reopens it.
    /// Optimistic on `version`: a concurrent change is 409 and nothing is written.
    pub async fn move_deal(
        &self,
        actor: &Actor,
        id: &str,
        input: &StageMove,
    ) -> AppResult<DealView> {
        let current = self.deal_for(actor, id, Action::DealWrite).await?;
        if input.version != current.version {
            return Err(conflict());
        }
        let mut errors = Vec::new();
        let mut row = current.clone();
        if let Some(stage) = &input.stage {
            match pipeline(&current.pipeline) {
                Some(template) if template.position(stage).is_some() => row.stage = stage.clone(),
                _ => errors.push(FieldError::new(
                    "stage",
                    "unknown",
                    "not a stage of this deal's pipeline",
                )),
            }
        }
        let status = input
            .status
            .unwrap_or(DealStatus::parse(&current.status).unwrap_or(DealStatus::Open));
        row.status = status.as_str().to_owned();
        let now = now_ms().max(current.updated_at + 1);
        match status {
            DealStatus::Lost => {
                match input.lost_reason.as_deref() {
                    Some(reason) => {
                        row.lost_reason = Some(masked_text("lost_reason", reason, 500, &mut errors))
                    }
                    None if current.status == "lost" => {}
                    None => errors.push(FieldError::new(
                        "lost_reason",
                        "required",
                        "a lost deal needs a reason",
                    )),
                }
                if current.status != "lost" {
                    row.closed_at = Some(now);
                }
            }
            DealStatus::Won => {
                row.lost_reason = None;
                if current.status != "won" {
                    row.closed_at = Some(now);
                }
            }
            DealStatus::Open => {
                row.lost_reason = None;
                row.closed_at = None;
            }
        }
        if input.lost_reason.is_some() && status != DealStatus::Lost {
            errors.push(FieldError::new(
                "lost_reason",
                "not_allowed",
                "only a lost deal has a reason",
            ));
        }
        if input.stage.is_none() && input.status.is_none() {
            errors.push(FieldError::new(
                "stage",
                "required",
                "give a stage, a status or both",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        row.version = current.version + 1;
        row.updated_at = now;
        let moved = row.stage != current.stage || row.status != current.status;
        let change = moved.then(|| DealStageChangeRow {
            id: uuid::Uuid::now_v7().to_string(),
            deal_id: row.id.clone(),
            from_stage: Some(current.stage.clone()),
            to_stage: row.stage.clone(),
            from_status: Some(current.status.clone()),
            to_status: row.status.clone(),
            actor_id: Some(actor.user_id.to_string()),
            changed_at: now,
        });
        let entry = crate::audit::event(Some(actor), "deal.stage", crate::audit::Outcome::Ok)
            .customers([row.customer_id.clone()])
            .detail(serde_json::json!({
                "deal_id": row.id, "pipeline": row.pipeline,
                "stage": {"from": current.stage, "to": row.stage},
                "status": {"from": current.status, "to": row.status},
                "version": row.version
            }));
        match self
            .store()
            .update_deal(&row, current.version, change.as_ref(), &[entry])
            .await
        {
            Ok(()) => self.get_deal(actor, id).await,
            Err(StoreError::StaleWrite) => Err(conflict()),
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_are_well_formed() {
        let mut keys = BTreeSet::new();
        for template in PIPELINES {
            assert!(keys.insert(template.key), "{} twice", template.key);
            assert!(template.stages.len() >= 4, "{}", template.key);
            let stages: BTreeSet<_> = template.stages.iter().map(|(key, _, _)| key).collect();
            assert_eq!(stages.len(), template.stages.len(), "{}", template.key);
        }
        assert!(pipeline(DEFAULT_PIPELINE).is_some());
        let real_estate: Vec<_> = pipeline("real_estate")
            .unwrap()
            .stages
            .iter()
            .map(|(_, zh, _)| *zh)
            .collect();
        assert_eq!(
            real_estate,
            ["首次接触", "带看", "意向", "认购", "签约", "成交"]
        );
        let education: Vec<_> = pipeline("education")
            .unwrap()
            .stages
            .iter()
            .map(|(_, zh, _)| *zh)
            .collect();
        assert_eq!(education, ["咨询", "试听", "报名", "缴费"]);
        assert!(pipeline("automotive")
            .unwrap()
            .position("test_drive")
            .is_some());
    }
}
