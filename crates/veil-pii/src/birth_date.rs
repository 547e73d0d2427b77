//! Dates of birth, written as ISO 8601 calendar dates (`YYYY-MM-DD`).
//!
//! The date must exist, must not be after `today` and not before 1900-01-01 (the same bounds as
//! the birth date inside a resident ID number). Full-width digits and surrounding white space are
//! tolerated; other spellings (`1984/2/27`, `19840227`) are rejected rather than guessed.
//!
//! Normal form: `YYYY-MM-DD`.

use crate::normalize::fold_char;
use crate::validation::{finish, Details, Reason, Validated};
use crate::{Date, Invalid, PiiKind};

/// The earliest accepted birth date.
pub const EARLIEST: Date = Date {
    year: 1900,
    month: 1,
    day: 1,
};

/// Validates a birth date against `today`; see the module documentation.
pub fn validate(input: &str, today: Date) -> Result<Validated, Invalid> {
    finish(PiiKind::BirthDate, parse(input, today))
}

fn parse(input: &str, today: Date) -> Result<(String, Details), Reason> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(Reason::Empty);
    }
    let mut bytes = [0u8; 10];
    let mut length = 0;
    for c in trimmed.chars().map(fold_char) {
        match (bytes.get_mut(length), u8::try_from(c)) {
            (Some(slot), Ok(byte)) if byte.is_ascii_digit() || byte == b'-' => *slot = byte,
            (None, _) => return Err(Reason::Malformed("expected a date written as YYYY-MM-DD")),
            _ => return Err(Reason::BadCharacter),
        }
        length += 1;
    }
    let text = std::str::from_utf8(&bytes[..length]).map_err(|_| Reason::BadCharacter)?;
    let well_formed = length == 10
        && text
            .bytes()
            .enumerate()
            .all(|(index, byte)| (byte == b'-') == (index == 4 || index == 7));
    if !well_formed {
        return Err(Reason::Malformed("expected a date written as YYYY-MM-DD"));
    }
    let date = Date::parse_iso(text).ok_or(Reason::ImpossibleDate)?;
    if date > today {
        return Err(Reason::FutureDate);
    }
    if date < EARLIEST {
        return Err(Reason::DateTooEarly);
    }
    Ok((text.to_owned(), Details::BirthDate(date)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = Date {
        year: 2026,
        month: 11,
        day: 29,
    };

    fn check(input: &str, expected: Result<&str, &str>) {
        let actual = validate(input, TODAY)
            .map(|v| v.normalized)
            .map_err(|e| e.reason.code());
        assert_eq!(actual, expected.map(str::to_owned), "{input:?}");
    }

    #[test]
    fn validates_birth_dates() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("1984-02-27", Ok("1984-02-27")),
            (" 2000-02-29 ", Ok("2000-02-29")),
            ("１９８４－０２－２７", Ok("1984-02-27")),
            ("1900-01-01", Ok("1900-01-01")),
            ("2026-11-29", Ok("2026-11-29")),
            ("2026-11-30", Err("future_date")),
            ("1899-12-31", Err("date_too_early")),
            ("1999-02-29", Err("impossible_date")),
            ("1900-02-29", Err("impossible_date")),
            ("1984-13-01", Err("impossible_date")),
            ("1984-2-27", Err("malformed")),
            ("19840227", Err("malformed")),
            ("1984-02-271", Err("malformed")),
            ("1984--02-27", Err("malformed")),
            ("1984/02/27", Err("bad_character")),
            ("1984年2月27日", Err("bad_character")),
            ("", Err("empty")),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }
}
