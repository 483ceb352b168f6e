//! Every attribute an expression names (update, condition, key condition, filter) is a field of
//! an item struct, as serde writes it. Expressions are text that nothing else ties to the items:
//! renaming a field, or misspelling an attribute in an expression, fails here instead of writing
//! an attribute no reader looks at. Read off the source, outside comments and `#[cfg(test)]`
//! modules: the string literals that are expressions, and the attribute names given to
//! placeholders (`.name("#d", "day")`).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a panic is a failed check"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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

/// The production code of every file of `shared/src` (comments and test modules left out).
fn sources() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .filter(|f| !f.starts_with(src.join("prop")))
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            (f, code)
        })
        .collect()
}

fn camel_case(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The attribute names of the item structs: the fields of every `camelCase` struct, renamed
/// where `#[serde(rename = "…")]` says so.
fn item_attributes(sources: &[(PathBuf, String)]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, code) in sources {
        let lines: Vec<&str> = code.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let camel = lines[i].contains("rename_all = \"camelCase\"");
            i += 1;
            if !camel {
                continue;
            }
            // The struct this attribute is on, its fields up to the closing brace.
            while i < lines.len() && !lines[i].contains("struct ") {
                i += 1;
            }
            let mut rename: Option<String> = None;
            while i < lines.len() && lines[i].trim() != "}" {
                let line = lines[i].trim();
                if let Some(at) = line.find("rename = \"") {
                    let rest = &line[at + "rename = \"".len()..];
                    rename = rest.split('"').next().map(str::to_owned);
                } else if let Some(field) = line
                    .trim_start_matches("pub ")
                    .split_once(':')
                    .map(|(f, _)| f.trim())
                    .filter(|f| !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || c == '_'))
                {
                    names.insert(rename.take().unwrap_or_else(|| camel_case(field)));
                }
                i += 1;
            }
        }
    }
    names
}

/// The string literals of the code.
fn literals(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        out.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    out
}

const WORDS: [&str; 17] = [
    "SET",
    "ADD",
    "REMOVE",
    "DELETE",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "if_not_exists",
    "list_append",
    "size",
    "PK",
];

/// Whether a literal is an expression (rather than a message, a key or a name).
fn is_expression(literal: &str) -> bool {
    ["SET ", "ADD ", "REMOVE "]
        .iter()
        .any(|w| literal.starts_with(w))
        || [" = :", " < :", " > :", " >= :", " <= :", "attribute_"]
            .iter()
            .any(|op| literal.contains(op))
        || (literal.contains(" = memberCount") || literal.ends_with(" = :now"))
}

/// The attribute names an expression uses by name (not through a `#placeholder`); `{…}` is a
/// `format!` argument, not part of the expression.
fn bare_names(expression: &str) -> Vec<String> {
    let mut expression = expression.to_owned();
    while let (Some(open), Some(close)) = (expression.find('{'), expression.find('}')) {
        if close < open {
            break;
        }
        expression.replace_range(open..=close, "0");
    }
    let mut out = Vec::new();
    let mut token = String::new();
    let mut sigil = false;
    for c in expression.chars().chain(std::iter::once(' ')) {
        if c.is_alphanumeric() || c == '_' {
            token.push(c);
        } else {
            if !token.is_empty() && !sigil && !token.chars().all(|c| c.is_ascii_digit()) {
                out.push(std::mem::take(&mut token));
            }
            token.clear();
            sigil = c == ':' || c == '#';
        }
    }
    out.into_iter()
        .filter(|t| !WORDS.contains(&t.as_str()) && t != "SK")
        .collect()
}

/// The attribute names given to placeholders as literals: `.name("#d", "day")`.
fn placeholder_names(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices(".name(\"#") {
        let call = &code[at..];
        let args: Vec<String> = literals(call.split(')').next().unwrap_or_default());
        if let [_, attribute] = args.as_slice() {
            out.push(attribute.clone());
        }
    }
    out
}

#[test]
fn every_attribute_an_expression_names_is_a_field_of_an_item() {
    let sources = sources();
    let fields = item_attributes(&sources);
    assert!(
        fields.contains("lastSeq") && fields.contains("memberNames"),
        "{fields:?}"
    );
    let mut unknown = Vec::new();
    let mut seen = 0;
    for (file, code) in &sources {
        let used = literals(code)
            .into_iter()
            .filter(|l| is_expression(l))
            .flat_map(|l| bare_names(&l))
            .chain(placeholder_names(code));
        for name in used {
            seen += 1;
            if !fields.contains(&name) {
                unknown.push(format!("{}: {name}", file.display()));
            }
        }
    }
    // The scan finds the expressions at all (a change of style would empty it silently).
    assert!(seen > 40, "only {seen} attribute uses found");
    assert!(
        unknown.is_empty(),
        "attributes that no item struct has:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn the_scan_reads_names_but_not_placeholders() {
    assert_eq!(
        bare_names("SET lastSeq = :seq, #names.#u{i} = :n{i} ADD rev :one"),
        ["lastSeq", "rev"]
    );
    assert_eq!(
        bare_names("attribute_not_exists(PK) OR expiresAt < :now"),
        ["expiresAt"]
    );
    assert_eq!(
        placeholder_names(r##"x.name("#d", "day").name("#u0", u)"##),
        ["day"]
    );
}
