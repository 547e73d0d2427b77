//! Masking policies: which operator each reader and each export gets, per field — versioned JSON documents.
//!
//! A [`Policy`] names, for every field (the built-in customer fields [`BUILTIN_FIELDS`] and custom ones):
//! - `display`: the operator every role sees unless a rule says otherwise (default: the kind's default mask);
//! - `roles`: per-role [`Rule`]s (`admin`, `dpo`, `manager`, `sales`, `service`, `auditor`, or custom role names);
//! - `export`: the operator each [`ExportProfile`] writes into a file;
//! - `storage`: how the value is kept (always encrypted; deterministic or not; with a blind index or not).
//!
//! Together these stages are the hybrid method (混合): a named pipeline per field — e.g. display = mask,
//! export = fpe, storage = encrypt + blind index — each stage undone by its own rule ([`Reversibility`]).
//!
//! **Plaintext is never an accident.** It is not an [`Operator`]: it is the separate [`Rule::Plaintext`], written
//! `{"op": "plaintext"}`, and it can only appear as an explicit per-role rule or in the `unmasked` export profile
//! (which itself needs an approved grant). A field's default display is an `Operator`, so it cannot be plaintext by
//! construction; an unknown role gets the field's default display; an unknown custom field is redacted; a
//! built-in field missing from the document gets its kind's default mask. Changing a policy goes through
//! governance (an unmask request with `mode: "policy_change"`), and each accepted change increments `version`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use veil_pii::{Date, PiiKind};

use crate::crypto::SecretKey;
use crate::operator::{
    apply, apply_untyped, FpeOptions, Generalization, MemoryVault, Operator, OperatorContext,
    OperatorKeys, RegionKeep, Reversibility,
};

/// The document format this crate reads and writes (`"schema": 1`).
pub const POLICY_SCHEMA: u32 = 1;

/// The built-in customer fields and the kind each holds.
pub const BUILTIN_FIELDS: [(&str, PiiKind); 7] = [
    ("name", PiiKind::PersonName),
    ("birth_date", PiiKind::BirthDate),
    ("phone", PiiKind::CnMobile),
    ("id_number", PiiKind::CnId),
    ("email", PiiKind::Email),
    ("address", PiiKind::Address),
    ("bank_card", PiiKind::BankCard),
];

/// The built-in roles. Custom roles (any lower-case name) are allowed and fall back like unknown ones.
pub const BUILTIN_ROLES: [&str; 6] = ["admin", "dpo", "manager", "sales", "service", "auditor"];

/// What a reader or an export gets of a field: an operator's output, or — only where a rule says so explicitly —
/// the plaintext. In a document: an operator object, or `{"op": "plaintext"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Apply the operator.
    Apply(Operator),
    /// Show the original. Only valid as a per-role rule or in the `unmasked` export profile.
    Plaintext,
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Rule::Apply(operator) => operator.serialize(serializer),
            Rule::Plaintext => {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("op", "plaintext")?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.get("op").and_then(serde_json::Value::as_str) == Some("plaintext") {
            return match value.as_object().map(serde_json::Map::len) {
                Some(1) => Ok(Rule::Plaintext),
                _ => Err(serde::de::Error::custom(
                    "a plaintext rule takes no parameters: write exactly {\"op\": \"plaintext\"}",
                )),
            };
        }
        Operator::deserialize(value)
            .map(Rule::Apply)
            .map_err(serde::de::Error::custom)
    }
}

/// A resolved rule, borrowed from a policy (or from the built-in fallbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View<'a> {
    /// Apply the operator.
    Apply(&'a Operator),
    /// Show the original: only ever the result of an explicit [`Rule::Plaintext`].
    Plaintext,
}

impl<'a> View<'a> {
    fn of(rule: &'a Rule) -> Self {
        match rule {
            Rule::Apply(operator) => View::Apply(operator),
            Rule::Plaintext => View::Plaintext,
        }
    }

    /// The operator's name, or `plaintext`.
    pub fn name(&self) -> &'static str {
        match self {
            View::Apply(operator) => operator.name(),
            View::Plaintext => "plaintext",
        }
    }

    /// How the output is undone; `None` for plaintext, which needs no undoing.
    pub fn reversibility(&self) -> Option<Reversibility> {
        match self {
            View::Apply(operator) => Some(operator.reversibility()),
            View::Plaintext => None,
        }
    }
}

/// The export profiles of `veil export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportProfile {
    /// What ordinary readers see (default: each field's display operator).
    Masked,
    /// Consistent pseudonyms, so records can be joined and counted without identifying anyone (default: fpe for
    /// mobiles, IDs and cards, the birth year for birth dates, deterministic tokens otherwise).
    Pseudonymised,
    /// The originals (default: plaintext). Needs an approved grant, which the app checks.
    Unmasked,
}

impl ExportProfile {
    /// Every profile.
    pub const ALL: [ExportProfile; 3] = [
        ExportProfile::Masked,
        ExportProfile::Pseudonymised,
        ExportProfile::Unmasked,
    ];

    /// The stable name (`"masked"`, `"pseudonymised"`, `"unmasked"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ExportProfile::Masked => "masked",
            ExportProfile::Pseudonymised => "pseudonymised",
            ExportProfile::Unmasked => "unmasked",
        }
    }
}

impl fmt::Display for ExportProfile {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for ExportProfile {
    type Err = PolicyError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ExportProfile::ALL
            .into_iter()
            .find(|profile| profile.as_str() == name)
            .ok_or_else(|| {
                PolicyError::Invalid(vec![Problem::new(
                    "export profile",
                    "unknown export profile; expected masked, pseudonymised or unmasked",
                )])
            })
    }
}

/// Per-profile export operators of a field; a missing entry takes the profile's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masked: Option<Operator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudonymised: Option<Operator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmasked: Option<Rule>,
}

/// How a field is stored. Always encrypted (principle 1): the choice is only randomised AES-256-GCM or
/// deterministic AES-256-GCM-SIV, and whether a blind index is kept for exact search and de-duplication.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageRule {
    #[serde(default)]
    pub deterministic: bool,
    #[serde(default)]
    pub blind_index: bool,
}

impl StorageRule {
    /// The storage stage as an operator (always `encrypt`).
    pub fn operator(&self) -> Operator {
        Operator::Encrypt {
            deterministic: self.deterministic,
        }
    }
}

/// The policy of one field: its kind and its pipeline (display per role, export per profile, storage).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldPolicy {
    /// The kind of personal data the field holds; `null` for a custom field with free values (then only
    /// kind-agnostic operators apply).
    #[serde(default, with = "optional_kind")]
    pub kind: Option<PiiKind>,
    /// What every role without its own rule sees. An operator, so never plaintext.
    #[serde(default = "default_display_operator")]
    pub display: Operator,
    /// Per-role rules; the only place besides the `unmasked` export where `plaintext` may appear.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Rule>,
    #[serde(default)]
    pub export: ExportRules,
    #[serde(default)]
    pub storage: StorageRule,
}

fn default_display_operator() -> Operator {
    Operator::DefaultMask
}

mod optional_kind {
    use serde::{Deserialize, Deserializer, Serializer};
    use veil_pii::PiiKind;

    pub fn serialize<S: Serializer>(
        kind: &Option<PiiKind>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match kind {
            Some(kind) => serializer.serialize_str(kind.as_str()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<PiiKind>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|name| name.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A masking policy document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The document format, [`POLICY_SCHEMA`].
    pub schema: u32,
    /// The revision, incremented by every accepted change.
    pub version: u64,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub fields: BTreeMap<String, FieldPolicy>,
}

/// One thing wrong with a policy document, with where it is (`fields.phone.roles.sales`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.path, self.message)
    }
}

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON, or not of the document's shape (unknown operator, unknown key, wrong type…).
    #[error("the policy document cannot be read: {0}")]
    Parse(String),
    /// Well-formed, but some rule is invalid; every problem is listed.
    #[error("the policy document is invalid: {}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

static DEFAULT_MASK: Operator = Operator::DefaultMask;
static REDACT: Operator = Operator::Redact { replacement: None };
static FPE_DEFAULT: Operator = Operator::Fpe(FpeOptions {
    mobile_keep_prefix: 3,
    id_keep_region: RegionKeep::Province,
    id_keep_birth_date: true,
    id_keep_sex: true,
    card_keep_bin: true,
    card_keep_last4: false,
});
static BIRTH_YEAR: Operator = Operator::Generalize {
    to: Generalization::Year,
    band_width: None,
};
static DETERMINISTIC_TOKEN: Operator = Operator::Tokenize {
    deterministic: true,
};

fn is_identifier(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'_')
}

/// The kind a built-in field holds.
pub fn builtin_kind(field: &str) -> Option<PiiKind> {
    BUILTIN_FIELDS
        .iter()
        .find(|(name, _)| *name == field)
        .map(|(_, kind)| *kind)
}

impl Policy {
    /// Today's behaviour as a policy: the seven customer fields, every role sees the kind's default mask,
    /// exports use the profile defaults, storage is randomised encryption with blind indexes on phone,
    /// id_number, email and bank_card.
    pub fn default_policy() -> Policy {
        let fields = BUILTIN_FIELDS
            .iter()
            .map(|(name, kind)| {
                let blind_index = matches!(*name, "phone" | "id_number" | "email" | "bank_card");
                (
                    (*name).to_owned(),
                    FieldPolicy {
                        kind: Some(*kind),
                        display: Operator::DefaultMask,
                        roles: BTreeMap::new(),
                        export: ExportRules::default(),
                        storage: StorageRule {
                            deterministic: false,
                            blind_index,
                        },
                    },
                )
            })
            .collect();
        Policy {
            schema: POLICY_SCHEMA,
            version: 1,
            name: "default".to_owned(),
            description: "Every role sees the default masked display of every field.".to_owned(),
            fields,
        }
    }

    /// Reads and validates a JSON document.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let policy: Policy =
            serde_json::from_str(text).map_err(|error| PolicyError::Parse(error.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// The document as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a policy always serialises")
    }

    /// Checks every rule: the schema, names of fields and roles, built-in fields' kinds, and that every operator
    /// applies to its field's kind with valid parameters. Lists every problem found.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut problems = Vec::new();
        if self.schema != POLICY_SCHEMA {
            problems.push(Problem::new(
                "schema",
                format!(
                    "unsupported schema {}; this version reads schema {POLICY_SCHEMA}",
                    self.schema
                ),
            ));
        }
        if self.name.trim().is_empty() {
            problems.push(Problem::new("name", "the policy needs a name"));
        }
        for (field, policy) in &self.fields {
            let path = format!("fields.{field}");
            if !is_identifier(field) {
                problems.push(Problem::new(
                    &path,
                    "field names are 1-64 characters: a lower-case letter, then lower-case letters, digits or _",
                ));
            }
            if let Some(expected) = builtin_kind(field) {
                if policy.kind != Some(expected) {
                    problems.push(Problem::new(
                        format!("{path}.kind"),
                        format!(
                            "the built-in field {field} holds {expected} values, not {}",
                            policy.kind.map_or("untyped", PiiKind::as_str)
                        ),
                    ));
                }
            }
            let mut check = |where_: String, operator: &Operator| {
                if let Err(error) = operator.check(policy.kind) {
                    problems.push(Problem::new(where_, error.to_string()));
                }
            };
            check(format!("{path}.display"), &policy.display);
            for (role, rule) in &policy.roles {
                if let Rule::Apply(operator) = rule {
                    check(format!("{path}.roles.{role}"), operator);
                }
            }
            if let Some(operator) = &policy.export.masked {
                check(format!("{path}.export.masked"), operator);
            }
            if let Some(operator) = &policy.export.pseudonymised {
                check(format!("{path}.export.pseudonymised"), operator);
            }
            if let Some(Rule::Apply(operator)) = &policy.export.unmasked {
                check(format!("{path}.export.unmasked"), operator);
            }
            for role in policy.roles.keys() {
                if !is_identifier(role) {
                    problems.push(Problem::new(
                        format!("{path}.roles.{role}"),
                        "role names are 1-64 characters: a lower-case letter, then lower-case letters, digits or _",
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PolicyError::Invalid(problems))
        }
    }

    /// The kind of `field`: from the document, else from [`BUILTIN_FIELDS`].
    pub fn field_kind(&self, field: &str) -> Option<PiiKind> {
        match self.fields.get(field) {
            Some(policy) => policy.kind,
            None => builtin_kind(field),
        }
    }

    /// What `role` sees of `field`. Fallbacks, never plaintext: a role without a rule gets the field's display
    /// operator; a built-in field missing from the document its kind's default mask; an unknown custom field is
    /// redacted.
    pub fn display(&self, field: &str, role: &str) -> View<'_> {
        match self.fields.get(field) {
            Some(policy) => policy
                .roles
                .get(role)
                .map_or(View::Apply(&policy.display), View::of),
            None if builtin_kind(field).is_some() => View::Apply(&DEFAULT_MASK),
            None => View::Apply(&REDACT),
        }
    }

    /// What an export in `profile` writes for `field`. Defaults: `masked` → the field's display operator;
    /// `pseudonymised` → fpe (mobile, ID, card), birth year (birth date) or a deterministic token; `unmasked` →
    /// plaintext. An unknown custom field is redacted in every profile but `unmasked`.
    pub fn export(&self, field: &str, profile: ExportProfile) -> View<'_> {
        let policy = self.fields.get(field);
        let kind = self.field_kind(field);
        if policy.is_none() && kind.is_none() && profile != ExportProfile::Unmasked {
            return View::Apply(&REDACT);
        }
        let rules = policy.map(|policy| &policy.export);
        match profile {
            ExportProfile::Masked => match rules.and_then(|rules| rules.masked.as_ref()) {
                Some(operator) => View::Apply(operator),
                None => View::Apply(policy.map_or(&DEFAULT_MASK, |policy| &policy.display)),
            },
            ExportProfile::Pseudonymised => {
                match rules.and_then(|rules| rules.pseudonymised.as_ref()) {
                    Some(operator) => View::Apply(operator),
                    None => View::Apply(default_pseudonym(kind)),
                }
            }
            ExportProfile::Unmasked => match rules.and_then(|rules| rules.unmasked.as_ref()) {
                Some(rule) => View::of(rule),
                None => View::Plaintext,
            },
        }
    }

    /// The storage stage of `field` (built-in fields missing from the document and custom fields: randomised
    /// encryption, no blind index).
    pub fn storage(&self, field: &str) -> StorageRule {
        self.fields
            .get(field)
            .map_or(StorageRule::default(), |policy| policy.storage)
    }

    /// The whole pipeline of `field` (the hybrid method): every stage with its operator and how it is undone,
    /// for documentation and `veil policy show`.
    pub fn pipeline(&self, field: &str) -> Vec<Stage> {
        let mut stages = vec![Stage::new("display".to_owned(), self.display(field, ""))];
        if let Some(policy) = self.fields.get(field) {
            for role in policy.roles.keys() {
                stages.push(Stage::new(
                    format!("display.{role}"),
                    self.display(field, role),
                ));
            }
        }
        for profile in ExportProfile::ALL {
            stages.push(Stage::new(
                format!("export.{profile}"),
                self.export(field, profile),
            ));
        }
        let storage = self.storage(field);
        let operator = storage.operator();
        stages.push(Stage {
            stage: if storage.blind_index {
                "storage (+ blind index)".to_owned()
            } else {
                "storage".to_owned()
            },
            operator: operator.name(),
            reversibility: Some(operator.reversibility()),
        });
        stages
    }
}

/// One stage of a field's pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub stage: String,
    pub operator: &'static str,
    pub reversibility: Option<Reversibility>,
}

impl Stage {
    fn new(stage: String, view: View<'_>) -> Self {
        Stage {
            stage,
            operator: view.name(),
            reversibility: view.reversibility(),
        }
    }
}

fn default_pseudonym(kind: Option<PiiKind>) -> &'static Operator {
    match kind {
        Some(PiiKind::CnMobile | PiiKind::CnId | PiiKind::BankCard) => &FPE_DEFAULT,
        Some(PiiKind::BirthDate) => &BIRTH_YEAR,
        _ => &DETERMINISTIC_TOKEN,
    }
}

/// How one sample value looks under a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewRow {
    pub field: String,
    /// The operator applied, or `plaintext`.
    pub operator: &'static str,
    pub reversibility: Option<Reversibility>,
    /// The output, when the operator succeeded.
    pub shown: Option<String>,
    /// Why the operator refused the sample (e.g. an fpe input that is not a valid mobile).
    pub error: Option<String>,
}

/// How `samples` (field, value) look to `role` under `policy`. Each value is validated and normalised for its
/// field's kind first (an invalid value goes through as it is, and display operators mask it entirely). Keyed
/// operators run under throwaway keys and an in-memory vault: the output shows the format, not the pseudonym a
/// real export would contain.
pub fn preview(
    policy: &Policy,
    role: &str,
    samples: &[(&str, &str)],
    today: Date,
) -> Vec<PreviewRow> {
    run_preview(policy, samples, today, |field| policy.display(field, role))
}

/// How `samples` look in an export with `profile` (see [`preview`]).
pub fn preview_export(
    policy: &Policy,
    profile: ExportProfile,
    samples: &[(&str, &str)],
    today: Date,
) -> Vec<PreviewRow> {
    run_preview(policy, samples, today, |field| {
        policy.export(field, profile)
    })
}

fn run_preview<'p>(
    policy: &'p Policy,
    samples: &[(&str, &str)],
    today: Date,
    view_of: impl Fn(&str) -> View<'p>,
) -> Vec<PreviewRow> {
    let keys = OperatorKeys::derive(&SecretKey::generate());
    let mut vault = MemoryVault::new();
    samples
        .iter()
        .map(|&(field, value)| {
            let view = view_of(field);
            let kind = policy.field_kind(field);
            let normalized = kind
                .and_then(|kind| veil_pii::validate(kind, value, today).ok())
                .map_or_else(|| value.to_owned(), |valid| valid.normalized);
            let outcome = match view {
                View::Plaintext => Ok(normalized),
                View::Apply(operator) => {
                    let mut ctx = OperatorContext::new(&keys, field, today).with_vault(&mut vault);
                    match kind {
                        Some(kind) => apply(operator, kind, &normalized, &mut ctx),
                        None => apply_untyped(operator, &normalized, &mut ctx),
                    }
                }
            };
            let (shown, error) = match outcome {
                Ok(shown) => (Some(shown), None),
                Err(error) => (None, Some(error.to_string())),
            };
            PreviewRow {
                field: field.to_owned(),
                operator: view.name(),
                reversibility: view.reversibility(),
                shown,
                error,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = Date {
        year: 2026,
        month: 11,
        day: 29,
    };

    /// The example of `docs/masking.md`.
    pub(crate) const EXAMPLE: &str = r#"{
      "schema": 1,
      "version": 7,
      "name": "retail",
      "fields": {
        "phone": {
          "kind": "cn_mobile",
          "display": {"op": "default_mask"},
          "roles": {
            "auditor": {"op": "redact"},
            "service": {"op": "mask", "keep_leading": 0, "keep_trailing": 4},
            "dpo": {"op": "plaintext"}
          },
          "export": {"pseudonymised": {"op": "fpe", "mobile_keep_prefix": 3}},
          "storage": {"deterministic": false, "blind_index": true}
        },
        "birth_date": {
          "kind": "birth_date",
          "display": {"op": "generalize", "to": "age_band"},
          "roles": {"manager": {"op": "generalize", "to": "year"}}
        },
        "loyalty_no": {
          "kind": null,
          "display": {"op": "mask", "keep_trailing": 4},
          "export": {"pseudonymised": {"op": "fpe"}}
        }
      }
    }"#;

    fn names(view: View<'_>) -> String {
        match view {
            View::Apply(operator) => serde_json::to_string(operator).unwrap(),
            View::Plaintext => "plaintext".to_owned(),
        }
    }

    #[test]
    fn default_policy_reproduces_todays_behaviour() {
        let policy = Policy::default_policy();
        policy.validate().unwrap();
        assert_eq!(Policy::from_json(&policy.to_json()).unwrap(), policy);
        for (field, _) in BUILTIN_FIELDS {
            for role in BUILTIN_ROLES.into_iter().chain(["intern", ""]) {
                assert_eq!(
                    policy.display(field, role),
                    View::Apply(&Operator::DefaultMask),
                    "{field} {role}"
                );
            }
            assert_eq!(
                policy.export(field, ExportProfile::Masked),
                View::Apply(&Operator::DefaultMask)
            );
            assert_eq!(
                policy.export(field, ExportProfile::Unmasked),
                View::Plaintext
            );
        }
        assert!(policy.storage("phone").blind_index && !policy.storage("name").blind_index);
    }

    #[test]
    fn rules_resolve_with_safe_fallbacks() {
        let policy = Policy::from_json(EXAMPLE).unwrap();
        let cases = [
            ("phone", "sales", r#"{"op":"default_mask"}"#),
            ("phone", "auditor", r#"{"op":"redact"}"#),
            ("phone", "dpo", "plaintext"),
            ("phone", "unknown_role", r#"{"op":"default_mask"}"#),
            ("phone", "DPO", r#"{"op":"default_mask"}"#),
            (
                "birth_date",
                "manager",
                r#"{"op":"generalize","to":"year"}"#,
            ),
            (
                "birth_date",
                "sales",
                r#"{"op":"generalize","to":"age_band"}"#,
            ),
            // A built-in field the document leaves out: its default mask. An unknown field: redacted.
            ("id_number", "dpo", r#"{"op":"default_mask"}"#),
            ("wechat", "admin", r#"{"op":"redact"}"#),
        ];
        for (field, role, expected) in cases {
            assert_eq!(
                names(policy.display(field, role)),
                expected,
                "{field} as {role}"
            );
        }
        let exports = [
            ("phone", ExportProfile::Masked, r#"{"op":"default_mask"}"#),
            (
                "phone",
                ExportProfile::Pseudonymised,
                r#"{"op":"fpe","mobile_keep_prefix":3,"id_keep_region":"province","id_keep_birth_date":true,"id_keep_sex":true,"card_keep_bin":true,"card_keep_last4":false}"#,
            ),
            (
                "birth_date",
                ExportProfile::Pseudonymised,
                r#"{"op":"generalize","to":"year"}"#,
            ),
            (
                "name",
                ExportProfile::Pseudonymised,
                r#"{"op":"tokenize","deterministic":true}"#,
            ),
            ("wechat", ExportProfile::Masked, r#"{"op":"redact"}"#),
            ("wechat", ExportProfile::Pseudonymised, r#"{"op":"redact"}"#),
            ("loyalty_no", ExportProfile::Unmasked, "plaintext"),
        ];
        for (field, profile, expected) in exports {
            assert_eq!(
                names(policy.export(field, profile)),
                expected,
                "{field} in {profile}"
            );
        }
        let stages: Vec<String> = policy
            .pipeline("phone")
            .iter()
            .map(|stage| {
                format!(
                    "{} {} {:?}",
                    stage.stage,
                    stage.operator,
                    stage.reversibility.map(|r| r.as_str())
                )
            })
            .collect();
        assert_eq!(
            stages,
            [
                "display default_mask Some(\"by_policy\")",
                "display.auditor redact Some(\"irreversible\")",
                "display.dpo plaintext None",
                "display.service mask Some(\"by_policy\")",
                "export.masked default_mask Some(\"by_policy\")",
                "export.pseudonymised fpe Some(\"by_key\")",
                "export.unmasked plaintext None",
                "storage (+ blind index) encrypt Some(\"by_key\")",
            ]
        );
    }

    fn check_invalid(document: &str, expected: &[&str]) {
        match Policy::from_json(document) {
            Err(PolicyError::Invalid(problems)) => {
                let actual: Vec<String> = problems.iter().map(Problem::to_string).collect();
                assert_eq!(actual, expected, "{document}");
            }
            other => panic!("{document}: expected problems, got {other:?}"),
        }
    }

    #[test]
    fn validation_reports_every_problem_with_its_path() {
        check_invalid(
            r#"{"schema": 2, "version": 1, "name": " ", "fields": {
                "phone": {"kind": "email"},
                "email": {"kind": "email", "display": {"op": "fpe"}},
                "bank_card": {"kind": "bank_card", "roles": {"Sales": {"op": "generalize", "to": "year"}}},
                "note_1": {"kind": null, "display": {"op": "default_mask"}, "export": {"pseudonymised": {"op": "replace_fake"}}},
                "id_number": {"kind": "cn_id", "export": {"pseudonymised": {"op": "fpe", "id_keep_region": "county"}}},
                "Bad-Name": {"kind": "address", "export": {"unmasked": {"op": "generalize", "to": "year"}}}
            }}"#,
            &[
                "schema: unsupported schema 2; this version reads schema 1",
                "name: the policy needs a name",
                "fields.Bad-Name: field names are 1-64 characters: a lower-case letter, then lower-case letters, digits or _",
                "fields.Bad-Name.export.unmasked: operator generalize cannot be applied to address values",
                "fields.bank_card.roles.Sales: operator generalize cannot be applied to bank_card values",
                "fields.bank_card.roles.Sales: role names are 1-64 characters: a lower-case letter, then lower-case letters, digits or _",
                "fields.email.display: operator fpe cannot be applied to email values",
                "fields.id_number.export.pseudonymised: invalid operator options: keeping the county code and the birth date leaves too few digits for FF1; keep only the province (id_keep_region: province) or encrypt the birth date",
                "fields.note_1.display: operator default_mask cannot be applied to untyped values",
                "fields.note_1.export.pseudonymised: operator replace_fake cannot be applied to untyped values",
                "fields.phone.kind: the built-in field phone holds cn_mobile values, not email",
            ],
        );
    }

    #[test]
    fn plaintext_cannot_appear_by_accident() {
        let refused = [
            // Not an operator, so not a field's default display nor a masked or pseudonymised export.
            r#"{"schema":1,"version":1,"name":"x","fields":{"phone":{"kind":"cn_mobile","display":{"op":"plaintext"}}}}"#,
            r#"{"schema":1,"version":1,"name":"x","fields":{"phone":{"kind":"cn_mobile","export":{"masked":{"op":"plaintext"}}}}}"#,
            // Exactly {"op": "plaintext"}, nothing that merely resembles it.
            r#"{"schema":1,"version":1,"name":"x","fields":{"phone":{"kind":"cn_mobile","roles":{"dpo":{"op":"plaintext","keep_leading":3}}}}}"#,
            r#"{"schema":1,"version":1,"name":"x","fields":{"phone":{"kind":"cn_mobile","roles":{"dpo":{"op":"none"}}}}}"#,
            r#"{"schema":1,"version":1,"name":"x","fields":{"phone":{"kind":"cn_mobile","roles":{"dpo":null}}}}"#,
            r#"{"schema":1,"version":1,"name":"x","fields":{"phone":{"kind":"cn_mobile","roles":{"dpo":{}}}}}"#,
            r#"{"schema":1,"version":1,"name":"x","fields":{"phone":{"kind":"cn_mobile","colour":"red"}}}"#,
            r#"{"schema":1,"version":1,"name":"x","fields":{"phone":{"kind":"cn_phone"}}}"#,
            "not json",
        ];
        for document in refused {
            assert!(
                matches!(Policy::from_json(document), Err(PolicyError::Parse(_))),
                "{document}"
            );
        }
        // A field with no display given gets the default mask, not the value.
        let policy = Policy::from_json(
            r#"{"schema":1,"version":1,"name":"x","fields":{"phone":{"kind":"cn_mobile"}}}"#,
        )
        .unwrap();
        assert_eq!(
            policy.display("phone", "admin"),
            View::Apply(&Operator::DefaultMask)
        );
    }

    #[test]
    fn preview_shows_sample_values() {
        let policy = Policy::from_json(EXAMPLE).unwrap();
        let samples = [
            ("phone", "+86 138 1234 5678"),
            ("birth_date", "1984-02-27"),
            ("loyalty_no", "88001234567"),
            ("wechat", "zhangsan_88"),
            ("phone", "12345"),
        ];
        let shown = |rows: Vec<PreviewRow>| -> Vec<(String, &'static str, Option<String>)> {
            rows.into_iter()
                .map(|row| (row.field, row.operator, row.shown))
                .collect()
        };
        let as_service = shown(preview(&policy, "service", &samples, TODAY));
        assert_eq!(
            as_service,
            [
                ("phone".to_owned(), "mask", Some("*******5678".to_owned())),
                (
                    "birth_date".to_owned(),
                    "generalize",
                    Some("40-49".to_owned())
                ),
                (
                    "loyalty_no".to_owned(),
                    "mask",
                    Some("*******4567".to_owned())
                ),
                (
                    "wechat".to_owned(),
                    "redact",
                    Some(FULL_MASK_TEXT.to_owned())
                ),
                ("phone".to_owned(), "mask", Some(FULL_MASK_TEXT.to_owned())),
            ]
        );
        let as_dpo = preview(&policy, "dpo", &samples[..1], TODAY);
        assert_eq!(as_dpo[0].shown.as_deref(), Some("13812345678"));
        assert_eq!(as_dpo[0].reversibility, None);

        let exported = preview_export(&policy, ExportProfile::Pseudonymised, &samples, TODAY);
        let phone = exported[0].shown.as_deref().unwrap();
        assert!(
            phone.starts_with("138") && phone.len() == 11 && phone != "13812345678",
            "{phone}"
        );
        assert_eq!(exported[1].shown.as_deref(), Some("1984"));
        assert_eq!(exported[2].shown.as_ref().map(String::len), Some(11));
        assert_eq!(
            exported[4].error.as_deref(),
            Some("the value is not a well-formed mobile number")
        );
    }

    const FULL_MASK_TEXT: &str = crate::display::FULL_MASK;
}
