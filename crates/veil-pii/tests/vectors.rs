//! Runs the shared synthetic test vectors (`../shared/testdata/pii-vectors-dev.jsonl`) through
//! [`veil_pii::validate`].
//!
//! Every single-value line must be accepted exactly when `valid` is true. Lines whose note starts
//! with `STRICT:` are invalid only under the structural checks (province prefix, USCC authority,
//! embedded organisation code); `veil-pii` implements those, so they must be rejected too.
//! `free_text` lines are only counted here: `tests/corpus.rs` scores the scanner on them.

use std::path::PathBuf;

use veil_pii::{validate, Date, PiiKind};

/// The vectors' notes assume this "today" (the 2099 birth date must be in the future).
const TODAY: Date = Date {
    year: 2026,
    month: 11,
    day: 29,
};

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/pii-vectors-dev.jsonl")
}

#[test]
fn shared_vectors() {
    let path = vectors_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!(
                "test vectors missing at {} ({error}); CI must provide them",
                path.display()
            )
        }
        Err(error) => {
            println!(
                "note: skipping shared vectors, {} unreadable: {error}",
                path.display()
            );
            return;
        }
    };

    let mut checked = 0;
    let mut strict = 0;
    let mut free_text = 0;
    let mut failures = Vec::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
    {
        let line_number = index + 1;
        let vector: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("line {line_number}: bad JSON: {error}"));
        let field = |name: &str| {
            vector
                .get(name)
                .unwrap_or_else(|| panic!("line {line_number}: no `{name}`"))
        };
        let kind_name = field("kind")
            .as_str()
            .unwrap_or_else(|| panic!("line {line_number}: kind"));
        if kind_name == "free_text" {
            free_text += 1;
            continue;
        }
        let kind: PiiKind = kind_name
            .parse()
            .unwrap_or_else(|error| panic!("line {line_number}: {error}"));
        let input = field("text")
            .as_str()
            .unwrap_or_else(|| panic!("line {line_number}: text"));
        let valid = field("valid")
            .as_bool()
            .unwrap_or_else(|| panic!("line {line_number}: valid"));
        let note = vector
            .get("note")
            .and_then(|note| note.as_str())
            .unwrap_or("");
        if note.starts_with("STRICT:") {
            strict += 1;
        }
        let result = validate(kind, input, TODAY);
        if result.is_ok() != valid {
            let outcome = match &result {
                Ok(_) => "accepted".to_owned(),
                Err(invalid) => format!("rejected ({invalid})"),
            };
            failures.push(format!(
                "line {line_number} {kind} {input:?}: {outcome}, expected valid={valid} — {note}"
            ));
        }
        checked += 1;
    }

    println!(
        "checked {checked} single values ({strict} STRICT), skipped {free_text} free_text lines"
    );
    assert!(
        checked > 0,
        "no single-value vectors found in {}",
        path.display()
    );
    assert!(
        failures.is_empty(),
        "{} vector(s) disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The spans of `free_text` lines, cut out of their text, must validate as their `valid` flag
/// says: a check of the validators on realistic in-context spellings (the scanner itself is
/// scored on these lines by `tests/corpus.rs`).
#[test]
fn free_text_spans_validate_individually() {
    let Ok(text) = std::fs::read_to_string(vectors_path()) else {
        // `shared_vectors` reports the missing file (and fails in CI).
        return;
    };
    let mut checked = 0;
    let mut failures = Vec::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
    {
        let vector: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        if vector["kind"] != "free_text" {
            continue;
        }
        let chars: Vec<char> = vector["text"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .collect();
        for span in vector["spans"].as_array().into_iter().flatten() {
            let (Some(kind), Some(start), Some(end), Some(valid)) = (
                span["kind"]
                    .as_str()
                    .and_then(|kind| kind.parse::<PiiKind>().ok()),
                span["start"].as_u64(),
                span["end"].as_u64(),
                span["valid"].as_bool(),
            ) else {
                panic!("line {}: malformed span {span}", index + 1);
            };
            let value: String = chars
                .get(start as usize..end as usize)
                .unwrap_or_default()
                .iter()
                .collect();
            if validate(kind, &value, TODAY).is_ok() != valid {
                failures.push(format!(
                    "line {} {kind} {value:?}: expected valid={valid}",
                    index + 1
                ));
            }
            checked += 1;
        }
    }
    println!("checked {checked} free_text spans");
    assert!(
        failures.is_empty(),
        "{} span(s) disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
