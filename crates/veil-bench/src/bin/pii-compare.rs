//! `pii-compare`: Veil's side of the comparison with the anchors (`bench/presidio_compare.py`).
//!
//! Measures, on one core, and prints one JSON object:
//! 1. scan + mask throughput over ≥ 10 MB of notes, one note per line — the once-built
//!    [`Scanner`] with each span replaced by [`veil_mask::default_display`] (what
//!    `veil_app::notes::mask_text` does on a note write), plus `mask_text` itself and the
//!    whole text in one call. Two texts: `notes`, the criterion bench's corpus
//!    (`crates/veil-pii/tests/support/generator.rs`, 40 % notes with personal data, 60 % without),
//!    and `labelled`, the labelled corpus's texts repeated `--repeat` times (every line has some);
//! 2. precision and recall per kind on the labelled corpus (strict: same kind and char offsets)
//!    for the kinds a regex tool can cover, in two scorings: `valid` (only labelled values that
//!    pass their kind's check are positives, only spans Veil calls valid are predictions; invalid
//!    look-alikes are hard negatives) and `all` (Veil's own scoring in `tests/corpus.rs`: labelled
//!    invalid look-alikes are positives too and every span is a prediction);
//! 3. FF1 (AES-256, radix 10) encryptions per second of 11-digit strings under one key and a
//!    constant tweak, string in and string out, and on prepared numerals.
//!
//! `--write-texts DIR` writes both throughput texts (`notes.txt`, `labelled.txt`) so that the
//! Python side measures Presidio on the same bytes.
//!
//! Run: `cargo run --release -p veil-bench --bin pii-compare -- --corpus
//! crates/veil-pii/tests/fixtures/pii-corpus.jsonl`.

#[path = "../../../veil-pii/tests/support/generator.rs"]
mod generator;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use serde_json::{json, Value};
use veil_mask::ff1::{decimal_numerals, decimal_string, Ff1Cipher};
use veil_mask::{default_display, SecretKey};
use veil_pii::{Date, PiiKind, Scanner, Span};

/// The date the corpus is scored against (as in `tests/corpus.rs` and `benches/scan.rs`).
const TODAY: Date = Date {
    year: 2026,
    month: 11,
    day: 29,
};

/// The criterion bench's corpus seed (`crates/veil-pii/benches/scan.rs`).
const NOTES_SEED: u64 = 0xBE_4C4;

/// Kinds both Veil and a regex recogniser set can find. `person_name`, `address` and
/// `birth_date` need context or NER, which Presidio without a spaCy model does not have.
const COMPARED: [PiiKind; 10] = [
    PiiKind::CnId,
    PiiKind::CnMobile,
    PiiKind::CnLandline,
    PiiKind::Email,
    PiiKind::BankCard,
    PiiKind::Uscc,
    PiiKind::CnPassport,
    PiiKind::HkMacauPermit,
    PiiKind::TwPermit,
    PiiKind::HkId,
];

#[derive(Parser)]
struct Args {
    /// Labelled corpus: JSONL lines `{"text", "spans": [{"kind", "start", "end", "valid"}]}`
    /// (lines with a `kind` other than `free_text` are skipped). May be given several times:
    /// each is scored on its own, and the first one makes the `labelled` throughput text.
    #[arg(
        long,
        default_value = "crates/veil-pii/tests/fixtures/pii-corpus.jsonl"
    )]
    corpus: Vec<PathBuf>,
    /// Times the labelled texts are repeated for the `labelled` throughput text; 0 = enough
    /// for `--min-bytes`.
    #[arg(long, default_value_t = 0)]
    repeat: usize,
    /// Smallest size of each throughput text, in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    min_bytes: usize,
    /// Timed passes over each throughput text; the best is reported (and the median).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// 11-digit values encrypted in the FF1 measurement.
    #[arg(long, default_value_t = 1_000_000)]
    ff1_values: usize,
    /// Write the throughput texts (`notes.txt`, `labelled.txt`) into this directory.
    #[arg(long)]
    write_texts: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut corpora = Vec::new();
    for path in &args.corpus {
        let source =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let lines = parse_corpus(&source)?;
        anyhow::ensure!(
            !lines.is_empty(),
            "{} has no labelled lines",
            path.display()
        );
        corpora.push((path.display().to_string(), lines));
    }
    let labelled = &corpora.first().context("no --corpus")?.1;
    let scanner = Scanner::new();

    let notes = generator::notes_text(args.min_bytes, NOTES_SEED);
    let labelled_text = repeated_text(labelled, args.repeat, args.min_bytes);
    if let Some(dir) = &args.write_texts {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("notes.txt"), &notes)?;
        std::fs::write(dir.join("labelled.txt"), &labelled_text.0)?;
    }

    let throughput = json!({
        "notes": throughput(&scanner, &notes, args.rounds, json!({
            "source": "generator::notes_text (the criterion bench's corpus)",
            "seed": NOTES_SEED,
        })),
        "labelled": throughput(&scanner, &labelled_text.0, args.rounds, json!({
            "source": "labelled corpus texts repeated",
            "repeat": labelled_text.1,
        })),
    });

    let precision_recall: Vec<Value> = corpora
        .iter()
        .map(|(path, lines)| {
            json!({
                "corpus": path,
                "lines": lines.len(),
                "valid": score(&scanner, lines, true),
                "all": score(&scanner, lines, false),
            })
        })
        .collect();
    let report = json!({
        "tool": "veil",
        "today": "2026-11-29",
        "throughput": throughput,
        "precision_recall": precision_recall,
        "ff1": ff1(args.ff1_values)?,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// One labelled line: the text and its spans `(kind, start, end, valid)`.
struct Labelled {
    text: String,
    spans: Vec<(String, usize, usize, bool)>,
}

fn parse_corpus(source: &str) -> anyhow::Result<Vec<Labelled>> {
    let mut lines = Vec::new();
    for (index, line) in source.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(line).with_context(|| format!("corpus line {}", index + 1))?;
        if value["kind"]
            .as_str()
            .is_some_and(|kind| kind != "free_text")
        {
            // A single-value vector (`../shared/testdata/pii-vectors-dev.jsonl`), not a note.
            continue;
        }
        let text = value["text"]
            .as_str()
            .with_context(|| format!("corpus line {}: no text", index + 1))?
            .to_owned();
        let mut spans = Vec::new();
        for span in value["spans"].as_array().into_iter().flatten() {
            let number = |name: &str| span[name].as_u64().unwrap_or_default() as usize;
            // Stable names, so that aliases (`hkmo_permit`) compare equal.
            let kind = span["kind"].as_str().unwrap_or_default();
            let kind = kind
                .parse::<PiiKind>()
                .map_or(kind, |kind| kind.as_str())
                .to_owned();
            spans.push((
                kind,
                number("start"),
                number("end"),
                span["valid"].as_bool().unwrap_or(true),
            ));
        }
        lines.push(Labelled { text, spans });
    }
    Ok(lines)
}

/// The labelled texts, one a line, repeated `repeat` times (or until `min_bytes` when 0).
fn repeated_text(lines: &[Labelled], repeat: usize, min_bytes: usize) -> (String, usize) {
    let mut text = String::new();
    let mut times = 0;
    while (repeat == 0 && text.len() < min_bytes) || times < repeat {
        for line in lines {
            // A text with a line break would become two notes; the corpus has none.
            text.push_str(&line.text.replace('\n', " "));
            text.push('\n');
        }
        times += 1;
    }
    (text, times)
}

/// Scan `text` with `scanner` and replace each span by its default display, into `out`.
fn mask_into(scanner: &Scanner, text: &str, spans: &mut Vec<Span>, out: &mut String) {
    scanner.scan_into(text, TODAY, spans);
    out.clear();
    let mut cursor = 0;
    for span in spans.iter() {
        out.push_str(&text[cursor..span.byte_start]);
        let normalized = span.normalized.as_deref().unwrap_or("");
        out.push_str(&default_display(span.kind, normalized));
        cursor = span.byte_end;
    }
    out.push_str(&text[cursor..]);
}

/// Best and median seconds of `rounds` runs of `work`.
fn time_rounds(rounds: usize, mut work: impl FnMut() -> usize) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(rounds);
    let mut checksum = 0;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        checksum = black_box(work());
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[0], times[times.len() / 2], checksum)
}

fn rate(bytes: usize, (best, median, _): (f64, f64, usize)) -> Value {
    json!({
        "best_seconds": best,
        "median_seconds": median,
        "mb_per_s": bytes as f64 / best / 1e6,
        "mib_per_s": bytes as f64 / best / (1024.0 * 1024.0),
        "median_mb_per_s": bytes as f64 / median / 1e6,
    })
}

fn throughput(scanner: &Scanner, text: &str, rounds: usize, about: Value) -> Value {
    let bytes = text.len();
    let lines = text.lines().count();
    let mut spans = Vec::new();
    let mut out = String::new();
    let mut found = 0;
    let mut masked_bytes = 0;
    for line in text.lines() {
        mask_into(scanner, line, &mut spans, &mut out);
        found += spans.len();
        masked_bytes += out.len() + 1;
    }

    // Warm-up pass, then the timed ones.
    let mut by_line = || {
        let mut total = 0;
        for line in text.lines() {
            mask_into(scanner, line, &mut spans, &mut out);
            total += out.len();
        }
        total
    };
    by_line();
    let scan_mask_by_line = time_rounds(rounds, &mut by_line);

    let scan_only_by_line = time_rounds(rounds, || {
        let mut spans = Vec::new();
        let mut total = 0;
        for line in text.lines() {
            scanner.scan_into(line, TODAY, &mut spans);
            total += spans.len();
        }
        total
    });

    let mask_text_by_line = time_rounds(rounds, || {
        let mut total = 0;
        for line in text.lines() {
            total += veil_app::notes::mask_text(line).body.len();
        }
        total
    });

    let mut whole_spans = Vec::new();
    let mut whole_out = String::new();
    let scan_mask_whole = time_rounds(rounds, || {
        mask_into(scanner, text, &mut whole_spans, &mut whole_out);
        whole_out.len()
    });

    let mut about = about;
    about["bytes"] = json!(bytes);
    about["chars"] = json!(text.chars().count());
    about["lines"] = json!(lines);
    about["spans"] = json!(found);
    about["masked_bytes"] = json!(masked_bytes);
    about["rounds"] = json!(rounds);
    about["scan_mask_by_line"] = rate(bytes, scan_mask_by_line);
    about["scan_only_by_line"] = rate(bytes, scan_only_by_line);
    about["mask_text_by_line"] = rate(bytes, mask_text_by_line);
    about["scan_mask_whole"] = rate(bytes, scan_mask_whole);
    about
}

#[derive(Default)]
struct Counts {
    labelled: usize,
    found: usize,
    matched: usize,
}

fn ratio(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// Strict precision and recall per compared kind. With `valid_only`, labelled invalid
/// look-alikes are negatives and only valid spans are predictions.
fn score(scanner: &Scanner, lines: &[Labelled], valid_only: bool) -> Value {
    let compared: Vec<&str> = COMPARED.iter().map(|kind| kind.as_str()).collect();
    let mut counts: BTreeMap<&str, Counts> =
        compared.iter().map(|k| (*k, Counts::default())).collect();
    let mut spans = Vec::new();
    for line in lines {
        scanner.scan_into(&line.text, TODAY, &mut spans);
        let truth: Vec<(&str, usize, usize)> = line
            .spans
            .iter()
            .filter(|(kind, _, _, valid)| {
                compared.contains(&kind.as_str()) && (*valid || !valid_only)
            })
            .map(|(kind, start, end, _)| (kind.as_str(), *start, *end))
            .collect();
        let found: Vec<(&str, usize, usize)> = spans
            .iter()
            .filter(|span| COMPARED.contains(&span.kind) && (span.valid || !valid_only))
            .map(|span| (span.kind.as_str(), span.start, span.end))
            .collect();
        for &(kind, start, end) in &truth {
            if let Some(counts) = counts.get_mut(kind) {
                counts.labelled += 1;
                if found.contains(&(kind, start, end)) {
                    counts.matched += 1;
                }
            }
        }
        for &(kind, _, _) in &found {
            if let Some(counts) = counts.get_mut(kind) {
                counts.found += 1;
            }
        }
    }
    let mut per_kind = serde_json::Map::new();
    let mut total = Counts::default();
    for (kind, c) in &counts {
        per_kind.insert(
            (*kind).to_owned(),
            json!({
                "labelled": c.labelled,
                "found": c.found,
                "matched": c.matched,
                "precision": ratio(c.matched, c.found),
                "recall": ratio(c.matched, c.labelled),
            }),
        );
        total.labelled += c.labelled;
        total.found += c.found;
        total.matched += c.matched;
    }
    per_kind.insert(
        "all".to_owned(),
        json!({
            "labelled": total.labelled,
            "found": total.found,
            "matched": total.matched,
            "precision": ratio(total.matched, total.found),
            "recall": ratio(total.matched, total.labelled),
        }),
    );
    Value::Object(per_kind)
}

/// FF1 encryptions per second of `count` 11-digit values under one key and a constant tweak.
fn ff1(count: usize) -> anyhow::Result<Value> {
    let count = count.max(1);
    let mut rng = generator::Rng::new(0xFF1);
    let values: Vec<String> = (0..count)
        .map(|_| format!("{:011}", rng.next_u64() % 100_000_000_000))
        .collect();
    let numerals: Vec<Vec<u16>> = values
        .iter()
        .map(|value| decimal_numerals(value).context("digits"))
        .collect::<anyhow::Result<_>>()?;
    let key = SecretKey::from_bytes(std::array::from_fn(|i| i as u8));
    let cipher = Ff1Cipher::decimal(&key);
    let tweak: &[u8] = b"veil-bench";

    // Round trip on a few, so that a broken cipher cannot post a figure.
    for digits in numerals.iter().take(100) {
        let encrypted = cipher.encrypt(tweak, digits)?;
        anyhow::ensure!(
            cipher.decrypt(tweak, &encrypted)? == *digits,
            "FF1 round trip failed"
        );
    }

    let strings = time_rounds(3, || {
        let mut total = 0;
        for value in &values {
            let digits = decimal_numerals(black_box(value)).unwrap_or_default();
            let encrypted = cipher.encrypt(tweak, &digits).unwrap_or_default();
            total += decimal_string(&encrypted).len();
        }
        total
    });
    let prepared = time_rounds(3, || {
        let mut total = 0;
        for digits in &numerals {
            total += cipher
                .encrypt(tweak, black_box(digits))
                .unwrap_or_default()
                .len();
        }
        total
    });
    Ok(json!({
        "algorithm": "FF1-AES-256 (NIST SP 800-38G), radix 10, veil_mask::ff1::Ff1Cipher",
        "digits": 11,
        "values": count,
        "tweak": "constant (10 bytes)",
        "string_ops_per_s": count as f64 / strings.0,
        "string_median_ops_per_s": count as f64 / strings.1,
        "numerals_ops_per_s": count as f64 / prepared.0,
    }))
}
