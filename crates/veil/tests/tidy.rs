//! House rules a machine can check (see `../shared/design/house-style.md`): no `dbg!`, no printing from library
//! crates, a `//!` doc on every crate and module file, and every path named in ARCHITECTURE.md exists.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_debug_macros_and_no_printing_in_libraries() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    assert!(files.len() > 20);
    let debug_macro = ["dbg", "!("].concat();
    let print_macros = [["println", "!("].concat(), ["print", "!("].concat()];
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let relative = file.strip_prefix(&root).unwrap().display().to_string();
        assert!(
            !source.contains(&debug_macro),
            "{relative} contains a debug macro"
        );
        let binary =
            relative.starts_with("crates/veil/") || relative.starts_with("crates/veil-bench/");
        if relative.contains("/src/") && !binary {
            // Standard error is fine (test harness notes); standard output belongs to the binary.
            let without_stderr = source
                .replace(&["eprint", "ln!("].concat(), "")
                .replace(&["eprint", "!("].concat(), "");
            for print in &print_macros {
                assert!(
                    !without_stderr.contains(print.as_str()),
                    "{relative} prints to stdout; libraries return values or log"
                );
            }
        }
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    for file in files {
        let relative = file.strip_prefix(&root).unwrap().display().to_string();
        if !relative.contains("/src/") {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        assert!(
            source.trim_start().starts_with("//!"),
            "{relative} has no //! module doc"
        );
    }
}

#[test]
fn no_mod_rs_files() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    for file in files {
        assert!(
            !file.ends_with("mod.rs"),
            "{} — one module style: name.rs, not name/mod.rs",
            file.display()
        );
    }
}

#[test]
fn paths_named_in_architecture_md_exist() {
    let root = workspace_root();
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md exists");
    let mut checked = 0;
    for (index, part) in architecture.split('`').enumerate() {
        // Odd parts are inside backticks.
        if index % 2 == 0 || part.contains(' ') || part.contains("://") || part.starts_with('-') {
            continue;
        }
        let looks_like_path = part.contains('/')
            || [".rs", ".md", ".toml", ".sql"]
                .iter()
                .any(|suffix| part.ends_with(suffix));
        if !looks_like_path || part.contains('{') || part.contains('*') || part.contains('<') {
            continue;
        }
        let candidate = part.trim_start_matches("./");
        // API routes are not files.
        if candidate.starts_with("api/") || candidate.starts_with("/") {
            continue;
        }
        let exists = root.join(candidate).exists() || root.join("crates").join(candidate).exists();
        assert!(
            exists,
            "ARCHITECTURE.md names `{part}`, which does not exist"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "ARCHITECTURE.md should name the code it describes (found {checked} paths)"
    );
}
