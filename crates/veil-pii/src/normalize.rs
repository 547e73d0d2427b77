//! Normalisation applied before matching: full-width forms, separators inside numbers.
//!
//! Chinese input methods produce full-width ASCII (`１３８`, `Ｘ`, `＠`, `（）`) and people write
//! numbers in groups (`138 1234 5678`, `6222-0000-…`). Validators fold both away first so that the
//! checks see one canonical spelling.

use crate::validation::Reason;

/// Maps a full-width ASCII variant (U+FF01–U+FF5E) to its ASCII character and the ideographic
/// space U+3000 to a space; every other character is returned unchanged.
pub const fn fold_char(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => match char::from_u32(c as u32 - 0xFEE0) {
            Some(ascii) => ascii,
            None => c,
        },
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Folds full-width ASCII variants (U+FF01–U+FF5E) and U+3000 to ASCII; see [`fold_char`].
pub fn fold_width(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

/// Whether `c` is a separator people put inside numbers: any Unicode white space (including
/// NBSP and the ideographic space), ASCII `-` and `.`, the Unicode dashes U+2010–U+2015 and
/// U+2212, the middle dots `·` / `・`, and the invisible U+200B / U+FEFF that copy-paste leaves.
pub fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.' | '\u{2010}'
                ..='\u{2015}'
                    | '\u{2212}'
                    | '\u{00B7}'
                    | '\u{30FB}'
                    | '\u{200B}'
                    | '\u{FEFF}'
                    | '\u{FF0D}'
                    | '\u{FF0E}'
        )
}

/// Removes the separators of [`is_separator`] (spaces, `-`, `.`, NBSP, …) from `s`.
pub fn strip_separators(s: &str) -> String {
    s.chars().filter(|&c| !is_separator(c)).collect()
}

/// Folds width, trims, and collapses every run of white space (including newlines and tabs) into
/// one ASCII space: the canonical spelling of free-form fields such as names and addresses.
pub fn tidy_text(s: &str) -> String {
    let mut tidy = String::with_capacity(s.len());
    for word in s
        .split(|c: char| fold_char(c).is_whitespace())
        .filter(|word| !word.is_empty())
    {
        if !tidy.is_empty() {
            tidy.push(' ');
        }
        tidy.extend(word.chars().map(fold_char));
    }
    tidy
}

/// Longest compacted value any validator accepts (e-mail and free text do not use this path).
const COMPACT_CAPACITY: usize = 32;

/// An identifier reduced to upper-case ASCII letters and digits (plus the few punctuation bytes
/// its kind asked to keep), without heap allocation. Longer inputs keep counting so that length
/// errors report the real size.
pub(crate) struct Compact {
    bytes: [u8; COMPACT_CAPACITY],
    count: usize,
}

impl Compact {
    /// Number of significant characters in the input.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The compacted bytes; empty if the input was longer than the buffer (callers check
    /// [`Compact::len`] first).
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.count > COMPACT_CAPACITY {
            &[]
        } else {
            &self.bytes[..self.count]
        }
    }

    /// The compacted value as text (ASCII by construction).
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(self.bytes()).unwrap_or_default()
    }
}

/// Folds width, drops separators, upper-cases ASCII letters. Any character that is not an ASCII
/// letter or digit, a separator or one of `keep` makes the value [`Reason::BadCharacter`]; blank
/// input is [`Reason::Empty`].
pub(crate) fn compact(input: &str, keep: &[u8]) -> Result<Compact, Reason> {
    let mut compacted = Compact {
        bytes: [0; COMPACT_CAPACITY],
        count: 0,
    };
    for c in input.chars().map(fold_char) {
        if is_separator(c) {
            continue;
        }
        let byte = match u8::try_from(c) {
            Ok(byte) if byte.is_ascii_alphanumeric() || keep.contains(&byte) => {
                byte.to_ascii_uppercase()
            }
            _ => return Err(Reason::BadCharacter),
        };
        if let Some(slot) = compacted.bytes.get_mut(compacted.count) {
            *slot = byte;
        }
        compacted.count += 1;
    }
    if compacted.count == 0 {
        return Err(Reason::Empty);
    }
    Ok(compacted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(strip_separators(&fold_width(input)), expected, "{input:?}");
    }

    #[test]
    fn folds_and_strips() {
        let cases = [
            ("１３８１２３４５６７８", "13812345678"),
            ("138 1234 5678", "13812345678"),
            ("138-1234-5678", "13812345678"),
            ("138.1234.5678", "13812345678"),
            ("138\u{a0}1234\u{3000}5678", "13812345678"),
            ("138－1234－5678", "13812345678"),
            ("138\u{2014}1234\u{2013}5678", "13812345678"),
            ("ｘ", "x"),
            ("Ｘ", "X"),
            ("（０７５５）", "(0755)"),
            ("张 三", "张三"),
            ("", ""),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn tidy_text_collapses_white_space() {
        let cases = [
            ("  张  三 ", "张 三"),
            (
                "上海市\n浦东新区\t世纪大道１００号",
                "上海市 浦东新区 世纪大道100号",
            ),
            ("\u{3000}Ｌｉ　Ｗｅｉ\u{a0}", "Li Wei"),
            ("   ", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(tidy_text(input), expected, "{input:?}");
        }
    }

    #[test]
    fn fold_width_maps_the_whole_block() {
        assert_eq!(fold_char('\u{FF01}'), '!');
        assert_eq!(fold_char('\u{FF5E}'), '~');
        assert_eq!(fold_char('\u{FF5F}'), '\u{FF5F}');
        assert_eq!(fold_char('＠'), '@');
        assert_eq!(fold_char('中'), '中');
    }

    #[test]
    fn compact_counts_past_capacity_without_storing() {
        let long = "1".repeat(1000);
        let compacted = compact(&long, b"").unwrap_or_else(|_| panic!("digits compact"));
        assert_eq!(compacted.len(), 1000);
        assert_eq!(compacted.as_str(), "");
        assert!(matches!(compact(" - ", b""), Err(Reason::Empty)));
        assert!(matches!(compact("13*", b""), Err(Reason::BadCharacter)));
        assert!(matches!(
            compact("a(1)", b"()")
                .map(|c| c.as_str().to_owned())
                .as_deref(),
            Ok("A(1)")
        ));
    }
}
