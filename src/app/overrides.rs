//! Fields of a run config overridden by dotted key (`regularizer.lambda`): `--set` on the
//! command line, and every trial of a sweep.

use super::config::bad;
use crate::error::Result;

/// Set `key` (dotted path, e.g. `regularizer.lambda`) in a TOML table to `value`, creating
/// tables on the way; the result is then parsed as a [`RunConfig`], so that a sweep can
/// vary any field and a wrong key is reported by the same checks as a config file.
pub fn set_path(root: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut t = root;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(bad(
                "sweep parameter",
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
                "sweep parameter",
                format!("{key:?}"),
                "a path through tables (a prefix is not a table)",
            )
        })?;
    }
    Ok(())
}
