//! A plain calendar date (proleptic Gregorian, no time zone), enough for birth dates.
//!
//! The crate has no clock: callers pass "today" in. [`Date::from_days_since_unix_epoch`] turns a
//! count of days (e.g. `SystemTime` seconds / 86 400) into a date without a date library.

use std::fmt;

/// A calendar date. Construct it with [`Date::new`] or [`Date::parse_iso`] to be sure it exists;
/// the fields are public for reading and pattern matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

/// Whether `year` is a Gregorian leap year (divisible by 4, except centuries not divisible by 400).
pub const fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` (1–12) of `year`; 0 for a month out of range.
pub const fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// The date, or `None` if it does not exist (month 13, February 29 of a common year, …).
    pub const fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        if month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// Parses exactly `YYYY-MM-DD` (ASCII digits, four-digit year, zero-padded month and day).
    pub fn parse_iso(text: &str) -> Option<Date> {
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let year = parse_digits(&bytes[0..4])?;
        let month = parse_digits(&bytes[5..7])?;
        let day = parse_digits(&bytes[8..10])?;
        Date::new(year as i32, month, day)
    }

    /// Parses exactly `YYYYMMDD`, the compact form embedded in resident ID numbers.
    pub fn parse_compact(text: &[u8]) -> Option<Date> {
        if text.len() != 8 {
            return None;
        }
        let year = parse_digits(&text[0..4])?;
        let month = parse_digits(&text[4..6])?;
        let day = parse_digits(&text[6..8])?;
        Date::new(year as i32, month, day)
    }

    /// The date `days` days after 1970-01-01 (negative for earlier dates).
    pub const fn from_days_since_unix_epoch(days: i64) -> Date {
        // Howard Hinnant's civil_from_days: eras of 400 years starting on March 1st, so that the
        // leap day is the last day of the (shifted) year.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
        Date {
            year: year as i32,
            month: month as u32,
            day: day as u32,
        }
    }

    /// Days from 1970-01-01 to this date (the inverse of [`Date::from_days_since_unix_epoch`]).
    pub const fn days_since_unix_epoch(self) -> i64 {
        let year = self.year as i64 - if self.month <= 2 { 1 } else { 0 };
        let era = year.div_euclid(400);
        let year_of_era = year.rem_euclid(400);
        let month = self.month as i64;
        let shifted_month = if month > 2 { month - 3 } else { month + 9 };
        let day_of_year = (153 * shifted_month + 2) / 5 + self.day as i64 - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    /// Whole years from `self` (a birth date) to `on`; negative if `on` is earlier.
    pub fn age_on(self, on: Date) -> i32 {
        let mut years = on.year - self.year;
        if (on.month, on.day) < (self.month, self.day) {
            years -= 1;
        }
        years
    }
}

fn parse_digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u32::from(byte - b'0'))
    })
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<(i32, u32, u32)>) {
        let parsed = Date::parse_iso(text);
        assert_eq!(parsed.map(|d| (d.year, d.month, d.day)), expected, "{text}");
        if let Some(date) = parsed {
            assert_eq!(date.to_string(), text);
        }
    }

    #[test]
    fn parse_iso_is_strict() {
        let cases = [
            ("1984-02-27", Some((1984, 2, 27))),
            ("2000-02-29", Some((2000, 2, 29))),
            ("1996-02-29", Some((1996, 2, 29))),
            ("1900-02-29", None),
            ("1999-02-29", None),
            ("1990-02-30", None),
            ("1979-04-31", None),
            ("1988-13-01", None),
            ("1992-00-15", None),
            ("2001-06-00", None),
            ("1995-01-32", None),
            ("1984-2-27", None),
            ("84-02-27", None),
            ("1984/02/27", None),
            ("19840227", None),
            ("1984-02-27 ", None),
            ("１９８４-02-27", None),
            ("+984-02-27", None),
            ("", None),
        ];
        for (text, expected) in cases {
            check(text, expected);
        }
    }

    #[test]
    fn ordering_is_chronological() {
        let a = Date::new(1999, 12, 31).unwrap();
        let b = Date::new(2000, 1, 1).unwrap();
        let c = Date::new(2000, 2, 1).unwrap();
        assert!(a < b && b < c);
    }

    #[test]
    fn epoch_days_round_trip() {
        assert_eq!(
            Date::from_days_since_unix_epoch(0),
            Date::new(1970, 1, 1).unwrap()
        );
        assert_eq!(
            Date::from_days_since_unix_epoch(-1),
            Date::new(1969, 12, 31).unwrap()
        );
        assert_eq!(
            Date::from_days_since_unix_epoch(11_016),
            Date::new(2000, 2, 29).unwrap()
        );
        let mut expected = Date::new(1800, 1, 1).unwrap();
        for days in Date::new(1800, 1, 1).unwrap().days_since_unix_epoch()..80_000 {
            let date = Date::from_days_since_unix_epoch(days);
            assert_eq!(date, expected);
            assert_eq!(date.days_since_unix_epoch(), days);
            expected = Date::new(date.year, date.month, date.day + 1)
                .or_else(|| Date::new(date.year, date.month + 1, 1))
                .unwrap_or(Date {
                    year: date.year + 1,
                    month: 1,
                    day: 1,
                });
        }
    }

    #[test]
    fn age_counts_whole_years() {
        let born = Date::new(1984, 2, 29).unwrap();
        assert_eq!(born.age_on(Date::new(2026, 2, 28).unwrap()), 41);
        assert_eq!(born.age_on(Date::new(2026, 3, 1).unwrap()), 42);
        assert_eq!(born.age_on(born), 0);
    }
}
