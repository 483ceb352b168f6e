//! The layers of `chat-shared` and the one direction of their dependencies, checked on the source:
//!
//! | layer      | holds                                                                   |
//! |------------|-------------------------------------------------------------------------|
//! | `platform` | configuration, time and the clock, telemetry and metrics, AWS set-up    |
//! | `domain`   | types that validate on parse, the contract's errors, pure decisions     |
//! | `adapters` | the DynamoDB store and its keys, Redis, `@connections`, Kinesis         |
//! | `services` | each use case: a plan over what was read, and the shell that applies it |
//! | `edge`     | HTTP and WebSocket requests and answers, the error map, JWTs            |
//!
//! A module may use its own layer and the layers above it in this table, never one below; within
//! a layer, the modules' uses form no cycle. Uses are `crate::<layer>::<module>` paths outside
//! comments and outside `#[cfg(test)]` modules (tests may reach anywhere). A grouped
//! `use crate::{…}` is refused, so that every use is seen.

// A test binary: a panic is a failed check (clippy.toml allows it in `#[test]` functions only).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed check"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const LAYERS: [&str; 5] = ["platform", "domain", "adapters", "services", "edge"];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without comments and without `#[cfg(test)]` items (a `mod … { … }` block, or the
/// next item when it is one line).
fn production_code(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            i += 1;
            if i < lines.len() && lines[i].contains('{') {
                let mut depth = 0i32;
                loop {
                    depth += lines[i].matches('{').count() as i32;
                    depth -= lines[i].matches('}').count() as i32;
                    i += 1;
                    if depth <= 0 || i >= lines.len() {
                        break;
                    }
                }
            } else {
                i += 1;
            }
            continue;
        }
        out.push_str(lines[i]);
        out.push('\n');
        i += 1;
    }
    out
}

/// `(layer, module)` of a file: `adapters/store/keys.rs` is `("adapters", "store")`; a layer's
/// `mod.rs` is its root, module `""`.
fn place(file: &Path) -> Option<(String, String)> {
    let relative = file.strip_prefix(src()).unwrap();
    let parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [layer, module, ..] if module != "mod" => Some((layer.clone(), module.clone())),
        [layer, ..] => Some((layer.clone(), String::new())),
        [] => None,
    }
}

/// Every `crate::<layer>::<module>` a file uses, as `(layer, module)`.
fn uses(code: &str) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let mut segments = rest
            .split("::")
            .map(|s| s.split(|c: char| !(c.is_alphanumeric() || c == '_')).next());
        if let (Some(Some(layer)), Some(Some(module))) = (segments.next(), segments.next()) {
            found.insert((layer.to_owned(), module.to_owned()));
        }
    }
    found
}

struct Source {
    file: PathBuf,
    layer: String,
    module: String,
    uses: BTreeSet<(String, String)>,
}

fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "lib.rs"))
        // The property tests are a `#[cfg(test)]` module of lib.rs.
        .filter(|f| !f.starts_with(src().join("prop")))
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let (layer, module) = place(&file).unwrap();
            Source {
                uses: uses(&production_code(&text)),
                file,
                layer,
                module,
            }
        })
        .collect()
}

#[test]
fn every_module_is_in_a_layer() {
    let stray: Vec<_> = sources()
        .into_iter()
        .filter(|s| rank(&s.layer).is_none())
        .map(|s| s.file)
        .collect();
    assert!(stray.is_empty(), "files outside the layers: {stray:?}");
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let modules: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert_eq!(modules, LAYERS.into_iter().collect(), "lib.rs's modules");
}

#[test]
fn no_grouped_crate_use() {
    for source in sources() {
        let code = production_code(&std::fs::read_to_string(&source.file).unwrap());
        assert!(
            !code.contains("crate::{"),
            "{}: write one `use crate::<layer>::<module>::…` per path",
            source.file.display()
        );
    }
}

#[test]
fn dependencies_point_down_the_layers_only() {
    let mut upward = Vec::new();
    for source in sources() {
        let own = rank(&source.layer).unwrap_or(0);
        for (layer, module) in &source.uses {
            match rank(layer) {
                Some(used) if used <= own => {}
                _ => upward.push(format!(
                    "{} ({}) uses crate::{layer}::{module}",
                    source.file.strip_prefix(src()).unwrap().display(),
                    source.layer
                )),
            }
        }
    }
    assert!(
        upward.is_empty(),
        "uses against the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_modules_of_a_layer_form_no_cycle() {
    let sources = sources();
    // A use of `crate::<layer>::<name>` where no module has that name is of the layer's root
    // (`crate::domain::UserId`).
    let modules: BTreeSet<(String, String)> = sources
        .iter()
        .map(|s| (s.layer.clone(), s.module.clone()))
        .collect();
    // module -> the modules of the same layer it uses
    let mut graph: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
    // (Kahn's algorithm below takes away the modules nothing in the graph is left to use.)
    for source in sources {
        let node = (source.layer.clone(), source.module.clone());
        let edges = graph.entry(node.clone()).or_default();
        for (layer, name) in source.uses {
            let used = if modules.contains(&(layer.clone(), name.clone())) {
                (layer, name)
            } else {
                (layer, String::new())
            };
            if used.0 == source.layer && used != node {
                edges.insert(used);
            }
        }
    }
    // Kahn's algorithm: whatever is left after removing every module nothing uses is in a cycle.
    loop {
        let leaves: Vec<_> = graph
            .iter()
            .filter(|(_, edges)| edges.iter().all(|e| !graph.contains_key(e)))
            .map(|(node, _)| node.clone())
            .collect();
        if leaves.is_empty() {
            break;
        }
        for leaf in leaves {
            graph.remove(&leaf);
        }
    }
    let cycle: Vec<String> = graph
        .iter()
        .map(|((layer, module), edges)| {
            let edges: Vec<_> = edges.iter().map(|(_, m)| m.as_str()).collect();
            format!("{layer}::{module:?} uses {}", edges.join(", "))
        })
        .collect();
    assert!(
        cycle.is_empty(),
        "modules in a cycle:\n{}",
        cycle.join("\n")
    );
}

#[test]
fn the_checks_see_a_use_against_the_layers() {
    let code = production_code(
        "use crate::edge::http::Caller; // crate::platform::time\n\
         #[cfg(test)]\nmod tests {\n    use crate::services::x;\n}\n",
    );
    let found = uses(&code);
    assert_eq!(
        found,
        BTreeSet::from([("edge".to_owned(), "http".to_owned())])
    );
}
