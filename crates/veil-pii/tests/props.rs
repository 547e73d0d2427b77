//! Property tests (proptest) for the validators and the free-text scanner: no panics on arbitrary
//! Unicode, well-formed spans, generated valid values found at the right char offsets when
//! embedded in Chinese text, and digit runs longer than any kind never matched.

#[path = "support/generator.rs"]
mod generator;

use proptest::prelude::*;
use veil_pii::{scan, validate, Date, PiiKind, Span};

const TODAY: Date = Date {
    year: 2026,
    month: 11,
    day: 29,
};

/// Span invariants that hold for any input.
fn assert_well_formed(text: &str, spans: &[Span]) {
    let chars = text.chars().count();
    let mut previous_end = 0;
    for span in spans {
        assert!(span.start < span.end && span.end <= chars, "{span:?}");
        assert!(
            span.start >= previous_end,
            "unsorted or overlapping: {spans:?}"
        );
        assert!(text.is_char_boundary(span.byte_start) && text.is_char_boundary(span.byte_end));
        assert_eq!(text[..span.byte_start].chars().count(), span.start);
        assert_eq!(text[..span.byte_end].chars().count(), span.end);
        assert!((0.0..=1.0).contains(&span.confidence));
        assert_eq!(span.valid, span.normalized.is_some());
        previous_end = span.end;
    }
}

/// Characters that make scanning interesting: digits (ASCII and full-width), letters, separators,
/// context words' characters, CJK, punctuation and the odd control or astral character.
fn awkward_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(
            "0123456789１２３４５６７８９０Xx+-() .@:：#（）＠＋－\u{3000}\u{a0}".chars().collect::<Vec<_>>()
        ),
        3 => prop::sample::select(
            "客户手机身份证号地址住北京市朝阳区路号室先生女士张王欧阳出生日期年月日订单卡税护照回乡证的了"
                .chars()
                .collect::<Vec<_>>()
        ),
        1 => prop::sample::select("MrsName:addressDOBhkidEGHCW".chars().collect::<Vec<_>>()),
        1 => any::<char>(),
    ]
}

fn awkward_text() -> impl Strategy<Value = String> {
    prop::collection::vec(awkward_char(), 0..120).prop_map(|chars| chars.into_iter().collect())
}

/// Neutral Chinese filler: no context word, label word or surname can be formed from it.
fn filler() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(
            "天气很好今年商品质量服务满意快乐春夏秋冬山水风景"
                .chars()
                .collect::<Vec<_>>(),
        ),
        1..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn scanning_arbitrary_unicode_never_panics(text in any::<String>()) {
        let spans = scan(&text, TODAY);
        assert_well_formed(&text, &spans);
    }

    #[test]
    fn scanning_awkward_text_gives_well_formed_spans(text in awkward_text()) {
        let spans = scan(&text, TODAY);
        assert_well_formed(&text, &spans);
        for span in &spans {
            let piece = &text[span.byte_start..span.byte_end];
            if span.valid && span.kind != PiiKind::BirthDate {
                // A span called valid passes its validator, with the same normal form.
                let validated = validate(span.kind, piece, TODAY);
                prop_assert_eq!(validated.map(|v| v.normalized).ok(), span.normalized.clone());
            }
        }
    }

    #[test]
    fn validators_never_panic(text in awkward_text()) {
        for kind in PiiKind::ALL {
            let _ = validate(kind, &text, TODAY);
        }
    }

    #[test]
    fn validators_never_panic_on_any_string(text in any::<String>()) {
        for kind in PiiKind::ALL {
            if let Err(invalid) = validate(kind, &text, TODAY) {
                let message = invalid.to_string();
                prop_assert!(message.starts_with("not a valid "));
            }
        }
    }

    #[test]
    fn embedded_valid_values_are_found_at_their_offsets(
        seed in any::<u64>(),
        which in 0usize..3,
        before in filler(),
        after in filler(),
    ) {
        let mut rng = generator::Rng::new(seed);
        let (kind, value) = match which {
            0 => (PiiKind::CnId, generator::values(&mut rng).cn_id()),
            1 => (PiiKind::CnMobile, generator::values(&mut rng).mobile_digits()),
            _ => (PiiKind::BankCard, generator::values(&mut rng).card_16_or_19()),
        };
        let text = format!("{before}{value}{after}");
        let spans = scan(&text, TODAY);
        assert_well_formed(&text, &spans);
        let start = before.chars().count();
        let end = start + value.chars().count();
        prop_assert!(
            spans.iter().any(|s| s.kind == kind && s.start == start && s.end == end && s.valid),
            "{kind} not found in {text:?}: {spans:?}"
        );
    }

    #[test]
    fn digit_runs_longer_than_any_kind_are_not_matched(
        digits in "[0-9]{20,60}",
        left in "[a-zA-Z]{1,4}",
        right in "[a-zA-Z]{0,4}",
        before in filler(),
    ) {
        for text in [format!("{left}{digits}{right}"), format!("{before}{digits}{before}")] {
            let spans = scan(&text, TODAY);
            prop_assert!(spans.is_empty(), "{text:?}: {spans:?}");
        }
    }

    #[test]
    fn a_mobile_inside_a_longer_number_is_not_matched(
        seed in any::<u64>(),
        head in "[0-9]{1,8}",
        before in filler(),
    ) {
        prop_assume!(head != "86" && head != "0086");
        let mut rng = generator::Rng::new(seed);
        let mobile = generator::values(&mut rng).mobile_digits();
        let text = format!("{before}{head}{mobile}{before}");
        let spans = scan(&text, TODAY);
        prop_assert!(
            spans.iter().all(|s| s.kind != PiiKind::CnMobile),
            "{text:?}: {spans:?}"
        );
    }
}
