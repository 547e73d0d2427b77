//! Industry templates: real estate, automotive, services (hotel, restaurant, salon), finance (bank, securities,
//! insurance), education and e-commerce. Each names its sales pipeline (`deals::PIPELINES`, same key), the
//! interaction kinds and ticket categories its staff use most, and its **custom fields**: built-in ones (here, in
//! code) plus those an admin adds (`industry_field`, [`Veil::add_industry_field`]).
//!
//! A customer whose `industry` is a template's key may carry `custom_fields`, validated against the template
//! (unknown key or wrong type: 422 naming `custom_fields.<key>`). Non-sensitive values are stored as plain JSON.
//! A field marked `sensitive` goes through the same pipeline as the built-in personal fields: validated (as its
//! PII kind, when it has one), sealed with the customer's data key (AES-256-GCM, associated data
//! `{customer, <id>, custom.<key>, <key version>}`), and given a masked display at write time (the kind's default
//! display, or keep the first/last N characters, or fully masked). Reads show only the display, so nothing on the
//! read path decrypts, and erasure (destroying the data key) makes the ciphertexts unreadable. The plaintext comes
//! back only through the governed reveal, under a grant naming `custom.<key>` ([`open_custom`]; see
//! `governance::UnmaskField`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::LazyLock;

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_mask::crypto::Aad;
use veil_mask::FieldCipher;
use veil_pii::PiiKind;
use veil_store::IndustryFieldRow;

use crate::audit::{self, EventExt, Outcome};
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::users::Actor;
use crate::{now_ms, today, Veil};

/// Longest text value of a custom field, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// Most custom fields one industry may have (built-in and added).
pub const MAX_FIELDS_PER_INDUSTRY: usize = 40;
/// Most options an enum field may have.
pub const MAX_OPTIONS: usize = 50;
const MAX_KEY_CHARS: usize = 40;
const MAX_LABEL_CHARS: usize = 60;

/// The value type of a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Free text (at most 200 characters, no control characters).
    Text,
    /// A JSON number.
    Number,
    /// `YYYY-MM-DD`.
    Date,
    /// One of the field's `options`.
    Enum,
    /// `true` or `false`.
    Bool,
}

/// One choice of an enum field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnumOption {
    /// The stored value.
    pub value: String,
    /// English label (defaults to the value).
    #[serde(default)]
    pub label_en: String,
    /// Chinese label (defaults to the value).
    #[serde(default)]
    pub label_zh: String,
}

/// A custom field of an industry template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CustomFieldDef {
    /// Stable key: lowercase ASCII letters, digits and `_`, starting with a letter.
    pub key: String,
    /// English label.
    pub label_en: String,
    /// Chinese label.
    pub label_zh: String,
    /// Value type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The choices of an enum field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<EnumOption>,
    /// Personal or otherwise sensitive data: sealed with the customer's data key and shown masked.
    #[serde(default)]
    pub sensitive: bool,
    /// For a sensitive text field, the personal-data kind (`cn_mobile`, `person_name`, …) it is validated and
    /// masked as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii_kind: Option<String>,
    /// For a sensitive field without a kind: characters kept at the start of the display (0: fully masked).
    #[serde(default)]
    pub keep_leading: usize,
    /// For a sensitive field without a kind: characters kept at the end of the display.
    #[serde(default)]
    pub keep_trailing: usize,
    /// Part of the template (cannot be removed) rather than added by an admin.
    #[serde(default)]
    pub builtin: bool,
}

/// An industry template as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IndustryView {
    /// Stable key, also the customers' `industry` and the pipeline's key.
    pub key: String,
    /// English name.
    pub name_en: String,
    /// Chinese name.
    pub name_zh: String,
    /// The sales pipeline deals of its customers default to (`GET /api/v1/pipelines`).
    pub pipeline: String,
    /// The interaction kinds its staff record most (property viewings, test drives, …).
    pub interaction_kinds: Vec<String>,
    /// The ticket categories it uses most (after-sales for e-commerce, …).
    pub ticket_categories: Vec<String>,
    /// Custom fields: built-in first, then those admins added.
    pub fields: Vec<CustomFieldDef>,
}

/// A custom field an admin adds (`POST /api/v1/industries/{key}/fields`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldInput {
    /// Stable key: lowercase ASCII letters, digits and `_`, starting with a letter, at most 40 characters.
    pub key: String,
    /// English label.
    pub label_en: String,
    /// Chinese label (defaults to the English one).
    #[serde(default)]
    pub label_zh: Option<String>,
    /// Value type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The choices of an enum field (required for `enum`, refused otherwise).
    #[serde(default)]
    pub options: Vec<EnumOption>,
    /// Sealed and shown masked.
    #[serde(default)]
    pub sensitive: bool,
    /// For a sensitive `text` field: a personal-data kind to validate and mask as.
    #[serde(default)]
    pub pii_kind: Option<String>,
    /// For a sensitive field without a kind: characters kept at the start of the display.
    #[serde(default)]
    pub keep_leading: usize,
    /// For a sensitive field without a kind: characters kept at the end of the display.
    #[serde(default)]
    pub keep_trailing: usize,
}

// ------------------------------------------------------------------------------------------------ built-ins

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Number,
    Date,
    Bool,
    Enum(&'static [(&'static str, &'static str, &'static str)]),
}

struct Builtin {
    key: &'static str,
    label_en: &'static str,
    label_zh: &'static str,
    kind: Kind,
    sensitive: bool,
    pii_kind: Option<PiiKind>,
    /// Display of a sensitive field without a kind: characters kept at the start and at the end.
    keep: (usize, usize),
}

const fn plain(key: &'static str, en: &'static str, zh: &'static str, kind: Kind) -> Builtin {
    Builtin {
        key,
        label_en: en,
        label_zh: zh,
        kind,
        sensitive: false,
        pii_kind: None,
        keep: (0, 0),
    }
}

const fn sensitive(
    key: &'static str,
    en: &'static str,
    zh: &'static str,
    kind: Kind,
    pii_kind: Option<PiiKind>,
    keep: (usize, usize),
) -> Builtin {
    Builtin {
        key,
        label_en: en,
        label_zh: zh,
        kind,
        sensitive: true,
        pii_kind,
        keep,
    }
}

struct Template {
    key: &'static str,
    name_en: &'static str,
    name_zh: &'static str,
    interaction_kinds: &'static [&'static str],
    ticket_categories: &'static [&'static str],
    fields: &'static [Builtin],
}

/// The six templates. Keys match `deals::PIPELINES`.
static TEMPLATES: &[Template] = &[
    Template {
        key: "real_estate",
        name_en: "Real estate",
        name_zh: "房产",
        interaction_kinds: &["viewing", "call", "visit", "message"],
        ticket_categories: &["inquiry", "complaint", "billing"],
        fields: &[
            plain(
                "budget_range",
                "Budget range",
                "预算区间",
                Kind::Enum(&[
                    ("under_1m", "Under ¥1M", "100万以下"),
                    ("1m_3m", "¥1M–3M", "100-300万"),
                    ("3m_5m", "¥3M–5M", "300-500万"),
                    ("5m_10m", "¥5M–10M", "500-1000万"),
                    ("over_10m", "Over ¥10M", "1000万以上"),
                ]),
            ),
            plain(
                "preferred_district",
                "Preferred district",
                "意向区域",
                Kind::Text,
            ),
            plain(
                "property_type",
                "Property type",
                "物业类型",
                Kind::Enum(&[
                    ("apartment", "Apartment", "住宅"),
                    ("serviced_apartment", "Serviced apartment", "公寓"),
                    ("villa", "Villa", "别墅"),
                    ("shop", "Shop", "商铺"),
                    ("office", "Office", "写字楼"),
                ]),
            ),
            plain(
                "purchase_purpose",
                "Purchase purpose",
                "购房目的",
                Kind::Enum(&[
                    ("first_home", "First home", "首次置业"),
                    ("upgrade", "Upgrade", "改善"),
                    ("investment", "Investment", "投资"),
                    ("school_district", "School district", "学区"),
                ]),
            ),
            plain("bedrooms", "Bedrooms", "户型（居室）", Kind::Number),
            plain(
                "mortgage_needed",
                "Needs a mortgage",
                "需要贷款",
                Kind::Bool,
            ),
        ],
    },
    Template {
        key: "automotive",
        name_en: "Automotive",
        name_zh: "汽车",
        interaction_kinds: &["test_drive", "visit", "call", "message"],
        ticket_categories: &["after_sales", "inquiry", "complaint"],
        fields: &[
            plain("preferred_model", "Preferred model", "意向车型", Kind::Text),
            plain(
                "powertrain",
                "Powertrain",
                "动力类型",
                Kind::Enum(&[
                    ("petrol", "Petrol", "燃油"),
                    ("hybrid", "Hybrid", "混动"),
                    ("electric", "Electric", "纯电"),
                ]),
            ),
            plain("test_drive_date", "Test-drive date", "试驾日期", Kind::Date),
            plain(
                "purchase_timeline",
                "Purchase timeline",
                "购车时间",
                Kind::Enum(&[
                    ("within_1_month", "Within a month", "一个月内"),
                    ("within_3_months", "Within three months", "三个月内"),
                    ("later", "Later", "三个月以上"),
                ]),
            ),
            plain("trade_in", "Trade-in", "置换", Kind::Bool),
            // A licence plate identifies its keeper: personal data. Keep the province and city letter (沪A…).
            sensitive(
                "current_plate",
                "Current vehicle plate",
                "现有车牌号",
                Kind::Text,
                None,
                (2, 0),
            ),
        ],
    },
    Template {
        key: "services",
        name_en: "Hotel, restaurant, salon",
        name_zh: "酒店/餐饮/美业",
        interaction_kinds: &["visit", "call", "message", "consultation"],
        ticket_categories: &["complaint", "inquiry", "billing"],
        fields: &[
            plain(
                "business_type",
                "Business",
                "业态",
                Kind::Enum(&[
                    ("hotel", "Hotel", "酒店"),
                    ("restaurant", "Restaurant", "餐饮"),
                    ("salon", "Salon", "美业"),
                ]),
            ),
            plain(
                "room_preference",
                "Room or seating preference",
                "房型/座位偏好",
                Kind::Text,
            ),
            plain(
                "preferred_stylist",
                "Preferred stylist",
                "指定发型师",
                Kind::Text,
            ),
            plain(
                "membership_level",
                "Membership level",
                "会员等级",
                Kind::Enum(&[
                    ("regular", "Regular", "普通"),
                    ("silver", "Silver", "银卡"),
                    ("gold", "Gold", "金卡"),
                    ("diamond", "Diamond", "钻石"),
                ]),
            ),
            // Health data: a special category (PIPL art. 28). Fully masked.
            sensitive(
                "allergies",
                "Allergies",
                "过敏信息",
                Kind::Text,
                None,
                (0, 0),
            ),
        ],
    },
    Template {
        key: "finance",
        name_en: "Bank, securities, insurance",
        name_zh: "银行/证券/保险",
        interaction_kinds: &["consultation", "call", "visit", "email"],
        ticket_categories: &["inquiry", "complaint", "billing"],
        fields: &[
            plain(
                "risk_level",
                "Risk level",
                "风险等级",
                Kind::Enum(&[
                    ("R1", "R1 cautious", "R1 谨慎型"),
                    ("R2", "R2 conservative", "R2 稳健型"),
                    ("R3", "R3 balanced", "R3 平衡型"),
                    ("R4", "R4 growth", "R4 进取型"),
                    ("R5", "R5 aggressive", "R5 激进型"),
                ]),
            ),
            plain(
                "risk_assessed_on",
                "Risk assessed on",
                "风险测评日期",
                Kind::Date,
            ),
            plain(
                "product_interest",
                "Product interest",
                "意向产品",
                Kind::Enum(&[
                    ("deposit", "Deposits", "存款"),
                    ("wealth", "Wealth management", "理财"),
                    ("fund", "Funds", "基金"),
                    ("securities", "Securities", "证券"),
                    ("insurance", "Insurance", "保险"),
                    ("loan", "Loans", "贷款"),
                ]),
            ),
            plain(
                "qualified_investor",
                "Qualified investor",
                "合格投资者",
                Kind::Bool,
            ),
            // Financial data: sensitive under PIPL art. 28. Fully masked.
            sensitive(
                "annual_income",
                "Annual income (CNY)",
                "年收入（元）",
                Kind::Number,
                None,
                (0, 0),
            ),
            sensitive("employer", "Employer", "工作单位", Kind::Text, None, (2, 0)),
        ],
    },
    Template {
        key: "education",
        name_en: "Education and training",
        name_zh: "教育培训",
        interaction_kinds: &["consultation", "call", "visit", "message"],
        ticket_categories: &["inquiry", "billing", "complaint"],
        fields: &[
            // A (usually minor) student's name and their guardian's mobile: personal data.
            sensitive(
                "student_name",
                "Student name",
                "学员姓名",
                Kind::Text,
                Some(PiiKind::PersonName),
                (0, 0),
            ),
            plain(
                "grade",
                "Grade",
                "年级",
                Kind::Enum(&[
                    ("preschool", "Preschool", "学前"),
                    ("primary_lower", "Primary 1–3", "小学低年级"),
                    ("primary_upper", "Primary 4–6", "小学高年级"),
                    ("junior_high", "Junior high", "初中"),
                    ("senior_high", "Senior high", "高中"),
                    ("adult", "Adult", "成人"),
                ]),
            ),
            plain("course_interest", "Course interest", "意向课程", Kind::Text),
            plain(
                "enrolment_stage",
                "Enrolment stage",
                "招生阶段",
                Kind::Enum(&[
                    ("inquiry", "Inquiry", "咨询"),
                    ("trial_class", "Trial class", "试听"),
                    ("enrolled", "Enrolled", "已报名"),
                    ("paid", "Paid", "已缴费"),
                    ("lost", "Lost", "流失"),
                ]),
            ),
            plain(
                "trial_class_date",
                "Trial class date",
                "试听日期",
                Kind::Date,
            ),
            sensitive(
                "guardian_mobile",
                "Guardian's mobile",
                "监护人手机",
                Kind::Text,
                Some(PiiKind::CnMobile),
                (0, 0),
            ),
        ],
    },
    Template {
        key: "ecommerce",
        name_en: "E-commerce",
        name_zh: "电商",
        interaction_kinds: &["message", "call", "email"],
        ticket_categories: &["after_sales", "complaint", "inquiry", "billing"],
        fields: &[
            plain(
                "preferred_category",
                "Preferred category",
                "偏好品类",
                Kind::Enum(&[
                    ("digital", "Digital", "数码"),
                    ("apparel", "Apparel", "服饰"),
                    ("beauty", "Beauty", "美妆"),
                    ("home", "Home", "家居"),
                    ("food", "Food", "食品"),
                    ("baby", "Mother and baby", "母婴"),
                ]),
            ),
            plain(
                "membership_channel",
                "Membership channel",
                "入会渠道",
                Kind::Enum(&[
                    ("tmall", "Tmall", "天猫"),
                    ("jd", "JD.com", "京东"),
                    ("mini_program", "WeChat mini program", "小程序"),
                    ("douyin", "Douyin", "抖音"),
                    ("own_site", "Own web shop", "官网商城"),
                ]),
            ),
            plain(
                "after_sales_count",
                "After-sales requests",
                "售后次数",
                Kind::Number,
            ),
            plain(
                "last_after_sales_date",
                "Last after-sales request",
                "最近售后日期",
                Kind::Date,
            ),
            plain(
                "marketing_opt_in",
                "Accepts marketing",
                "接受营销",
                Kind::Bool,
            ),
        ],
    },
];

impl Builtin {
    fn def(&self) -> CustomFieldDef {
        let (field_type, options) = match self.kind {
            Kind::Text => (FieldType::Text, Vec::new()),
            Kind::Number => (FieldType::Number, Vec::new()),
            Kind::Date => (FieldType::Date, Vec::new()),
            Kind::Bool => (FieldType::Bool, Vec::new()),
            Kind::Enum(options) => (
                FieldType::Enum,
                options
                    .iter()
                    .map(|(value, en, zh)| EnumOption {
                        value: (*value).to_owned(),
                        label_en: (*en).to_owned(),
                        label_zh: (*zh).to_owned(),
                    })
                    .collect(),
            ),
        };
        CustomFieldDef {
            key: self.key.to_owned(),
            label_en: self.label_en.to_owned(),
            label_zh: self.label_zh.to_owned(),
            field_type,
            options,
            sensitive: self.sensitive,
            pii_kind: self.pii_kind.map(|kind| kind.as_str().to_owned()),
            keep_leading: self.keep.0,
            keep_trailing: self.keep.1,
            builtin: true,
        }
    }
}

/// The templates with their built-in fields only (no database), in a fixed order.
pub static BUILTIN: LazyLock<Vec<IndustryView>> = LazyLock::new(|| {
    TEMPLATES
        .iter()
        .map(|template| IndustryView {
            key: template.key.to_owned(),
            name_en: template.name_en.to_owned(),
            name_zh: template.name_zh.to_owned(),
            pipeline: crate::deals::pipeline(template.key)
                .map(|pipeline| pipeline.key)
                .unwrap_or(crate::deals::DEFAULT_PIPELINE)
                .to_owned(),
            interaction_kinds: template
                .interaction_kinds
                .iter()
                .map(|kind| (*kind).to_owned())
                .collect(),
            ticket_categories: template
                .ticket_categories
                .iter()
                .map(|category| (*category).to_owned())
                .collect(),
            fields: template.fields.iter().map(Builtin::def).collect(),
        })
        .collect()
});

/// The keys of the templates, in order.
pub fn industry_keys() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|template| template.key)
}

/// The built-in template with `key`.
pub fn builtin(key: &str) -> Option<&'static IndustryView> {
    BUILTIN.iter().find(|template| template.key == key)
}

// ---------------------------------------------------------------------------------------------- validation

/// Custom-field values checked against their industry's definitions. Holds the plaintext of sensitive values:
/// `Debug` is redacted and it is never serialised.
#[derive(Clone, Default)]
pub(crate) struct ValidatedCustom {
    /// Values to set: non-sensitive ones as JSON, sensitive ones as normalised text with their display.
    set: BTreeMap<String, CustomValue>,
    /// Keys to clear (`null` in an update).
    clear: BTreeSet<String>,
}

#[derive(Clone)]
enum CustomValue {
    Plain(serde_json::Value),
    Sensitive { normalized: String, display: String },
}

impl fmt::Debug for ValidatedCustom {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ValidatedCustom")
            .field("keys", &self.set.keys().collect::<Vec<_>>())
            .field("clear", &self.clear)
            .finish()
    }
}

impl ValidatedCustom {
    /// The keys set or cleared, as audit field names (`custom.<key>`).
    pub(crate) fn audit_fields(&self) -> impl Iterator<Item = String> + '_ {
        self.set
            .keys()
            .chain(self.clear.iter())
            .map(|key| format!("custom.{key}"))
    }
}

/// What the `custom_fields` column holds: what reads show, and which of it is a masked display.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct StoredCustom {
    #[serde(default)]
    pub values: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub masked: BTreeSet<String>,
}

impl StoredCustom {
    pub(crate) fn parse(json: &str) -> StoredCustom {
        serde_json::from_str(json).unwrap_or_default()
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

fn field_path(key: &str) -> String {
    format!("custom_fields.{key}")
}

/// The display of a sensitive value: the PII kind's default display, or keep the first/last characters, or
/// fully masked. Fail safe like every display: a value too short for its keeps is fully masked.
fn display_of(def: &CustomFieldDef, kind: Option<PiiKind>, normalized: &str) -> String {
    if let Some(kind) = kind {
        return veil_mask::default_display(kind, normalized);
    }
    if def.keep_leading == 0 && def.keep_trailing == 0 {
        return veil_mask::display::FULL_MASK.to_owned();
    }
    let spec = veil_mask::display::MaskSpec {
        keep_leading: def.keep_leading,
        keep_trailing: def.keep_trailing,
        mask_char: veil_mask::display::DEFAULT_MASK_CHAR,
        keep_separators: false,
    };
    let masked = veil_mask::display::mask(normalized, &spec);
    if masked == normalized {
        veil_mask::display::FULL_MASK.to_owned()
    } else {
        masked
    }
}

/// Checks one value against its definition; `None` after pushing an error. Messages never repeat the value.
fn check_value(
    def: &CustomFieldDef,
    value: &serde_json::Value,
    errors: &mut Vec<FieldError>,
) -> Option<CustomValue> {
    let path = field_path(&def.key);
    let mut fail = |code: &str, message: String| {
        errors.push(FieldError::new(&path, code, message));
        None
    };
    let kind = def
        .pii_kind
        .as_deref()
        .and_then(|name| name.parse::<PiiKind>().ok());
    // The canonical value: JSON for plain fields, and its text for sealing.
    let canonical: serde_json::Value = match def.field_type {
        FieldType::Text => {
            let Some(text) = value.as_str() else {
                return fail("invalid_type", "must be a string".to_owned());
            };
            let text = text.trim();
            if text.chars().count() > MAX_TEXT_CHARS || text.chars().any(char::is_control) {
                return fail(
                    "invalid",
                    format!(
                        "must be at most {MAX_TEXT_CHARS} characters without control characters"
                    ),
                );
            }
            if let (true, Some(kind)) = (def.sensitive, kind) {
                return match veil_pii::validate(kind, text, today()) {
                    Ok(validated) => Some(CustomValue::Sensitive {
                        display: display_of(def, Some(kind), &validated.normalized),
                        normalized: validated.normalized,
                    }),
                    Err(invalid) => fail(invalid.reason.code(), invalid.to_string()),
                };
            }
            serde_json::Value::String(text.to_owned())
        }
        FieldType::Number => {
            let number = match value {
                serde_json::Value::Number(number) => number.as_f64(),
                serde_json::Value::String(text) => text.trim().parse::<f64>().ok(),
                _ => None,
            };
            match number.and_then(serde_json::Number::from_f64) {
                Some(number) => match value {
                    serde_json::Value::Number(original) => {
                        serde_json::Value::Number(original.clone())
                    }
                    _ => serde_json::Value::Number(number),
                },
                None => return fail("invalid_type", "must be a number".to_owned()),
            }
        }
        FieldType::Date => {
            let parsed = value
                .as_str()
                .and_then(|text| veil_pii::Date::parse_iso(text.trim()));
            match parsed {
                Some(date) => serde_json::Value::String(date.to_string()),
                None => return fail("invalid_type", "must be a date (YYYY-MM-DD)".to_owned()),
            }
        }
        FieldType::Bool => match value {
            serde_json::Value::Bool(flag) => serde_json::Value::Bool(*flag),
            serde_json::Value::String(text) if text == "true" || text == "false" => {
                serde_json::Value::Bool(text == "true")
            }
            _ => return fail("invalid_type", "must be true or false".to_owned()),
        },
        FieldType::Enum => {
            let allowed: Vec<&str> = def
                .options
                .iter()
                .map(|option| option.value.as_str())
                .collect();
            match value.as_str() {
                Some(text) if allowed.contains(&text) => serde_json::Value::String(text.to_owned()),
                Some(_) => {
                    return fail(
                        "invalid_option",
                        format!("must be one of {}", allowed.join(", ")),
                    )
                }
                None => return fail("invalid_type", "must be a string".to_owned()),
            }
        }
    };
    if def.sensitive {
        let normalized = match &canonical {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        Some(CustomValue::Sensitive {
            display: display_of(def, None, &normalized),
            normalized,
        })
    } else {
        Some(CustomValue::Plain(canonical))
    }
}

/// Validates `custom_fields` (a JSON object) against `defs`, the fields of `industry`. `null` values (and empty
/// strings) clear a field. Every problem is reported, each naming `custom_fields.<key>`.
pub(crate) fn validate_custom(
    industry: Option<&str>,
    defs: Option<&[CustomFieldDef]>,
    value: &serde_json::Value,
    errors: &mut Vec<FieldError>,
) -> ValidatedCustom {
    let mut out = ValidatedCustom::default();
    let Some(object) = value.as_object() else {
        errors.push(FieldError::new(
            "custom_fields",
            "invalid",
            "must be a JSON object",
        ));
        return out;
    };
    if object.is_empty() {
        return out;
    }
    let Some(defs) = defs else {
        errors.push(FieldError::new(
            "custom_fields",
            "no_template",
            match industry {
                Some(_) => "the customer's industry has no template with custom fields",
                None => "custom fields need an industry with a template",
            },
        ));
        return out;
    };
    for (key, value) in object {
        let Some(def) = defs.iter().find(|def| def.key == *key) else {
            let mut known: Vec<&str> = defs.iter().map(|def| def.key.as_str()).collect();
            known.sort_unstable();
            // The key is the caller's own field name (not personal data), bounded before it is echoed.
            let shown: String = key.chars().take(MAX_KEY_CHARS).collect();
            errors.push(FieldError::new(
                &field_path(&shown),
                "unknown_field",
                format!(
                    "not a field of this industry's template (known: {})",
                    known.join(", ")
                ),
            ));
            continue;
        };
        let empty = value.is_null() || value.as_str().is_some_and(|text| text.trim().is_empty());
        if empty {
            out.clear.insert(key.clone());
            continue;
        }
        if let Some(checked) = check_value(def, value, errors) {
            out.set.insert(key.clone(), checked);
        }
    }
    out
}

/// Whether `value` (a customer input's `custom_fields`) names any field, so that the template must be read.
pub(crate) fn has_custom_values(value: Option<&serde_json::Value>) -> bool {
    value.is_some_and(|value| !value.as_object().is_some_and(serde_json::Map::is_empty))
}

/// [`validate_custom`] of an input's optional `custom_fields`: absent or `{}` sets nothing (and needs no
/// template), as on the create path.
pub(crate) fn validate_custom_values(
    industry: Option<&str>,
    defs: Option<&[CustomFieldDef]>,
    value: Option<&serde_json::Value>,
    errors: &mut Vec<FieldError>,
) -> ValidatedCustom {
    match value {
        Some(value) if has_custom_values(Some(value)) => {
            validate_custom(industry, defs, value, errors)
        }
        _ => ValidatedCustom::default(),
    }
}

/// The associated data a sensitive custom value is sealed under.
fn custom_aad(customer_id: &str, key: &str, dek_version: i64) -> Vec<u8> {
    let field = format!("custom.{key}");
    Aad {
        table: "customer",
        record_id: customer_id,
        field: &field,
        key_version: dek_version as u32,
    }
    .encode()
}

/// Applies `custom` to a customer's stored custom fields (`stored`, the `custom_fields` column, and `sealed`, the
/// `custom_sealed` column): clears, then sets — sealing sensitive values with `cipher` (the customer's data key)
/// — and drops values whose key `keep` refuses (a field no longer in the customer's industry). Returns the two
/// columns' new contents. Untouched sealed values are carried over as ciphertext: nothing is decrypted.
pub(crate) fn apply_custom(
    stored: &str,
    sealed: Option<&str>,
    custom: &ValidatedCustom,
    keep: impl Fn(&str) -> bool,
    cipher: Option<&FieldCipher>,
    customer_id: &str,
    dek_version: i64,
) -> AppResult<(String, Option<String>)> {
    let mut display = StoredCustom::parse(stored);
    let mut ciphertexts: BTreeMap<String, String> = sealed
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    fn remove(key: &str, display: &mut StoredCustom, ciphertexts: &mut BTreeMap<String, String>) {
        display.values.remove(key);
        display.masked.remove(key);
        ciphertexts.remove(key);
    }
    let existing: Vec<String> = display.values.keys().cloned().collect();
    for key in existing {
        if !keep(&key) || custom.clear.contains(&key) {
            remove(&key, &mut display, &mut ciphertexts);
        }
    }
    for (key, value) in &custom.set {
        remove(key, &mut display, &mut ciphertexts);
        match value {
            CustomValue::Plain(json) => {
                display.values.insert(key.clone(), json.clone());
            }
            CustomValue::Sensitive {
                normalized,
                display: masked,
            } => {
                let cipher = cipher.ok_or_else(|| {
                    AppError::Internal("a sensitive custom field needs the data key".to_owned())
                })?;
                let ciphertext = cipher.seal(
                    &custom_aad(customer_id, key, dek_version),
                    normalized.as_bytes(),
                );
                ciphertexts.insert(
                    key.clone(),
                    base64::engine::general_purpose::STANDARD.encode(ciphertext),
                );
                display
                    .values
                    .insert(key.clone(), serde_json::Value::String(masked.clone()));
                display.masked.insert(key.clone());
            }
        }
    }
    let sealed = (!ciphertexts.is_empty())
        .then(|| serde_json::to_string(&ciphertexts).unwrap_or_else(|_| "{}".to_owned()));
    Ok((display.to_json(), sealed))
}

/// Decrypts the sensitive custom fields `keys` of a stored customer: for the reveal path only (it takes the
/// capability).
pub fn open_custom(
    _authority: &crate::customers::reveal::RevealAuthority,
    dek: &veil_mask::SecretKey,
    customer_id: &str,
    dek_version: i64,
    sealed: Option<&str>,
    keys: &[String],
) -> AppResult<BTreeMap<String, zeroize::Zeroizing<String>>> {
    let ciphertexts: BTreeMap<String, String> = sealed
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    let cipher = FieldCipher::new(dek);
    let mut out = BTreeMap::new();
    for key in keys {
        let Some(encoded) = ciphertexts.get(key) else {
            continue;
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| AppError::Internal("stored custom field is not base64".to_owned()))?;
        let plaintext = cipher.open(&custom_aad(customer_id, key, dek_version), &bytes)?;
        let text = String::from_utf8(plaintext.to_vec())
            .map_err(|_| AppError::Internal("stored plaintext is not UTF-8".to_owned()))?;
        out.insert(key.clone(), zeroize::Zeroizing::new(text));
    }
    Ok(out)
}

// ----------------------------------------------------------------------------------------- admin fields

pub(crate) fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= MAX_KEY_CHARS
        && chars.next().is_some_and(|first| first.is_ascii_lowercase())
        && chars.all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_'
        })
}

fn valid_label(label: &str) -> bool {
    let label = label.trim();
    !label.is_empty()
        && label.chars().count() <= MAX_LABEL_CHARS
        && !label.chars().any(char::is_control)
}

/// Checks an admin's field definition against the industry's existing fields.
fn validate_field_input(
    input: &CustomFieldInput,
    existing: &[CustomFieldDef],
) -> Result<CustomFieldDef, Vec<FieldError>> {
    let mut errors = Vec::new();
    if !valid_key(&input.key) {
        errors.push(FieldError::new(
            "key",
            "invalid",
            format!("lowercase ASCII letters, digits and _, starting with a letter, at most {MAX_KEY_CHARS} characters"),
        ));
    }
    let label_zh = input
        .label_zh
        .clone()
        .unwrap_or_else(|| input.label_en.clone());
    for (name, label) in [("label_en", &input.label_en), ("label_zh", &label_zh)] {
        if !valid_label(label) {
            errors.push(FieldError::new(
                name,
                "invalid",
                format!("1 to {MAX_LABEL_CHARS} characters without control characters"),
            ));
        }
    }
    let mut options = Vec::new();
    match input.field_type {
        FieldType::Enum => {
            if input.options.is_empty() || input.options.len() > MAX_OPTIONS {
                errors.push(FieldError::new(
                    "options",
                    "invalid",
                    format!("an enum field needs 1 to {MAX_OPTIONS} options"),
                ));
            }
            for option in &input.options {
                let value = option.value.trim();
                if !valid_label(value)
                    || options.iter().any(|seen: &EnumOption| seen.value == value)
                {
                    errors.push(FieldError::new(
                        "options",
                        "invalid",
                        "option values must be distinct, 1 to 60 characters without control characters",
                    ));
                    break;
                }
                let label = |given: &str| match given.trim() {
                    "" => value.to_owned(),
                    text => text.to_owned(),
                };
                options.push(EnumOption {
                    value: value.to_owned(),
                    label_en: label(&option.label_en),
                    label_zh: label(&option.label_zh),
                });
            }
        }
        _ if !input.options.is_empty() => errors.push(FieldError::new(
            "options",
            "invalid",
            "only enum fields have options",
        )),
        _ => {}
    }
    if let Some(name) = &input.pii_kind {
        match name.parse::<PiiKind>() {
            Err(unknown) => {
                errors.push(FieldError::new("pii_kind", "unknown", unknown.to_string()))
            }
            Ok(_) if !input.sensitive || input.field_type != FieldType::Text => {
                errors.push(FieldError::new(
                    "pii_kind",
                    "invalid",
                    "only a sensitive text field has a personal-data kind",
                ))
            }
            Ok(_) => {}
        }
    }
    if (input.keep_leading > 0 || input.keep_trailing > 0)
        && (!input.sensitive || input.pii_kind.is_some())
    {
        errors.push(FieldError::new(
            "keep_leading",
            "invalid",
            "keeps apply to sensitive fields without a personal-data kind",
        ));
    }
    if input.keep_leading + input.keep_trailing > 8 {
        errors.push(FieldError::new(
            "keep_leading",
            "invalid",
            "keep at most 8 characters in all",
        ));
    }
    if existing.iter().any(|def| def.key == input.key) {
        errors.push(FieldError::new(
            "key",
            "exists",
            "the industry already has a field with this key",
        ));
    }
    if existing.len() >= MAX_FIELDS_PER_INDUSTRY {
        errors.push(FieldError::new(
            "key",
            "too_many",
            format!("an industry has at most {MAX_FIELDS_PER_INDUSTRY} custom fields"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(CustomFieldDef {
        key: input.key.clone(),
        label_en: input.label_en.trim().to_owned(),
        label_zh: label_zh.trim().to_owned(),
        field_type: input.field_type,
        options,
        sensitive: input.sensitive,
        pii_kind: input
            .pii_kind
            .as_deref()
            .and_then(|name| name.parse::<PiiKind>().ok())
            .map(|kind| kind.as_str().to_owned()),
        keep_leading: input.keep_leading,
        keep_trailing: input.keep_trailing,
        builtin: false,
    })
}

fn added_fields(rows: &[IndustryFieldRow], industry: &str) -> Vec<CustomFieldDef> {
    rows.iter()
        .filter(|row| row.industry == industry)
        .filter_map(|row| serde_json::from_str::<CustomFieldDef>(&row.definition).ok())
        .map(|def| CustomFieldDef {
            builtin: false,
            ..def
        })
        .collect()
}

impl Veil {
    /// The industry templates with every field (built-in and added). Definitions only, no personal data: any
    /// signed-in user may read them.
    pub async fn list_industries(&self, _actor: &Actor) -> AppResult<Vec<IndustryView>> {
        self.list_industries_unchecked().await
    }

    /// The templates with every field, for the domain's own use (definitions, no personal data).
    pub(crate) async fn list_industries_unchecked(&self) -> AppResult<Vec<IndustryView>> {
        let rows = self.store().industry_fields().await?;
        Ok(BUILTIN
            .iter()
            .map(|template| {
                let mut view = template.clone();
                view.fields.extend(added_fields(&rows, &template.key));
                view
            })
            .collect())
    }

    /// The fields of `industry` (built-in and added), or `None` when it has no template.
    pub(crate) async fn industry_field_defs(
        &self,
        industry: Option<&str>,
    ) -> AppResult<Option<Vec<CustomFieldDef>>> {
        let Some(template) = industry.and_then(builtin) else {
            return Ok(None);
        };
        let rows = self.store().industry_fields().await?;
        let mut fields = template.fields.clone();
        fields.extend(added_fields(&rows, &template.key));
        Ok(Some(fields))
    }

    /// Every custom-field key of every template (built-in and added fields), with whether it is sensitive in at
    /// least one of them: what unmask requests, consents and reveals check `custom.<key>` against.
    pub(crate) async fn custom_field_catalogue(&self) -> AppResult<BTreeMap<String, bool>> {
        let rows = self.store().industry_fields().await?;
        let mut catalogue = BTreeMap::new();
        for template in BUILTIN.iter() {
            for def in template
                .fields
                .iter()
                .cloned()
                .chain(added_fields(&rows, &template.key))
            {
                *catalogue.entry(def.key).or_insert(false) |= def.sensitive;
            }
        }
        Ok(catalogue)
    }

    /// Every template's fields (built-in and added), by industry key: what an import checks its rows' custom
    /// values against, read once before the rows.
    pub(crate) async fn all_industry_field_defs(
        &self,
    ) -> AppResult<BTreeMap<String, Vec<CustomFieldDef>>> {
        Ok(self
            .list_industries_unchecked()
            .await?
            .into_iter()
            .map(|template| (template.key, template.fields))
            .collect())
    }

    /// Adds a custom field to an industry template (admins; audited as `industry.field.add`).
    pub async fn add_industry_field(
        &self,
        actor: &Actor,
        industry: &str,
        input: &CustomFieldInput,
    ) -> AppResult<CustomFieldDef> {
        self.permit_recorded(actor, Action::IndustryFieldManage, None)
            .await?;
        let existing = self
            .industry_field_defs(Some(industry))
            .await?
            .ok_or(AppError::NotFound)?;
        let def = validate_field_input(input, &existing).map_err(AppError::Validation)?;
        let row = IndustryFieldRow {
            industry: industry.to_owned(),
            field_key: def.key.clone(),
            definition: serde_json::to_string(&def)
                .map_err(|error| AppError::Internal(error.to_string()))?,
            created_by: Some(actor.user_id.to_string()),
            created_at: now_ms(),
        };
        let entry = audit::event(Some(actor), "industry.field.add", Outcome::Ok).detail(
            serde_json::json!({"industry": industry, "field": def.key, "type": def.field_type,
                               "sensitive": def.sensitive}),
        );
        if !self.store().insert_industry_field(&row, &[entry]).await? {
            return Err(AppError::Conflict(
                "the industry already has a field with this key".to_owned(),
            ));
        }
        tracing::info!(industry, field = %def.key, actor = %actor.user_id, "industry field added");
        Ok(def)
    }

    /// Removes a field an admin added (built-in fields stay; audited as `industry.field.delete`). Values
    /// customers hold stay as they are until the customer is next written.
    pub async fn delete_industry_field(
        &self,
        actor: &Actor,
        industry: &str,
        key: &str,
    ) -> AppResult<()> {
        self.permit_recorded(actor, Action::IndustryFieldManage, None)
            .await?;
        let template = builtin(industry).ok_or(AppError::NotFound)?;
        if template.fields.iter().any(|def| def.key == key) {
            return Err(AppError::Conflict(
                "built-in fields of a template cannot be removed".to_owned(),
            ));
        }
        let entry = audit::event(Some(actor), "industry.field.delete", Outcome::Ok)
            .detail(serde_json::json!({"industry": industry, "field": key}));
        if !self
            .store()
            .delete_industry_field(industry, key, &[entry])
            .await?
        {
            return Err(AppError::NotFound);
        }
        tracing::info!(industry, field = key, actor = %actor.user_id, "industry field removed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs(industry: &str) -> Vec<CustomFieldDef> {
        builtin(industry).unwrap().fields.clone()
    }

    fn check(industry: &str, value: serde_json::Value) -> Result<ValidatedCustom, Vec<FieldError>> {
        let mut errors = Vec::new();
        let fields = defs(industry);
        let out = validate_custom(Some(industry), Some(&fields), &value, &mut errors);
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    #[test]
    fn every_template_has_its_pipeline_and_well_formed_fields() {
        assert_eq!(BUILTIN.len(), 6);
        for template in BUILTIN.iter() {
            assert_eq!(template.pipeline, template.key, "{}", template.key);
            for kind in &template.interaction_kinds {
                assert!(
                    crate::interactions::InteractionKind::ALL
                        .iter()
                        .any(|known| known.as_str() == kind),
                    "{kind}"
                );
            }
            let mut keys = BTreeSet::new();
            for def in &template.fields {
                assert!(valid_key(&def.key), "{}", def.key);
                assert!(keys.insert(def.key.clone()), "duplicate {}", def.key);
                assert_eq!(def.field_type == FieldType::Enum, !def.options.is_empty());
                if def.pii_kind.is_some() {
                    assert!(def.sensitive && def.field_type == FieldType::Text);
                }
            }
        }
    }

    #[test]
    fn values_are_checked_by_type() {
        let ok = check(
            "finance",
            serde_json::json!({"risk_level": "R3", "annual_income": 360000, "qualified_investor": true,
                               "risk_assessed_on": "2026-03-01"}),
        )
        .unwrap();
        assert_eq!(ok.set.len(), 4);
        let cases = [
            (
                serde_json::json!({"risk_level": "R9"}),
                "custom_fields.risk_level",
                "invalid_option",
            ),
            (
                serde_json::json!({"annual_income": "lots"}),
                "custom_fields.annual_income",
                "invalid_type",
            ),
            (
                serde_json::json!({"risk_assessed_on": "2026-02-30"}),
                "custom_fields.risk_assessed_on",
                "invalid_type",
            ),
            (
                serde_json::json!({"qualified_investor": "yes"}),
                "custom_fields.qualified_investor",
                "invalid_type",
            ),
            (
                serde_json::json!({"shoe_size": 42}),
                "custom_fields.shoe_size",
                "unknown_field",
            ),
        ];
        for (value, field, code) in cases {
            let errors = check("finance", value.clone()).unwrap_err();
            assert_eq!(errors.len(), 1, "{value}");
            assert_eq!(errors[0].field, field);
            assert_eq!(errors[0].code, code);
        }
        let errors =
            check("education", serde_json::json!({"guardian_mobile": "12345"})).unwrap_err();
        assert_eq!(errors[0].field, "custom_fields.guardian_mobile");
        assert!(!errors[0].message.contains("12345"));
    }

    #[test]
    fn sensitive_values_get_their_display() {
        let cases = [
            (
                "finance",
                "annual_income",
                serde_json::json!(360000),
                "******",
            ),
            (
                "automotive",
                "current_plate",
                serde_json::json!("沪A12345"),
                "沪A*****",
            ),
            (
                "services",
                "allergies",
                serde_json::json!("青霉素过敏"),
                "******",
            ),
            (
                "education",
                "guardian_mobile",
                serde_json::json!("13812345678"),
                "138****5678",
            ),
            (
                "education",
                "student_name",
                serde_json::json!("张小明"),
                "张**",
            ),
        ];
        for (industry, key, value, display) in cases {
            let out = check(industry, serde_json::json!({ key: value })).unwrap();
            match out.set.get(key) {
                Some(CustomValue::Sensitive { display: shown, .. }) => {
                    assert_eq!(shown, display, "{key}")
                }
                _ => panic!("{key} is not sealed"),
            }
            assert!(!format!("{out:?}").contains(&value.to_string().replace('"', "")));
        }
    }

    #[test]
    fn admin_fields_are_checked() {
        let existing = defs("finance");
        let input =
            |json: serde_json::Value| serde_json::from_value::<CustomFieldInput>(json).unwrap();
        let ok = validate_field_input(
            &input(serde_json::json!({"key": "wechat_id", "label_en": "WeChat ID", "label_zh": "微信号",
                                      "type": "text", "sensitive": true, "keep_leading": 2})),
            &existing,
        )
        .unwrap();
        assert!(ok.sensitive && !ok.builtin);
        for (json, field) in [
            (
                serde_json::json!({"key": "Risk", "label_en": "x", "type": "text"}),
                "key",
            ),
            (
                serde_json::json!({"key": "risk_level", "label_en": "x", "type": "text"}),
                "key",
            ),
            (
                serde_json::json!({"key": "tier", "label_en": "x", "type": "enum"}),
                "options",
            ),
            (
                serde_json::json!({"key": "phone2", "label_en": "x", "type": "text", "pii_kind": "cn_mobile"}),
                "pii_kind",
            ),
            (
                serde_json::json!({"key": "phone2", "label_en": "x", "type": "text", "sensitive": true,
                                   "pii_kind": "nope"}),
                "pii_kind",
            ),
        ] {
            let errors = validate_field_input(&input(json.clone()), &existing).unwrap_err();
            assert_eq!(errors[0].field, field, "{json}");
        }
    }
}
