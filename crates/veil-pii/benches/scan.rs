//! Throughput of the free-text scanner on a ≥ 10 MB synthetic Chinese customer-notes corpus.
//!
//! The corpus is built in memory, deterministically, by `tests/support/generator.rs`: 40 % of the
//! lines are labelled CRM notes dense with personal data (names, mobiles, IDs, cards, addresses,
//! hard negatives such as order numbers and timestamps), 60 % ordinary notes without any, one
//! note per line. Two shapes are measured: the whole text in one call, and line by line (as
//! `veil pii scan` and note writes do) reusing one output vector.
//!
//! Run: `cargo bench -p veil-pii --bench scan`.

#[path = "../tests/support/generator.rs"]
mod generator;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use veil_pii::{Date, Scanner};

const TODAY: Date = Date {
    year: 2026,
    month: 11,
    day: 29,
};

fn scan_notes(c: &mut Criterion) {
    let text = generator::notes_text(10 * 1024 * 1024, 0xBE_4C4);
    let scanner = Scanner::new();
    let spans = scanner.scan(&text, TODAY).len();
    eprintln!(
        "corpus: {} bytes, {} chars, {} lines, {spans} spans",
        text.len(),
        text.chars().count(),
        text.lines().count()
    );

    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("notes_10mb_whole", |b| {
        b.iter(|| scanner.scan(black_box(&text), TODAY).len())
    });
    group.bench_function("notes_10mb_by_line", |b| {
        let mut spans = Vec::new();
        b.iter(|| {
            let mut found = 0;
            for line in black_box(&text).lines() {
                scanner.scan_into(line, TODAY, &mut spans);
                found += spans.len();
            }
            found
        })
    });
    group.finish();
}

criterion_group!(benches, scan_notes);
criterion_main!(benches);
