//! Fuzz target: `veil_pii::scan` on arbitrary UTF-8 must not panic, and its spans must be
//! sorted, non-overlapping, within the text, consistent between char and byte offsets, valid
//! only with a normal form, and with a confidence in 0..=1. Every validator runs on each span's
//! text too. Run with `cargo +nightly fuzz run scan` from `fuzz/` (see fuzz/README.md).

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_pii::{scan, validate, Date, PiiKind};

const TODAY: Date = Date {
    year: 2026,
    month: 11,
    day: 29,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let spans = scan(text, TODAY);
    let chars = text.chars().count();
    let mut previous_end = 0;
    for span in &spans {
        assert!(span.start < span.end && span.end <= chars);
        assert!(span.start >= previous_end, "sorted and non-overlapping");
        assert!(text.is_char_boundary(span.byte_start) && text.is_char_boundary(span.byte_end));
        assert_eq!(text[..span.byte_start].chars().count(), span.start);
        assert_eq!(text[span.byte_start..span.byte_end].chars().count(), span.end - span.start);
        assert!((0.0..=1.0).contains(&span.confidence));
        assert_eq!(span.valid, span.normalized.is_some());
        previous_end = span.end;
        for kind in PiiKind::ALL {
            let _ = validate(kind, &text[span.byte_start..span.byte_end], TODAY);
        }
    }
});
