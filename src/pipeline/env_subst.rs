//! `$env_` placeholders: the tune file (`config_local.json` / `config_distant.json`) and substitution.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::NamedBytes;
use super::error::{PipelineError, kind};

/// A JSON string value starting with this prefix is replaced by the tune value named by the rest.
pub const ENV_PREFIX: &str = "$env_";

/// The parsed tune file: placeholder name → the JSON value that replaces it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tune {
    /// Display path of the tune file, named in "unknown placeholder" errors.
    pub name: String,
    pub values: Map<String, Value>,
}

/// Where a value being substituted sits, so an error can name it: the file, the CSV row if
/// any, and the field (CSV column or JSON path) that the value's own JSON path is appended to.
#[derive(Debug, Clone, Copy)]
pub struct ErrorContext<'a> {
    pub file: &'a str,
    pub row: Option<usize>,
    pub field: Option<&'a str>,
}

impl<'a> ErrorContext<'a> {
    /// A whole JSON document: errors name the path from its root.
    pub fn document(file: &'a str) -> Self {
        Self { file, row: None, field: None }
    }

    /// One CSV cell: errors name the row and the column (plus the path inside the cell).
    pub fn cell(file: &'a str, row: usize, column: &'a str) -> Self {
        Self { file, row: Some(row), field: Some(column) }
    }
}

/// Parses a tune file: a JSON object of name → value, or the wrapped form `{"tune": {…}}`
/// (a top-level object whose only key is `tune`, holding an object).
pub fn parse_tune(file: NamedBytes) -> Result<Tune, PipelineError> {
    let values = match file.parse_json()? {
        Value::Object(map) => unwrap_tune(map),
        other => {
            return Err(PipelineError::new(
                file.name,
                format!(
                    "must be a JSON object of placeholder name → value \
                     (e.g. {{\"SCREEN_VISIBLE\": 0}}), got {}",
                    kind(&other)
                ),
            ));
        }
    };
    Ok(Tune { name: file.name.to_owned(), values })
}

/// The object under `tune` when it is the only key and holds an object, else `map` itself.
fn unwrap_tune(mut map: Map<String, Value>) -> Map<String, Value> {
    if map.len() == 1
        && let Some(Value::Object(inner)) = map.get_mut("tune")
    {
        return std::mem::take(inner);
    }
    map
}

/// Replaces, recursively through objects and arrays, every string value starting with
/// `$env_` by the tune value under the rest of the name, keeping that value's JSON type.
/// Substituted values are inserted as they are and not scanned again, so a tune value can
/// never expand into itself. Object keys are never substituted.
pub fn substitute_env(value: &mut Value, tune: Option<&Tune>, ctx: &ErrorContext) -> Result<(), PipelineError> {
    substitute(value, tune).map_err(|unknown| unknown.into_error(tune, ctx))
}

/// One step of a JSON path, collected innermost first while an error unwinds.
enum Step {
    Key(String),
    Index(usize),
}

struct UnknownPlaceholder {
    name: String,
    path_reversed: Vec<Step>,
}

impl UnknownPlaceholder {
    fn within(mut self, step: Step) -> Self {
        self.path_reversed.push(step);
        self
    }

    fn into_error(self, tune: Option<&Tune>, ctx: &ErrorContext) -> PipelineError {
        let why = match tune {
            Some(tune) => format!("no such key in {}", tune.name),
            None => format!(
                "no tune file was given; supply config/config_local.json or \
                 config/config_distant.json with the key {}",
                self.name
            ),
        };
        let mut error = PipelineError::new(ctx.file, format!("unknown placeholder {ENV_PREFIX}{} ({why})", self.name));
        if let Some(row) = ctx.row {
            error = error.at_row(row);
        }
        let path = json_path(ctx.field, self.path_reversed);
        if !path.is_empty() {
            error = error.at_field(path);
        }
        error
    }
}

/// `prefix.key[2].inner`, built from steps collected innermost first.
fn json_path(prefix: Option<&str>, steps_reversed: Vec<Step>) -> String {
    let mut path = prefix.unwrap_or_default().to_owned();
    for step in steps_reversed.into_iter().rev() {
        match step {
            Step::Key(key) if path.is_empty() => path = key,
            Step::Key(key) => {
                path.push('.');
                path.push_str(&key);
            }
            Step::Index(index) => {
                // Writing to a String cannot fail.
                let _ = write!(path, "[{index}]");
            }
        }
    }
    path
}

// Recursion depth is bounded by serde_json's nesting limit (128) for any parsed document.
fn substitute(value: &mut Value, tune: Option<&Tune>) -> Result<(), UnknownPlaceholder> {
    match value {
        Value::String(text) => {
            if let Some(name) = text.strip_prefix(ENV_PREFIX) {
                let replacement = tune
                    .and_then(|tune| tune.values.get(name))
                    .ok_or_else(|| UnknownPlaceholder { name: name.to_owned(), path_reversed: Vec::new() })?;
                *value = replacement.clone();
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                substitute(item, tune).map_err(|unknown| unknown.within(Step::Index(index)))?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                substitute(item, tune).map_err(|unknown| unknown.within(Step::Key(key.clone())))?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests;
