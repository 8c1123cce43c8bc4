//! The crate's layering, enforced: each top-level module of `src/` may use only the
//! modules listed for it in `ALLOWED` (the layers below it), and no two files import each
//! other through a cycle. Reads the sources; a violation names the file, the line and
//! the path used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and the modules it may use (`crate::<module>`). The layers,
/// bottom up: error, rng, fs, limits, task → kernels (the kernel ABI) → backend; data, optim
/// and metrics beside it → graph → plan, nn → session → train → app (the command line).
const ALLOWED: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("rng", &["error"]),
    ("fs", &["error"]),
    ("limits", &["error"]),
    ("task", &["error"]),
    ("kernels", &["task", "error", "rng", "limits"]),
    (
        "backend",
        &["task", "error", "rng", "fs", "limits", "kernels"],
    ),
    ("data", &["task", "error", "rng", "fs", "limits"]),
    ("optim", &["task", "error", "limits"]),
    ("metrics", &["task", "error", "rng", "limits"]),
    (
        "graph",
        &["task", "error", "rng", "limits", "kernels", "optim"],
    ),
    (
        "plan",
        &[
            "task", "error", "rng", "limits", "kernels", "backend", "optim", "graph",
        ],
    ),
    (
        "nn",
        &[
            "task", "error", "rng", "limits", "kernels", "backend", "optim", "graph",
        ],
    ),
    (
        "session",
        &[
            "task", "error", "rng", "fs", "limits", "kernels", "backend", "optim", "graph", "plan",
            "nn", "data",
        ],
    ),
    (
        "train",
        &[
            "task", "error", "rng", "fs", "limits", "kernels", "backend", "optim", "graph", "plan",
            "nn", "data", "session", "metrics",
        ],
    ),
    (
        "app",
        &[
            "task", "error", "rng", "fs", "limits", "kernels", "backend", "optim", "graph", "plan",
            "nn", "data", "session", "train", "metrics",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a source file: `src/plan/lower.rs` → ["plan", "lower"].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The source with `//` comments blanked (line breaks kept, so offsets map to lines).
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifier segments of a path starting at `s` (`a::b::c` → [a, b, c]), with a
/// brace group expanded (`a::{b::c, d}` → [a, b, c] and [a, d]).
fn expand(s: &str) -> Vec<Vec<String>> {
    let s = s.trim_start();
    if let Some(body) = s.strip_prefix('{') {
        // Split the group at top-level commas, up to its closing brace.
        let (mut depth, mut start, mut out) = (0usize, 0usize, vec![]);
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.extend(expand(&body[start..i]));
                    return out;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(expand(&body[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        return out;
    }
    let ident: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if ident.is_empty() {
        return vec![];
    }
    let rest = &s[ident.len()..];
    match rest.trim_start().strip_prefix("::") {
        Some(more) => {
            let tails = expand(more);
            if tails.is_empty() {
                vec![vec![ident]]
            } else {
                tails
                    .into_iter()
                    .map(|t| std::iter::once(ident.clone()).chain(t).collect())
                    .collect()
            }
        }
        None => vec![vec![ident]],
    }
}

/// Every path after `prefix` (`crate::`, `super::`) in `code`, with its line number.
fn paths_after(code: &str, prefix: &str) -> Vec<(usize, Vec<String>)> {
    let mut v = vec![];
    let mut from = 0;
    while let Some(i) = code[from..].find(prefix) {
        let at = from + i;
        let word_start = at == 0 || {
            let c = code[..at].chars().next_back().unwrap();
            !(c.is_alphanumeric() || c == '_' || c == ':')
        };
        if word_start {
            let line = code[..at].matches('\n').count() + 1;
            for p in expand(&code[at + prefix.len()..]) {
                v.push((line, p));
            }
        }
        from = at + prefix.len();
    }
    v
}

/// The file a module path names: the longest prefix that is a module file.
fn file_of(files: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains_key(p))
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut bad = vec![];
    for f in &files {
        let m = module_of(&src, f);
        let Some(top) = m.first() else { continue };
        if top == "bin" {
            continue;
        }
        let Some(ok) = allowed.get(top.as_str()) else {
            bad.push(format!(
                "{}: module `{top}` is not in the layer list",
                f.display()
            ));
            continue;
        };
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        for (n, p) in paths_after(&code, "crate::") {
            {
                let Some(used) = p.first() else { continue };
                // The crate root re-exports `Error` and `Result` from `error`.
                let used = match used.as_str() {
                    "Error" | "Result" => "error",
                    other => other,
                };
                if used != top && !ok.contains(&used) {
                    bad.push(format!(
                        "{}:{}: `{top}` uses `crate::{}`, a layer above it or beside it",
                        f.display(),
                        n,
                        p.join("::")
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "upward imports:\n{}", bad.join("\n"));
}

#[test]
fn no_import_cycle_between_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut list = vec![];
    rust_files(&src, &mut list);
    let files: BTreeMap<Vec<String>, PathBuf> = list
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    // Edges from each file to the files it names by `crate::` or `super::` paths; a
    // child's uses of its own parent module are left out (the parent declares the child).
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, f) in &files {
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        // `super` of src/a/b.rs and of src/a/b/mod.rs is module a.
        let parent: Vec<String> = m[..m.len().saturating_sub(1)].to_vec();
        let mut targets: Vec<Vec<String>> = paths_after(&code, "crate::")
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        for (_, p) in paths_after(&code, "super::") {
            // `super::super::x` climbs one more level per `super`.
            let ups = p.iter().take_while(|s| *s == "super").count();
            let base = &parent[..parent.len().saturating_sub(ups)];
            targets.push(
                base.iter()
                    .cloned()
                    .chain(p.into_iter().skip(ups))
                    .collect(),
            );
        }
        {
            for t in targets {
                if let Some(to) = file_of(&files, &t)
                    && &to != m
                    && !m.starts_with(&to)
                {
                    edges.entry(m.clone()).or_default().insert(to);
                }
            }
        }
    }
    // A cycle is an edge a → b with a path b → … → a.
    let reaches = |from: &Vec<String>, to: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(x) = stack.pop() {
            if &x == to {
                return true;
            }
            if seen.insert(x.clone()) {
                stack.extend(edges.get(&x).into_iter().flatten().cloned());
            }
        }
        false
    };
    let mut cycles = vec![];
    for (a, bs) in &edges {
        for b in bs {
            if reaches(b, a) {
                cycles.push(format!(
                    "{} -> {} -> … -> {}",
                    a.join("::"),
                    b.join("::"),
                    a.join("::")
                ));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles between files:\n{}",
        cycles.join("\n")
    );
}
