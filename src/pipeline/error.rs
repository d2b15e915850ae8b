//! `PipelineError`: what went wrong in a project's config, and exactly where (file, row, field).

use std::fmt;

use serde_json::Value;

/// A configuration error a person can act on: every error names the file, and the row and
/// field when they apply. Displayed as
/// `config/data_job.csv row 7, field payload: invalid JSON (expected `,` or `}` at line 1 column 12)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PipelineError {
    /// Display path of the file, e.g. `config/data_job.csv`.
    pub file: String,
    /// 1-based row (line) in a CSV file; the header is row 1, so the first data row is row 2.
    pub row: Option<usize>,
    /// A CSV column name, or a JSON path such as `default_agent_message.config_proxy.verify_ip`.
    pub field: Option<String>,
    /// What is wrong and, where useful, what to do about it.
    pub message: String,
}

impl PipelineError {
    /// An error about `file` as a whole.
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self { file: file.into(), row: None, field: None, message: message.into() }
    }

    /// A JSON syntax error in `file`; serde_json's text names the line and column.
    pub(crate) fn invalid_json(file: impl Into<String>, error: &serde_json::Error) -> Self {
        Self::new(file, format!("invalid JSON ({error})"))
    }

    /// The same error, located at a 1-based row.
    #[must_use]
    pub fn at_row(mut self, row: usize) -> Self {
        self.row = Some(row);
        self
    }

    /// The same error, located at a field (column name or JSON path).
    #[must_use]
    pub fn at_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(row) = self.row {
            write!(f, " row {row}")?;
        }
        if let Some(field) = &self.field {
            let separator = if self.row.is_some() { "," } else { "" };
            write!(f, "{separator} field {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The kind of a JSON value with its article, for messages such as "got an array".
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short description of a JSON value for error messages: scalars as JSON text (long strings
/// cut), containers by kind, so a message never dumps a whole document.
pub(crate) fn describe(value: &Value) -> String {
    const MAX_CHARS: usize = 40;
    match value {
        Value::Array(_) | Value::Object(_) => kind(value).to_owned(),
        Value::String(text) if text.chars().count() > MAX_CHARS => {
            let cut: String = text.chars().take(MAX_CHARS).collect();
            format!("{:?}…", cut)
        }
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_names_file_row_and_field() {
        let error = PipelineError::new("config/data_job.csv", "invalid JSON (oops)").at_row(7).at_field("payload");
        assert_eq!(error.to_string(), "config/data_job.csv row 7, field payload: invalid JSON (oops)");
    }

    #[test]
    fn display_names_file_and_row_without_field() {
        let error =
            PipelineError::new("config/data_job.csv", "4 cells, header has 3 (account,message,payload)").at_row(7);
        assert_eq!(error.to_string(), "config/data_job.csv row 7: 4 cells, header has 3 (account,message,payload)");
    }

    #[test]
    fn display_names_file_and_field_without_row() {
        let error = PipelineError::new("config/config_template.json", "unknown placeholder $env_X")
            .at_field("default_agent_message.x");
        assert_eq!(
            error.to_string(),
            "config/config_template.json field default_agent_message.x: unknown placeholder $env_X"
        );
    }

    #[test]
    fn display_names_file_only() {
        let error = PipelineError::new("config/config_local.json", "must be a JSON object");
        assert_eq!(error.to_string(), "config/config_local.json: must be a JSON object");
    }

    #[test]
    fn describe_shows_scalars_and_names_containers() {
        assert_eq!(describe(&json!(2.5)), "2.5");
        assert_eq!(describe(&json!("abc")), "\"abc\"");
        assert_eq!(describe(&json!(true)), "true");
        assert_eq!(describe(&json!([1])), "an array");
        assert_eq!(describe(&json!({"a": 1})), "an object");
        assert_eq!(describe(&json!("x".repeat(50))), format!("\"{}\"…", "x".repeat(40)));
    }
}
