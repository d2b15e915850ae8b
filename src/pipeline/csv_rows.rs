//! `data_agent.csv` / `data_job.csv`: rows of per-agent or per-job overrides, parsed into JSON maps.

use std::collections::HashMap;

use csv::ByteRecord;
use serde_json::{Map, Value};

use super::NamedBytes;
use super::env_subst::{ErrorContext, Tune, substitute_env};
use super::error::PipelineError;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Which messages a CSV file's rows override; decides the index key added to each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowTarget {
    /// `data_agent.csv`: row *i* overrides agent *i*.
    Agent,
    /// `data_job.csv`: row *i* overrides job *i*.
    Job,
}

impl RowTarget {
    /// The key holding the row's 0-based index, spelled as in the original.
    pub fn index_key(self) -> &'static str {
        match self {
            RowTarget::Agent => "targetted_agent",
            RowTarget::Job => "targetted_job",
        }
    }
}

/// Parses a CSV of overrides: the header row gives the keys, each later row one map. Cells
/// are trimmed; a cell shaped like a JSON object or array is parsed (with the strings
/// directly inside it that look like JSON, one level); other cells stay strings. `$env_`
/// placeholders in the parsed values are substituted from `tune`. Each map also gets
/// `targetted_agent` / `targetted_job` = its 0-based index. Fully blank lines are skipped;
/// an empty, whitespace-only or header-only file gives no rows.
///
/// Rows in errors are the line numbers a person sees in an editor (the header on line 1
/// is row 1); the tune is passed in so a bad placeholder can be located to its cell.
pub fn parse_csv_rows(
    file: NamedBytes,
    target: RowTarget,
    tune: Option<&Tune>,
) -> Result<Vec<Map<String, Value>>, PipelineError> {
    let bytes = file.bytes.strip_prefix(UTF8_BOM).unwrap_or(file.bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut record = ByteRecord::new();
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(csv_error(file.name, &error)),
        }
        let row = line_of(&record);
        let cells = decode_cells(&record, file.name, row, header.as_deref())?;
        if is_blank_line(&cells, &record, reader.position().byte(), bytes) {
            continue;
        }
        match &header {
            None => header = Some(parse_header(&cells, file.name, row)?),
            Some(names) => {
                let mut values = parse_row(&cells, names, file.name, row, tune)?;
                values.insert(target.index_key().to_owned(), Value::from(rows.len()));
                rows.push(values);
            }
        }
    }
    Ok(rows)
}

fn line_of(record: &ByteRecord) -> usize {
    record.position().map_or(0, line_number)
}

fn line_number(position: &csv::Position) -> usize {
    usize::try_from(position.line()).unwrap_or(usize::MAX)
}

fn csv_error(file: &str, error: &csv::Error) -> PipelineError {
    let result = PipelineError::new(file, format!("unreadable CSV ({error})"));
    match error.position() {
        Some(position) => result.at_row(line_number(position)),
        None => result,
    }
}

fn column_label(header: Option<&[String]>, index: usize) -> String {
    match header.and_then(|names| names.get(index)) {
        Some(name) => name.clone(),
        None => format!("column {}", index + 1),
    }
}

/// The record's cells as trimmed UTF-8 text.
fn decode_cells<'r>(
    record: &'r ByteRecord,
    file: &str,
    row: usize,
    header: Option<&[String]>,
) -> Result<Vec<&'r str>, PipelineError> {
    record
        .iter()
        .enumerate()
        .map(|(index, cell)| match std::str::from_utf8(cell) {
            Ok(text) => Ok(text.trim()),
            Err(error) => Err(PipelineError::new(
                file,
                format!(
                    "not valid UTF-8 (bad byte after {} valid bytes of the cell); \
                     save the file as UTF-8",
                    error.valid_up_to()
                ),
            )
            .at_row(row)
            .at_field(column_label(header, index))),
        })
        .collect()
}

/// A line holding nothing but whitespace. (The CSV reader already drops empty lines; a
/// one-column row written as `""` is a real empty cell, hence the look at the raw bytes.)
fn is_blank_line(cells: &[&str], record: &ByteRecord, end: u64, bytes: &[u8]) -> bool {
    if cells.len() != 1 || !cells[0].is_empty() {
        return false;
    }
    let start = record.position().map_or(0, |position| position.byte());
    let raw = usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(start, end)| bytes.get(start..end))
        .unwrap_or_default();
    !raw.contains(&b'"')
}

fn parse_header(cells: &[&str], file: &str, row: usize) -> Result<Vec<String>, PipelineError> {
    let mut first_column: HashMap<&str, usize> = HashMap::with_capacity(cells.len());
    for (index, name) in cells.iter().enumerate() {
        let column = index + 1;
        if name.is_empty() {
            return Err(PipelineError::new(file, "empty column name in the header row; give every column a name")
                .at_row(row)
                .at_field(format!("column {column}")));
        }
        if let Some(first) = first_column.insert(name, column) {
            return Err(PipelineError::new(
                file,
                format!(
                    "duplicate column name (columns {first} and {column}); \
                     each column needs its own name"
                ),
            )
            .at_row(row)
            .at_field(*name));
        }
    }
    Ok(cells.iter().map(|name| (*name).to_owned()).collect())
}

fn parse_row(
    cells: &[&str],
    header: &[String],
    file: &str,
    row: usize,
    tune: Option<&Tune>,
) -> Result<Map<String, Value>, PipelineError> {
    if cells.len() != header.len() {
        return Err(cell_count_error(cells, header, file, row));
    }
    let mut values = Map::with_capacity(header.len() + 1);
    for (cell, column) in cells.iter().zip(header) {
        let mut value = cell_value(cell, file, row, column)?;
        substitute_env(&mut value, tune, &ErrorContext::cell(file, row, column))?;
        values.insert(column.clone(), value);
    }
    Ok(values)
}

fn cell_count_error(cells: &[&str], header: &[String], file: &str, row: usize) -> PipelineError {
    let mut message = format!("{} cells, header has {} ({})", cells.len(), header.len(), header.join(","));
    let split_json = cells
        .iter()
        .any(|cell| (cell.starts_with('{') && !cell.ends_with('}')) || (cell.starts_with('[') && !cell.ends_with(']')));
    if cells.len() > header.len() && split_json {
        message.push_str("; a JSON cell containing commas must be quoted, e.g. \"{\"\"a\"\":1,\"\"b\"\":2}\"");
    }
    PipelineError::new(file, message).at_row(row)
}

/// Starts with `{` and ends with `}`, or `[` … `]`: such text must be valid JSON.
fn looks_like_json(text: &str) -> bool {
    (text.starts_with('{') && text.ends_with('}')) || (text.starts_with('[') && text.ends_with(']'))
}

fn parse_json_text(text: &str, file: &str, row: usize, field: impl FnOnce() -> String) -> Result<Value, PipelineError> {
    serde_json::from_str(text).map_err(|error| PipelineError::invalid_json(file, &error).at_row(row).at_field(field()))
}

fn cell_value(cell: &str, file: &str, row: usize, column: &str) -> Result<Value, PipelineError> {
    if !looks_like_json(cell) {
        return Ok(Value::String(cell.to_owned()));
    }
    let mut value = parse_json_text(cell, file, row, || column.to_owned())?;
    // One level only, as the original did: strings directly inside the cell's object or array.
    match &mut value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                parse_inner(inner, file, row, || format!("{column}.{key}"))?;
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter_mut().enumerate() {
                parse_inner(inner, file, row, || format!("{column}[{index}]"))?;
            }
        }
        _ => {}
    }
    Ok(value)
}

fn parse_inner(inner: &mut Value, file: &str, row: usize, field: impl FnOnce() -> String) -> Result<(), PipelineError> {
    if let Value::String(text) = inner
        && looks_like_json(text)
    {
        *inner = parse_json_text(text, file, row, field)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
