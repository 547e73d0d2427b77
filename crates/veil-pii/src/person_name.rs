//! Person names, Chinese or otherwise.
//!
//! Names are too varied for a grammar, so validation only rules out what cannot be a name: blank
//! values, digits, control characters and anything longer than 64 characters.
//!
//! Normal form: full-width letters folded, trimmed, inner white space collapsed to one space.
//! Letter case is kept.

use crate::normalize::tidy_text;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Invalid, PiiKind};

/// Longest accepted name, in characters.
pub const MAX_CHARS: usize = 64;

/// Validates a person name; see the module documentation.
pub fn validate(input: &str) -> Result<Validated, Invalid> {
    finish(PiiKind::PersonName, parse(input))
}

fn parse(input: &str) -> Result<(String, Details), Reason> {
    let name = tidy_text(input);
    if name.is_empty() {
        return Err(Reason::Empty);
    }
    let length = name.chars().count();
    if length > MAX_CHARS {
        return Err(Reason::WrongLength {
            expected: "at most 64 characters",
            found: length,
        });
    }
    if name.chars().any(|c| c.is_control() || c.is_numeric()) {
        return Err(Reason::BadCharacter);
    }
    Ok((name, Details::None))
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
    fn validates_names() {
        let long = "张".repeat(65);
        let limit = "张".repeat(64);
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("张三", Ok("张三")),
            ("  欧阳 娜娜 ", Ok("欧阳 娜娜")),
            ("Zhang  Wei", Ok("Zhang Wei")),
            ("Ｌｉ Ｗｅｉ", Ok("Li Wei")),
            ("阿卜杜拉·买买提", Ok("阿卜杜拉·买买提")),
            ("O'Brien-Smith", Ok("O'Brien-Smith")),
            (&limit, Ok(&limit)),
            (&long, Err("wrong_length")),
            ("张3", Err("bad_character")),
            ("张３", Err("bad_character")),
            ("张\u{0}三", Err("bad_character")),
            ("张\u{1b}三", Err("bad_character")),
            ("", Err("empty")),
            (" \t\n", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }
}
