//! E-mail addresses: a practical subset of RFC 5321/5322 with internationalised domains.
//!
//! Accepted: `local@domain` where
//! - the local part is 1–64 octets of RFC 5322 `atext` (ASCII letters, digits and
//!   ``!#$%&'*+-/=?^_`{|}~``) separated by single dots, with no dot at either end — quoted local
//!   parts and comments are not accepted, nor non-ASCII local parts (SMTPUTF8), which few Chinese
//!   mail systems deliver;
//! - the domain has at least two dot-separated labels of 1–63 octets, each made of letters
//!   (Unicode letters allowed for IDN), digits and inner hyphens; the top-level label is at least
//!   two letters, or an `xn--` A-label; IP-address literals are not accepted;
//! - the whole address is at most 254 octets.
//!
//! Full-width characters (`＠`, `．`, letters) are folded first, as Chinese keyboards produce them.
//!
//! Normal form: trimmed and lower-cased (both parts: Veil treats addresses case-insensitively).

use crate::normalize::fold_char;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// Longest accepted address in octets (RFC 5321 path limit minus the angle brackets).
pub const MAX_OCTETS: usize = 254;

/// Validates an e-mail address; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::Email, parse(input))
}

fn is_atext(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte)
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(Reason::Empty);
    }
    // Bound the work before allocating: folding never shortens a string by more than 2/3.
    if trimmed.len() > MAX_OCTETS * 3 {
        return Err(Reason::WrongLength {
            expected: "at most 254 octets",
            found: trimmed.len(),
        });
    }
    let address: String = trimmed
        .chars()
        .map(fold_char)
        .flat_map(char::to_lowercase)
        .collect();
    if address.len() > MAX_OCTETS {
        return Err(Reason::WrongLength {
            expected: "at most 254 octets",
            found: address.len(),
        });
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err(Reason::Malformed("an e-mail address needs an @"));
    };
    if domain.contains('@') {
        return Err(Reason::Malformed("an e-mail address has exactly one @"));
    }
    check_local_part(local)?;
    check_domain(domain)?;
    Ok((address, Details::None))
}

fn check_local_part(local: &str) -> Result<(), Reason> {
    if local.is_empty() {
        return Err(Reason::Malformed("the part before the @ is empty"));
    }
    if local.len() > 64 {
        return Err(Reason::Malformed(
            "the part before the @ is longer than 64 octets",
        ));
    }
    if local.starts_with('.') || local.ends_with('.') {
        return Err(Reason::Malformed(
            "the part before the @ starts or ends with a dot",
        ));
    }
    if local.contains("..") {
        return Err(Reason::Malformed(
            "the part before the @ has two dots in a row",
        ));
    }
    if !local.bytes().all(|byte| byte == b'.' || is_atext(byte)) {
        return Err(Reason::BadCharacter);
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), Reason> {
    if domain.is_empty() {
        return Err(Reason::Malformed("the domain is empty"));
    }
    if !domain.contains('.') {
        return Err(Reason::Malformed("the domain needs at least one dot"));
    }
    let mut top_level = "";
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(Reason::Malformed("the domain has an empty label"));
        }
        if label.len() > 63 {
            return Err(Reason::Malformed("a domain label is longer than 63 octets"));
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err(Reason::BadCharacter);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Reason::Malformed(
                "a domain label starts or ends with a hyphen",
            ));
        }
        top_level = label;
    }
    let is_a_label = top_level.starts_with("xn--") && top_level.len() > 4;
    if !is_a_label && (top_level.chars().count() < 2 || !top_level.chars().all(char::is_alphabetic))
    {
        return Err(Reason::Malformed(
            "the top-level domain must be at least two letters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, &str>) {
        let actual = validate(input)
            .map(|v| v.normalized)
            .map_err(|e| e.reason.code());
        assert_eq!(actual, expected.map(str::to_owned), "{input:?}");
    }

    #[test]
    fn validates_addresses() {
        let local_64 = format!("{}@example.com", "x".repeat(64));
        let local_65 = format!("{}@example.com", "x".repeat(65));
        let long = format!("a@{}.com", "b.".repeat(130));
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("zhang.wei@example.com", Ok("zhang.wei@example.com")),
            ("  CHEN.JIE@EXAMPLE.COM ", Ok("chen.jie@example.com")),
            ("li_na+crm@example.org", Ok("li_na+crm@example.org")),
            ("zhou'qing@example.net", Ok("zhou'qing@example.net")),
            (
                "ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ",
                Ok("zhang@example.com"),
            ),
            ("kefu@例子.中国", Ok("kefu@例子.中国")),
            ("kefu@example.xn--fiqs8s", Ok("kefu@example.xn--fiqs8s")),
            ("a@b-c.example.com", Ok("a@b-c.example.com")),
            (&local_64, Ok(&local_64)),
            (&local_65, Err("malformed")),
            (&long, Err("wrong_length")),
            ("zhangwei.example.com", Err("malformed")),
            ("zhang@@example.com", Err("malformed")),
            ("zhang@ex@ample.com", Err("malformed")),
            (".zhang@example.com", Err("malformed")),
            ("zhang.@example.com", Err("malformed")),
            ("zhang..wei@example.com", Err("malformed")),
            ("zhang wei@example.com", Err("bad_character")),
            ("张伟@example.com", Err("bad_character")),
            ("@example.com", Err("malformed")),
            ("zhang@", Err("malformed")),
            ("zhang@localhost", Err("malformed")),
            ("zhang@-example.com", Err("malformed")),
            ("zhang@example-.com", Err("malformed")),
            ("zhang@example..com", Err("malformed")),
            ("zhang@exa_mple.com", Err("bad_character")),
            ("zhang@example.com.", Err("malformed")),
            ("zhang@example.c", Err("malformed")),
            ("zhang@example.c0m", Err("malformed")),
            ("zhang@[127.0.0.1]", Err("bad_character")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }
}
