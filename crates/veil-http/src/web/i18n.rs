//! Translations and locale choice for the web UI.
//!
//! Every string a page shows comes from `i18n/en.toml` or `i18n/zh.toml`, embedded in the binary and flattened
//! into dotted keys (`[nav] customers = "…"` is `nav.customers`). The locale is the `lang` cookie when it names a
//! supported language, else the best match of `Accept-Language`, else English. Tests check that both files have
//! the same keys and that every key the templates and the web code use exists.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::{header, HeaderMap};

/// Name of the cookie holding the chosen language.
pub const LANG_COOKIE: &str = "lang";

/// The languages of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// English.
    En,
    /// Simplified Chinese.
    Zh,
}

impl Locale {
    /// Every supported locale, in the order the language switch lists them.
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Zh];

    /// The short code used in the cookie and the switch's links.
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Zh => "zh",
        }
    }

    /// The BCP 47 tag for `<html lang>`.
    pub fn html_lang(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Zh => "zh-CN",
        }
    }

    /// The language's own name, shown in the switch whatever the current locale (so a reader who cannot read
    /// the current language still finds their own).
    pub fn native_name(self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::Zh => "简体中文",
        }
    }

    /// A cookie or query value (`en`, `zh`, `zh-CN`, …) as a locale.
    pub fn from_code(code: &str) -> Option<Locale> {
        let primary = code
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Locale::En),
            "zh" => Some(Locale::Zh),
            _ => None,
        }
    }

    fn source(self) -> &'static str {
        match self {
            Locale::En => include_str!("i18n/en.toml"),
            Locale::Zh => include_str!("i18n/zh.toml"),
        }
    }

    fn messages(self) -> &'static HashMap<String, String> {
        static EN: OnceLock<HashMap<String, String>> = OnceLock::new();
        static ZH: OnceLock<HashMap<String, String>> = OnceLock::new();
        let cell = match self {
            Locale::En => &EN,
            Locale::Zh => &ZH,
        };
        cell.get_or_init(|| parse_messages(self.source()))
    }
}

/// Flattens a translation file into dotted keys. The files are compiled in and checked by the tests below, so a
/// parse failure is a build mistake, not a runtime condition; it yields an empty table (every key then shows as
/// itself) rather than a panic on a request path.
fn parse_messages(source: &str) -> HashMap<String, String> {
    fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
        for (key, value) in table {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::String(text) => {
                    out.insert(path, text.clone());
                }
                toml::Value::Table(inner) => flatten(&path, inner, out),
                _ => {}
            }
        }
    }
    let mut out = HashMap::new();
    match source.parse::<toml::Table>() {
        Ok(table) => flatten("", &table, &mut out),
        Err(error) => tracing::error!(%error, "web: a translation file does not parse"),
    }
    out
}

/// The locale of a request: the `lang` cookie, else `Accept-Language`, else English.
pub fn negotiate(headers: &HeaderMap) -> Locale {
    let from_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LANG_COOKIE)
        .and_then(|(_, value)| Locale::from_code(value));
    if let Some(locale) = from_cookie {
        return locale;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .and_then(from_accept_language)
        .unwrap_or(Locale::En)
}

/// The supported language with the highest `q` in an `Accept-Language` value (ties: the first listed).
fn from_accept_language(value: &str) -> Option<Locale> {
    let mut best: Option<(f32, Locale)> = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default();
        let quality = parts
            .filter_map(|parameter| parameter.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Some(locale) = Locale::from_code(tag) {
            if quality > 0.0 && best.is_none_or(|(top, _)| quality > top) {
                best = Some((quality, locale));
            }
        }
    }
    best.map(|(_, locale)| locale)
}

/// Looks strings up in one locale. Templates call `t.get("key")`; output is escaped by the template engine.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    /// The locale strings come from.
    pub locale: Locale,
}

impl Tr {
    /// The translator for `locale`.
    pub fn new(locale: Locale) -> Tr {
        Tr { locale }
    }

    /// The string for `key`; English if this locale lacks it; the key itself if both do (the tests forbid that).
    pub fn get<'a>(&self, key: &'a str) -> &'a str
    where
        'static: 'a,
    {
        self.locale
            .messages()
            .get(key)
            .or_else(|| Locale::En.messages().get(key))
            .map(String::as_str)
            .unwrap_or(key)
    }

    /// A field's name in this locale (`field.<name>`); a field without a translation — a custom field of an
    /// industry template, `custom.<key>` — keeps its name.
    pub fn field_name(&self, field: &str) -> String {
        let key = format!("field.{field}");
        match self.get(&key) {
            text if text == key => field.to_owned(),
            text => text.to_owned(),
        }
    }

    /// A prerequisite check's reason in this locale: `check_reason.<code>` filled with the check's values, each
    /// value that names a term (a legal basis, purpose, field, risk level, mode, security problem) in words too.
    /// The domain's English wording when the check has no code (stored before codes) or the code has no string.
    pub fn check_reason(&self, check: &veil_app::governance::Check) -> String {
        let key = format!("check_reason.{}", check.code);
        if check.code.is_empty() || self.locale.messages().get(&key).is_none() {
            return check.reason.clone();
        }
        let separator = self.get("check_reason.separator");
        let term = |prefix: &str, value: &str| -> String {
            let key = format!("{prefix}.{value}");
            match self.locale.messages().get(&key) {
                Some(text) => text.clone(),
                None => value.to_owned(),
            }
        };
        let terms = |prefix: &str, values: &str| -> String {
            values
                .split(',')
                .filter(|value| !value.is_empty())
                .map(|value| term(prefix, value))
                .collect::<Vec<_>>()
                .join(separator)
        };
        let values: Vec<(&str, String)> = check
            .params
            .iter()
            .map(|(name, value)| {
                let worded = match name.as_str() {
                    "basis" => term("basis", value),
                    "allowed" => terms("basis", value),
                    "purpose" => term("purpose", value),
                    "fields" if value.parse::<u64>().is_err() => terms("field", value),
                    "level" => term("request.risk", value),
                    "mode" => term("mode", value),
                    "problems" => terms("check_reason.security.problem", value),
                    _ => value.clone(),
                };
                (name.as_str(), worded)
            })
            .collect();
        let pairs: Vec<(&str, &str)> = values
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        self.fill(&key, &pairs)
    }

    /// The string for `key` with each `{name}` replaced by its value.
    pub fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.get(key).to_owned();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// The message for a validation error: `error.<code>` for the field's kind of problem, else the generic one.
    pub fn field_error(&self, code: &str) -> &'static str {
        let key = format!("error.{code}");
        match self.locale.messages().get(&key) {
            Some(text) => text.as_str(),
            None => self.get("error.invalid"),
        }
    }

    /// An RFC 3339 instant (`2026-11-29T08:05:00.123Z`, as the domain formats times) in the locale's style:
    /// `29 Nov 2026, 08:05 UTC` or `2026年11月29日 08:05 UTC`. Anything else is shown as given.
    pub fn datetime(&self, rfc3339: &str) -> String {
        let Some((year, month, day, hour, minute)) = split_rfc3339(rfc3339) else {
            return rfc3339.to_owned();
        };
        match self.locale {
            Locale::En => {
                const MONTHS: [&str; 12] = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                let name = MONTHS[(month - 1) as usize];
                format!("{day} {name} {year}, {hour:02}:{minute:02} UTC")
            }
            Locale::Zh => format!("{year}年{month}月{day}日 {hour:02}:{minute:02} UTC"),
        }
    }
}

fn split_rfc3339(text: &str) -> Option<(u32, u32, u32, u32, u32)> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let bytes = text.as_bytes();
    if bytes.len() < 16 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute) = (number(11..13)?, number(14..16)?);
    ((1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60)
        .then_some((year, month, day, hour, minute))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn keys(locale: Locale) -> std::collections::BTreeSet<String> {
        locale.messages().keys().cloned().collect()
    }

    #[test]
    fn both_languages_have_the_same_keys() {
        let english = keys(Locale::En);
        let chinese = keys(Locale::Zh);
        assert!(english.len() > 50, "en.toml parsed: {}", english.len());
        let only_en: Vec<_> = english.difference(&chinese).collect();
        let only_zh: Vec<_> = chinese.difference(&english).collect();
        assert!(
            only_en.is_empty() && only_zh.is_empty(),
            "only in en: {only_en:?}; only in zh: {only_zh:?}"
        );
    }

    /// Every `t.get("…")`, `t.fill("…"` and `"key"` passed to a lookup in the templates and the web code exists.
    #[test]
    fn every_key_used_exists() {
        let sources = [
            include_str!("templates/base.html"),
            include_str!("templates/login.html"),
            include_str!("templates/login_totp.html"),
            include_str!("templates/customers.html"),
            include_str!("templates/customer.html"),
            include_str!("templates/customer_new.html"),
            include_str!("templates/request_new.html"),
            include_str!("templates/request_result.html"),
            include_str!("templates/error.html"),
            include_str!("templates/_request.html"),
            include_str!("templates/approvals.html"),
            include_str!("templates/access.html"),
            include_str!("templates/audit.html"),
            include_str!("templates/security.html"),
            include_str!("templates/security_confirm.html"),
            include_str!("templates/backups.html"),
            include_str!("templates/account.html"),
            include_str!("templates/dashboard.html"),
            include_str!("templates/users.html"),
            include_str!("templates/policies.html"),
            include_str!("templates/tickets.html"),
            include_str!("templates/ticket.html"),
            include_str!("templates/ticket_new.html"),
            include_str!("templates/feedback.html"),
            include_str!("templates/survey.html"),
            include_str!("templates/deals.html"),
            include_str!("templates/deal.html"),
            include_str!("templates/deal_new.html"),
            include_str!("templates/pool.html"),
            include_str!("templates/reports.html"),
            include_str!("templates/leads.html"),
            include_str!("templates/tasks.html"),
            include_str!("templates/imports.html"),
            include_str!("session.rs"),
            include_str!("pages.rs"),
            include_str!("customers.rs"),
            include_str!("requests.rs"),
            include_str!("approvals.rs"),
            include_str!("consents.rs"),
            include_str!("audit.rs"),
            include_str!("admin.rs"),
            include_str!("account.rs"),
            include_str!("dashboard.rs"),
            include_str!("users.rs"),
            include_str!("policies.rs"),
            include_str!("tickets.rs"),
            include_str!("feedback.rs"),
            include_str!("survey.rs"),
            include_str!("deals.rs"),
            include_str!("pool.rs"),
            include_str!("reports.rs"),
            include_str!("leads.rs"),
            include_str!("imports.rs"),
        ];
        let english = keys(Locale::En);
        let mut missing = Vec::new();
        for source in sources {
            for marker in ["t.get(\"", "t.fill(\"", "tr.get(\"", "tr.fill(\""] {
                for (start, _) in source.match_indices(marker) {
                    let rest = &source[start + marker.len()..];
                    let key = &rest[..rest.find('"').unwrap_or(0)];
                    if !english.contains(key) {
                        missing.push(key.to_owned());
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys missing from en.toml: {missing:?}");
    }

    #[test]
    fn field_error_codes_have_messages_in_both_languages() {
        for code in [
            "too_short",
            "too_long",
            "contains_username",
            "common_password",
            "too_weak",
            "own_account",
            "taken",
            "required",
            "empty",
            "wrong_length",
            "bad_character",
            "bad_checksum",
            "impossible_date",
            "future_date",
            "date_too_early",
            "unknown_region",
            "unallocated_prefix",
            "malformed",
            "mismatch",
            "invalid",
            "too_many",
        ] {
            for locale in Locale::ALL {
                let key = format!("error.{code}");
                assert!(locale.messages().contains_key(&key), "{key} in {locale:?}");
            }
        }
        assert_eq!(
            Tr::new(Locale::Zh).field_error("no_such_code"),
            Tr::new(Locale::Zh).get("error.invalid")
        );
    }

    #[test]
    fn locale_from_cookie_then_accept_language() {
        let check = |cookie: Option<&str>, accept: Option<&str>, expected: Locale| {
            let mut headers = HeaderMap::new();
            if let Some(cookie) = cookie {
                headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
            }
            if let Some(accept) = accept {
                headers.insert(
                    header::ACCEPT_LANGUAGE,
                    HeaderValue::from_str(accept).unwrap(),
                );
            }
            assert_eq!(negotiate(&headers), expected, "{cookie:?} {accept:?}");
        };
        check(None, None, Locale::En);
        check(None, Some("zh-CN,zh;q=0.9,en;q=0.8"), Locale::Zh);
        check(None, Some("en-US,en;q=0.9,zh;q=0.8"), Locale::En);
        check(None, Some("fr-FR, zh;q=0.5, en;q=0.4"), Locale::Zh);
        check(None, Some("zh;q=0, en;q=0.1"), Locale::En);
        check(None, Some("fr, de"), Locale::En);
        check(Some("veil_session=x; lang=zh"), Some("en"), Locale::Zh);
        check(Some("lang=en"), Some("zh-CN"), Locale::En);
        check(Some("lang=klingon"), Some("zh-CN"), Locale::Zh);
    }

    #[test]
    fn dates_per_locale() {
        let instant = "2026-11-29T08:05:09.123Z";
        assert_eq!(
            Tr::new(Locale::En).datetime(instant),
            "29 Nov 2026, 08:05 UTC"
        );
        assert_eq!(
            Tr::new(Locale::Zh).datetime(instant),
            "2026年11月29日 08:05 UTC"
        );
        assert_eq!(Tr::new(Locale::En).datetime("soon"), "soon");
        assert_eq!(
            Tr::new(Locale::En).datetime("2026-13-29T08:05:09Z"),
            "2026-13-29T08:05:09Z"
        );
    }

    #[test]
    fn fill_replaces_placeholders() {
        let tr = Tr::new(Locale::En);
        assert!(tr.fill("login.locked", &[("seconds", "42")]).contains("42"));
    }
}
