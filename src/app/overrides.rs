//! Fields of a run config overridden by dotted key (`regularizer.lambda`): `--set` on the
//! command line, and every trial of a sweep.

use std::path::Path;

use super::config::{RunConfig, bad};
use crate::error::{Error, Result};

/// Set `key` (dotted path, e.g. `regularizer.lambda`) in a TOML table to `value`, creating
/// tables on the way; the result is then parsed as a [`RunConfig`], so that a sweep can
/// vary any field and a wrong key is reported by the same checks as a config file.
///
/// `what` names the source in errors (`--set`, `sweep parameter`).
pub fn set_path(
    root: &mut toml::Table,
    key: &str,
    value: toml::Value,
    what: &'static str,
) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut t = root;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(bad(
                what,
                format!("{key:?}"),
                "a dotted key such as regularizer.lambda",
            ));
        }
        if i + 1 == parts.len() {
            t.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = t
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry.as_table_mut().ok_or_else(|| {
            bad(
                what,
                format!("{key:?}"),
                "a path through tables (a prefix is not a table)",
            )
        })?;
    }
    Ok(())
}

/// The path-valued keys of a run config.
const PATH_KEYS: [&str; 4] = [
    "data.dir",
    "data.csv.path",
    "data.csv.target_file",
    "model.weights",
];

/// Read the config file at `path` with each `KEY=VALUE` of `set` applied (the value in
/// TOML; a bare word is a string), then parse and check it as a [`RunConfig`].
pub fn load_with_overrides(path: &Path, set: &[String]) -> Result<RunConfig> {
    let text = crate::fs::read_text(path, crate::fs::MAX_TEXT_BYTES)?;
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    for kv in set {
        let (k, v) = kv.split_once('=').ok_or_else(|| Error::Hyperparameter {
            name: "--set",
            value: kv.clone(),
            expected: "KEY=VALUE",
        })?;
        // One TOML value on one line (a line break would smuggle in more keys); a bare
        // word is a string.
        if kv.chars().any(char::is_control) {
            return Err(Error::Hyperparameter {
                name: "--set",
                value: format!("{kv:?}"),
                expected: "KEY=VALUE on one line, without control characters",
            });
        }
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {v}"))
            .ok()
            .filter(|t| t.len() == 1)
            .and_then(|t| t.get("v").cloned())
            .unwrap_or_else(|| toml::Value::String(v.to_string()));
        // A path given on the command line is relative to the working directory, not to
        // the config file: made absolute before the file's own paths are resolved.
        let value = match value {
            toml::Value::String(s) if PATH_KEYS.contains(&k.trim()) => {
                let p = std::path::Path::new(&s);
                toml::Value::String(
                    std::path::absolute(p)
                        .unwrap_or_else(|_| p.to_path_buf())
                        .display()
                        .to_string(),
                )
            }
            v => v,
        };
        set_path(&mut table, k.trim(), value, "--set")?;
    }
    let merged = toml::to_string(&table).unwrap_or_default();
    match RunConfig::from_toml(&merged, path) {
        // The merged text is no file the user has: when the file alone parses, the error
        // is the overrides', named as such (without the merged text's line numbers).
        Err(Error::Config { msg, .. })
            if !set.is_empty() && toml::from_str::<RunConfig>(&text).is_ok() =>
        {
            let first = msg
                .lines()
                .find(|l| !l.trim().is_empty() && !l.contains("TOML parse error"))
                .unwrap_or(&msg)
                .trim();
            let detail = msg
                .lines()
                .rev()
                .find(|l| {
                    !l.trim().is_empty()
                        && !l.trim_start().starts_with('|')
                        && !l.trim_start().starts_with('^')
                })
                .unwrap_or(first)
                .trim();
            Err(Error::Config {
                path: path.to_path_buf(),
                msg: format!("with --set {}: {detail}", set.join(" --set ")),
            })
        }
        r => r,
    }
}
