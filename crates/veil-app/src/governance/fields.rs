//! The fields governed unmasking names: the seven built-in personal fields (`phone`, `id_number`, …) and the
//! sensitive custom fields of the industry templates (`custom.<key>`, e.g. `custom.annual_income`).
//!
//! Requests, consents, grants and the reveal all name fields by these strings and store them as such, so a grant
//! for `custom.annual_income` is checked exactly like one for `phone`. A custom key is accepted when some industry
//! template (built-in or admin-added field) defines it as sensitive — a key no template defines, or one that is
//! not sensitive (its value is shown as stored, nothing to unmask), is a 422 on `fields` naming it.
//!
//! Custom fields are revealed **only through view grants** (a request in `mode: "view"`, or break-glass): the
//! masking policy and its per-role rules cover the built-in fields alone, so a `policy_change` cannot name a custom
//! field, and the unmasked export's columns are the built-in fields, so an `export` cannot either.

use std::collections::BTreeMap;

use veil_store::SensitiveField;

use crate::error::{AppResult, FieldError};
use crate::Veil;

/// The prefix that marks a custom field in a request, consent, grant, reveal or audit entry.
pub const CUSTOM_PREFIX: &str = "custom.";

/// One field an unmask request, consent, grant or reveal names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnmaskField {
    /// A built-in personal field of the customer.
    Builtin(SensitiveField),
    /// A sensitive custom field of the customer's industry template, by key (without `custom.`).
    Custom(String),
}

impl UnmaskField {
    /// The name requests, grants and audit entries use: `phone`, `custom.annual_income`.
    pub fn name(&self) -> String {
        match self {
            UnmaskField::Builtin(field) => field.as_str().to_owned(),
            UnmaskField::Custom(key) => format!("{CUSTOM_PREFIX}{key}"),
        }
    }

    /// Whether the field counts as sensitive personal information (PIPL Art. 28) for the risk assessment and the
    /// separate consent: ID numbers and bank cards among the built-in fields, and every sealed custom field — a
    /// template cannot say which of its fields are Art. 28 data, and those it ships (income, employer, health,
    /// minors' names and their guardians' numbers, licence plates) mostly are, so the rule errs on the safe side.
    pub fn is_sensitive_kind(&self) -> bool {
        match self {
            UnmaskField::Builtin(field) => super::is_sensitive(*field),
            UnmaskField::Custom(_) => true,
        }
    }

    /// Whether a stored field name (`custom.annual_income`) names a custom field.
    pub fn is_custom_name(name: &str) -> bool {
        name.starts_with(CUSTOM_PREFIX)
    }
}

/// Names the caller may see echoed back: a well-formed custom key (it is the caller's own field name, not personal
/// data, and bounded); anything else is described instead of repeated.
fn shown(name: &str) -> Option<&str> {
    let key = name.strip_prefix(CUSTOM_PREFIX)?;
    crate::industries::valid_key(key).then_some(name)
}

/// Checks `names` against the built-in fields and `catalogue` (every custom key of every template, with whether
/// it is sensitive in any), reporting each problem on `fields`. Duplicates are dropped; order is kept.
pub(crate) fn classify(
    names: &[String],
    catalogue: &BTreeMap<String, bool>,
    errors: &mut Vec<FieldError>,
) -> Vec<UnmaskField> {
    let mut fields = Vec::new();
    if names.is_empty() {
        errors.push(FieldError::new(
            "fields",
            "required",
            "name at least one field",
        ));
    }
    for name in names {
        let field = if let Some(key) = name.strip_prefix(CUSTOM_PREFIX) {
            match (shown(name), catalogue.get(key)) {
                (Some(_), Some(true)) => UnmaskField::Custom(key.to_owned()),
                (Some(shown), Some(false)) => {
                    errors.push(FieldError::new(
                        "fields",
                        "not_sensitive",
                        format!(
                            "{shown} is not a sensitive custom field: its value is shown as stored, there is nothing \
                             to unmask"
                        ),
                    ));
                    continue;
                }
                (Some(shown), None) => {
                    errors.push(FieldError::new(
                        "fields",
                        "unknown",
                        format!("{shown} is not a custom field of any industry template (GET /api/v1/industries)"),
                    ));
                    continue;
                }
                (None, _) => {
                    errors.push(FieldError::new(
                        "fields",
                        "unknown",
                        "a custom field is named custom.<key>, the key being lowercase ASCII letters, digits and _ \
                         (GET /api/v1/industries)",
                    ));
                    continue;
                }
            }
        } else {
            match SensitiveField::parse(name) {
                Some(field) => UnmaskField::Builtin(field),
                None => {
                    errors.push(FieldError::new(
                        "fields",
                        "unknown",
                        format!(
                            "{name} is not a personal-data field (name, birth_date, phone, id_number, email, address, \
                             bank_card, or custom.<key> for a sensitive custom field)"
                        ),
                    ));
                    continue;
                }
            }
        };
        if !fields.contains(&field) {
            fields.push(field);
        }
    }
    fields
}

impl Veil {
    /// Parses the fields a request, consent, break-glass or reveal names ([`classify`]): the custom-field
    /// definitions are read only when a `custom.` name is among them.
    pub(crate) async fn parse_unmask_fields(
        &self,
        names: &[String],
        errors: &mut Vec<FieldError>,
    ) -> AppResult<Vec<UnmaskField>> {
        let catalogue = if names.iter().any(|name| UnmaskField::is_custom_name(name)) {
            self.custom_field_catalogue().await?
        } else {
            BTreeMap::new()
        };
        Ok(classify(names, &catalogue, errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(names: &[&str], expected: Result<&[&str], &[(&str, &str)]>) {
        let catalogue: BTreeMap<String, bool> = [
            ("annual_income".to_owned(), true),
            ("risk_level".to_owned(), false),
        ]
        .into_iter()
        .collect();
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut errors = Vec::new();
        let fields = classify(&names, &catalogue, &mut errors);
        match expected {
            Ok(wanted) => {
                assert!(errors.is_empty(), "{names:?}: {errors:?}");
                let got: Vec<String> = fields.iter().map(UnmaskField::name).collect();
                assert_eq!(got, wanted, "{names:?}");
            }
            Err(wanted) => {
                let got: Vec<(&str, &str)> = errors
                    .iter()
                    .map(|error| (error.field.as_str(), error.code.as_str()))
                    .collect();
                assert_eq!(got, wanted, "{names:?}: {errors:?}");
            }
        }
    }

    #[test]
    fn built_in_and_sensitive_custom_fields_are_named() {
        check(
            &["phone", "custom.annual_income", "phone"],
            Ok(&["phone", "custom.annual_income"]),
        );
        check(&["custom.risk_level"], Err(&[("fields", "not_sensitive")]));
        check(&["custom.shoe_size"], Err(&[("fields", "unknown")]));
        check(&["custom.13812345678"], Err(&[("fields", "unknown")]));
        check(&["custom."], Err(&[("fields", "unknown")]));
        check(&["income"], Err(&[("fields", "unknown")]));
        check(&[], Err(&[("fields", "required")]));
    }

    #[test]
    fn messages_name_the_key_but_never_a_malformed_one() {
        let mut errors = Vec::new();
        let names = vec![
            "custom.risk_level".to_owned(),
            "custom.shoe_size".to_owned(),
            "custom.13812345678".to_owned(),
        ];
        classify(
            &names,
            &BTreeMap::from([("risk_level".to_owned(), false)]),
            &mut errors,
        );
        assert!(errors[0].message.contains("custom.risk_level"));
        assert!(errors[1].message.contains("custom.shoe_size"));
        assert!(!errors[2].message.contains("13812345678"));
    }

    #[test]
    fn custom_fields_count_as_sensitive_kinds() {
        assert!(UnmaskField::Custom("employer".to_owned()).is_sensitive_kind());
        assert!(UnmaskField::Builtin(SensitiveField::IdNumber).is_sensitive_kind());
        assert!(!UnmaskField::Builtin(SensitiveField::Phone).is_sensitive_kind());
    }
}
