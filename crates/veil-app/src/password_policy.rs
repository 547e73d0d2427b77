//! The password policy for staff accounts, applied when a password is set (`add_user`, `reset_password`).
//!
//! - at least [`MIN_PASSWORD_CHARS`] and at most [`MAX_PASSWORD_CHARS`] characters (Unicode scalar values);
//! - it must not contain the username (case-insensitive);
//! - it must not be a common or breached password, nor a guessable variation of one. The check is zxcvbn's
//!   estimate (the `zxcvbn` crate embeds its dictionaries — the 30,000 most common passwords from breach corpora,
//!   English words, names and surnames — in the binary, nothing is downloaded): a password zxcvbn recognises as a
//!   common password is refused as `common_password`, and anything scoring below [`MIN_STRENGTH_SCORE`]
//!   (≥ 10^8 guesses) as `too_weak`.
//!
//! Every rule that fails is reported at once, with a stable code; no message repeats the password.

use zxcvbn::feedback::Warning;

use crate::error::FieldError;

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in characters (Argon2 would take more, but nobody types more).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// Lowest accepted zxcvbn score (0–4): 3 means zxcvbn estimates at least 10^8 guesses.
pub const MIN_STRENGTH_SCORE: u8 = 3;

/// Checks `password` for the account `username`; returns every rule it breaks.
pub fn check_password(password: &str, username: &str) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let length = password.chars().count();
    if length < MIN_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password",
            "too_short",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if length > MAX_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password",
            "too_long",
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        errors.push(FieldError::new(
            "password",
            "contains_username",
            "must not contain the username",
        ));
    }
    if (1..=MAX_PASSWORD_CHARS).contains(&length) {
        // zxcvbn itself only looks at the first 100 characters, which bounds its cost.
        let entropy = zxcvbn::zxcvbn(password, &[username]);
        let warning = entropy.feedback().and_then(|feedback| feedback.warning());
        let common = matches!(
            warning,
            Some(
                Warning::ThisIsATop10Password
                    | Warning::ThisIsATop100Password
                    | Warning::ThisIsACommonPassword
                    | Warning::ThisIsSimilarToACommonlyUsedPassword
            )
        );
        if common {
            errors.push(FieldError::new(
                "password",
                "common_password",
                "is a common or breached password, or a simple variation of one; choose another",
            ));
        } else if u8::from(entropy.score()) < MIN_STRENGTH_SCORE && length >= MIN_PASSWORD_CHARS {
            let why = warning
                .map(|warning| format!(" ({warning})"))
                .unwrap_or_default();
            errors.push(FieldError::new(
                "password",
                "too_weak",
                format!(
                    "is too easy to guess{why}; use a few unrelated words or a generated password"
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::Password;

    /// The error codes for `password`, in order; empty means accepted. Also checks that no message repeats it.
    fn codes(password: &str, username: &str) -> Vec<String> {
        match check_password(password, username) {
            Ok(()) => Vec::new(),
            Err(errors) => {
                for error in &errors {
                    assert!(
                        !error.message.contains(password),
                        "message repeats the password: {}",
                        error.message
                    );
                }
                errors.into_iter().map(|error| error.code).collect()
            }
        }
    }

    #[test]
    fn policy_cases() {
        let long = "Zq7!".repeat(65); // 260 characters
        let mut wrong = Vec::new();
        for (password, username, expected) in [
            ("short", "erin", &["too_short"][..]),
            ("password1234", "erin", &["common_password"][..]),
            ("Password1234", "erin", &["common_password"][..]),
            ("111111111111", "erin", &["too_weak"][..]),
            ("qwertyuiopasdf", "erin", &["common_password"][..]),
            ("zaq12wsxcde34rfv", "erin", &["common_password"][..]),
            ("aaaaaaaaaaaaaaaa", "erin", &["too_weak"][..]),
            ("abcdefghijklmnop", "erin", &["too_weak"][..]),
            (
                "my name is margaret-x 81!",
                "margaret",
                &["contains_username"][..],
            ),
            (
                "MARGARET and the sea lion",
                "margaret",
                &["contains_username"][..],
            ),
            (long.as_str(), "erin", &["too_long"][..]),
            ("correct horse battery", "erin", &[][..]),
            ("benchmark password 1", "erin", &[][..]),
            ("tram-ocelot-sundial-47", "erin", &[][..]),
            ("Zx9#kq2!Lm4@", "erin", &[][..]),
            ("车马炮象士将帅兵卒卒", "erin", &["too_short"][..]),
        ] {
            let found = codes(password, username);
            if found != expected {
                wrong.push(format!(
                    "{password:?} for {username:?}: {found:?}, expected {expected:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn generated_passwords_pass() {
        for _ in 0..200 {
            let password = Password::generate();
            assert_eq!(codes(password.expose(), "demo-admin"), Vec::<String>::new());
        }
    }
}
