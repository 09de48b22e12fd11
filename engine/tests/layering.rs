//! The engine's layers, checked: a module of `engine/src` may name (`crate::…`) only the
//! modules listed for it below, so dependencies point one way. docs/ARCHITECTURE.md draws the
//! same table; change both together.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use, lowest layer first.
const LAYERS: &[(&str, &[&str])] = &[
    ("proto", &[]),
    ("rt", &[]),
    ("peers", &["proto"]),
    ("registry", &["proto", "rt", "peers"]),
    ("shard", &["proto", "rt", "registry"]),
    ("router", &["proto", "rt", "registry", "shard"]),
    ("pex", &["proto", "rt", "registry", "router"]),
    ("config", &["proto", "rt", "peers", "pex"]),
    (
        "node",
        &[
            "proto", "rt", "peers", "registry", "shard", "router", "pex", "config",
        ],
    ),
    (
        "metrics",
        &["proto", "rt", "peers", "registry", "router", "pex", "node"],
    ),
];

/// The top-level modules a piece of Rust source names through `crate::`, comments left out.
/// A name that starts with a capital letter (`crate::Node`) is a re-export at the crate root,
/// which hides the layer it comes from: it is reported as `<root>`.
fn named_modules(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split(" //").next().unwrap_or(code);
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            // `crate::{a, b::C}` names several.
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .collect(),
                None => vec![rest],
            };
            for name in names {
                let ident: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if ident.is_empty() {
                    continue;
                }
                if ident.starts_with(|c: char| c.is_uppercase()) {
                    found.insert("<root>".to_owned());
                } else {
                    found.insert(ident);
                }
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read engine/src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::` reference that crosses the layers the wrong way, as `file: names module`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_owned())
            .unwrap_or_default();
        if top == "lib" {
            continue;
        }
        let Some((_, allowed)) = LAYERS.iter().find(|(m, _)| *m == top) else {
            bad.push(format!(
                "{}: module `{top}` is missing from LAYERS",
                rel.display()
            ));
            continue;
        };
        let source = fs::read_to_string(&file).expect("read source");
        for used in named_modules(&source) {
            if used != top && !allowed.contains(&used.as_str()) {
                bad.push(format!("{}: `{top}` names `crate::{used}`", rel.display()));
            }
        }
    }
    bad
}

#[test]
fn lower_layers_never_name_higher_ones() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "dependencies must point down (see docs/ARCHITECTURE.md):\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_layer_is_listed_once_and_only_below_itself() {
    for (i, (module, allowed)) in LAYERS.iter().enumerate() {
        let below: Vec<&str> = LAYERS[..i].iter().map(|(m, _)| *m).collect();
        for a in *allowed {
            assert!(
                below.contains(a),
                "`{module}` may use `{a}`, which is not below it"
            );
        }
    }
}

#[test]
fn the_scanner_sees_every_form_of_a_path() {
    let src = "use crate::router::Router;\n\
               use crate::{shard::Command, registry};\n\
               // crate::node is only a comment\n\
               let x = crate::Node::builder(); // crate::metrics too\n\
               /// [`crate::config`] in a doc comment\n";
    let found: Vec<String> = named_modules(src).into_iter().collect();
    assert_eq!(found, ["<root>", "registry", "router", "shard"]);
}
