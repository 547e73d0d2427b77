//! Benchmarks of the masking hot paths: the default display of mobiles (target ≥ 10 M values/s on one core) and
//! FF1 format-preserving encryption of 11-digit values (target ≥ 500 k values/s).
//!
//! Run with `cargo bench -p veil-mask --bench mask`; figures are recorded in `docs/masking.md`.

use std::hint::black_box;
use std::time::Duration;

use aes::Aes256;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fpe::ff1::{FlexibleNumeralString, FF1};
use rand::rngs::StdRng;
use rand::SeedableRng;
use veil_mask::display::{default_display, mask, CN_MOBILE};
use veil_mask::ff1::Ff1Cipher;
use veil_mask::operator::{apply, FpeOptions, Operator, OperatorContext, OperatorKeys};
use veil_mask::{fake, SecretKey};
use veil_pii::{Date, PiiKind};

const VALUES: usize = 10_000;

fn mobiles() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(1);
    (0..VALUES).map(|_| fake::cn_mobile(&mut rng)).collect()
}

fn display(criterion: &mut Criterion) {
    let mobiles = mobiles();
    let mut group = criterion.benchmark_group("display");
    group.throughput(Throughput::Elements(VALUES as u64));
    group.bench_function("default_display/cn_mobile", |bencher| {
        bencher.iter(|| {
            for mobile in &mobiles {
                black_box(default_display(PiiKind::CnMobile, black_box(mobile)));
            }
        })
    });
    group.bench_function("mask/cn_mobile", |bencher| {
        bencher.iter(|| {
            for mobile in &mobiles {
                black_box(mask(black_box(mobile), &CN_MOBILE));
            }
        })
    });
    group.finish();
}

fn format_preserving(criterion: &mut Criterion) {
    let mobiles = mobiles();
    let numerals: Vec<Vec<u16>> = mobiles
        .iter()
        .map(|mobile| veil_mask::ff1::decimal_numerals(mobile).expect("digits"))
        .collect();
    let key = SecretKey::from_bytes([7; 32]);
    let cipher = Ff1Cipher::decimal(&key);
    let keys = OperatorKeys::none().with_fpe_key(&key);
    let today = Date::new(2026, 11, 29).expect("a real date");
    let operator = Operator::Fpe(FpeOptions::default());

    let mut group = criterion.benchmark_group("ff1");
    group.throughput(Throughput::Elements(VALUES as u64));
    group.bench_function("Ff1Cipher::encrypt/11 digits", |bencher| {
        bencher.iter(|| {
            for digits in &numerals {
                black_box(cipher.encrypt(b"phone", black_box(digits)).expect("valid"));
            }
        })
    });
    group.bench_function("operator fpe/cn_mobile", |bencher| {
        bencher.iter(|| {
            let mut ctx = OperatorContext::new(&keys, "phone", today);
            for mobile in &mobiles {
                black_box(
                    apply(&operator, PiiKind::CnMobile, black_box(mobile), &mut ctx)
                        .expect("valid"),
                );
            }
        })
    });
    group.finish();

    // The `fpe` crate's arbitrary-precision implementation, for comparison (one tenth of the values).
    let reference = FF1::<Aes256>::new(key.expose_secret(), 10).expect("radix 10");
    let mut group = criterion.benchmark_group("ff1 reference");
    group.throughput(Throughput::Elements((VALUES / 10) as u64));
    group.bench_function("fpe crate FF1/11 digits", |bencher| {
        bencher.iter(|| {
            for digits in &numerals[..VALUES / 10] {
                let input = FlexibleNumeralString::from(digits.clone());
                black_box(reference.encrypt(b"phone", &input).expect("valid"));
            }
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Short runs: the build machine is shared; the figures are stable to a few percent at this length.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = display, format_preserving
}
criterion_main!(benches);
