//! The original's bulk CSV files, read and validated whole before anything is stored:
//! `proxy_url,proxy_provider_name,proxy_type,proxy_rotation_strategy,proxy_location` and
//! `antibot_vendor,website,data,collecting_date`.
//!
//! Rules: the header names the columns (any order, ASCII case ignored; the key column —
//! `proxy_url`, `data` — is required, the others optional; an unknown column is an error, so a
//! file given to the wrong command is refused). Cells are trimmed; an empty optional cell is
//! "unknown". JSON cells may be unquoted when they hold no comma (`{"fingerprint":"x"}`), as
//! the original's templates are written. Rows are the line numbers an editor shows (the header
//! is row 1). Every bad row is reported, naming its row and column; one bad row refuses the
//! whole file.

use std::fmt;

use chrono::NaiveTime;
use csv::StringRecord;

use super::{TEMPLATE_PLACEHOLDER_URL, mask_proxy_url};
use crate::infra::db::{NewFingerprint, NewProxy};
use crate::model::Timestamp;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// Problems listed in full; more are counted.
const LISTED_PROBLEMS: usize = 20;
const PROXY_SCHEMES: [&str; 4] = ["http", "https", "socks5", "socks5h"];

/// The valid rows of a file, and the rows skipped as the template's placeholder example.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportFile<T> {
    pub rows: Vec<T>,
    /// Row numbers of placeholder rows (the proxies template's `http://USER:PASS@HOST:PORT`).
    pub placeholder_rows: Vec<usize>,
}

/// One reason a file is refused: where (row, column) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct RowProblem {
    /// 1 = the header line.
    pub row: usize,
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "row {}, column {column}: {}", self.row, self.message),
            None => write!(f, "row {}: {}", self.row, self.message),
        }
    }
}

/// The file is refused: nothing of it may be stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ImportError {
    pub file: String,
    pub problems: Vec<RowProblem>,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.problems.as_slice() {
            return write!(f, "{} {only}; nothing was imported", self.file);
        }
        write!(f, "{}: {} problems, nothing was imported:", self.file, self.problems.len())?;
        for problem in self.problems.iter().take(LISTED_PROBLEMS) {
            write!(f, "\n  {problem}")?;
        }
        if self.problems.len() > LISTED_PROBLEMS {
            write!(f, "\n  … and {} more", self.problems.len() - LISTED_PROBLEMS)?;
        }
        Ok(())
    }
}

/// Parses a proxies file (`armada_proxies_template.csv`'s columns).
pub fn parse_proxies(file: &str, bytes: &[u8]) -> Result<ImportFile<NewProxy>, ImportError> {
    parse(
        file,
        bytes,
        &["proxy_url", "proxy_provider_name", "proxy_type", "proxy_rotation_strategy", "proxy_location"],
        |row, cells| {
            let url = cells[0].unwrap_or_default();
            if url.eq_ignore_ascii_case(TEMPLATE_PLACEHOLDER_URL) {
                return Ok(None);
            }
            check_proxy_url(url).map_err(|message| vec![problem(row, "proxy_url", message)])?;
            Ok(Some(NewProxy {
                proxy_url: url.to_string(),
                proxy_provider_name: text(cells[1]),
                proxy_type: text(cells[2]),
                proxy_rotation_strategy: text(cells[3]),
                proxy_location: text(cells[4]),
            }))
        },
    )
}

/// Parses a fingerprints file (`armada_fingerprints_template.csv`'s columns).
pub fn parse_fingerprints(file: &str, bytes: &[u8]) -> Result<ImportFile<NewFingerprint>, ImportError> {
    parse(file, bytes, &["data", "antibot_vendor", "website", "collecting_date"], |row, cells| {
        let mut problems = Vec::new();
        let data = match cells[0].unwrap_or_default() {
            "" => {
                problems.push(problem(row, "data", "empty; the fingerprint's JSON is required".into()));
                None
            }
            raw => serde_json::from_str::<serde_json::Value>(raw)
                .map_err(|e| problems.push(problem(row, "data", format!("not valid JSON ({e})"))))
                .ok(),
        };
        let collecting_date = text(cells[3]).and_then(|raw| {
            collection_day(&raw).map_err(|message| problems.push(problem(row, "collecting_date", message))).ok()
        });
        match (data, problems.is_empty()) {
            (Some(data), true) => Ok(Some(NewFingerprint {
                antibot_vendor: text(cells[1]),
                website: text(cells[2]),
                data,
                collecting_date,
            })),
            _ => Err(problems),
        }
    })
}

/// A row's cells in the order of `columns` (`None` where the file has no such column).
type Cells<'a> = [Option<&'a str>];

/// Reads the header, then every row through `parse_row` (`Ok(None)` = a placeholder row to
/// skip). `columns[0]` is the required key column.
fn parse<T>(
    file: &str,
    bytes: &[u8],
    columns: &[&str],
    parse_row: impl Fn(usize, &Cells<'_>) -> Result<Option<T>, Vec<RowProblem>>,
) -> Result<ImportFile<T>, ImportError> {
    let refuse = |problems: Vec<RowProblem>| ImportError { file: file.to_string(), problems };
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut records = reader.records();
    let header = match records.next() {
        None => return Err(refuse(vec![RowProblem { row: 1, column: None, message: empty_file(columns) }])),
        Some(Err(e)) => return Err(refuse(vec![csv_problem(&e)])),
        Some(Ok(header)) => header,
    };
    let positions = header_positions(&header, columns).map_err(|p| refuse(vec![p]))?;
    let names: Vec<String> = header.iter().map(|n| n.trim().to_string()).collect();
    let mut parsed = ImportFile { rows: Vec::new(), placeholder_rows: Vec::new() };
    let mut problems = Vec::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                problems.push(csv_problem(&e));
                continue;
            }
        };
        let row = record.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
        if record.len() != header.len() {
            problems.push(RowProblem { row, column: None, message: cell_count(&record, &names) });
            continue;
        }
        let cells: Vec<Option<&str>> = positions.iter().map(|p| p.and_then(|i| record.get(i)).map(str::trim)).collect();
        match parse_row(row, &cells) {
            Ok(Some(value)) => parsed.rows.push(value),
            Ok(None) => parsed.placeholder_rows.push(row),
            Err(mut row_problems) => problems.append(&mut row_problems),
        }
    }
    if problems.is_empty() { Ok(parsed) } else { Err(refuse(problems)) }
}

fn empty_file(columns: &[&str]) -> String {
    format!("the file is empty; expected a header row naming the columns ({})", columns.join(","))
}

/// Where each expected column sits in the file.
fn header_positions(header: &StringRecord, columns: &[&str]) -> Result<Vec<Option<usize>>, RowProblem> {
    let names: Vec<String> = header.iter().map(|n| n.trim().to_ascii_lowercase()).collect();
    let header_problem = |message: String| RowProblem { row: 1, column: None, message };
    if let Some(unknown) = names.iter().find(|n| !columns.contains(&n.as_str())) {
        return Err(header_problem(format!(
            "unknown column {unknown:?} in the header; the columns are {}",
            columns.join(",")
        )));
    }
    if let Some(twice) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)).map(|(_, n)| n) {
        return Err(header_problem(format!("column {twice:?} appears twice in the header")));
    }
    if !names.iter().any(|n| n == columns[0]) {
        return Err(header_problem(format!("the header has no {} column; expected {}", columns[0], columns.join(","))));
    }
    Ok(columns.iter().map(|c| names.iter().position(|n| n == c)).collect())
}

fn csv_problem(error: &csv::Error) -> RowProblem {
    let row = error.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
    let message = match error.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8; save the file as UTF-8".to_string(),
        _ => format!("unreadable CSV ({error})"),
    };
    RowProblem { row, column: None, message }
}

fn cell_count(record: &StringRecord, header: &[String]) -> String {
    let mut message = format!("{} cells, header has {} ({})", record.len(), header.len(), header.join(","));
    let split_json = record.iter().map(str::trim).any(|c| c.starts_with('{') && !c.ends_with('}'));
    if record.len() > header.len() && split_json {
        message.push_str("; a JSON cell containing commas must be quoted, e.g. \"{\"\"a\"\":1,\"\"b\"\":2}\"");
    }
    message
}

fn problem(row: usize, column: &str, message: String) -> RowProblem {
    RowProblem { row, column: Some(column.to_string()), message }
}

fn text(cell: Option<&str>) -> Option<String> {
    cell.filter(|c| !c.is_empty()).map(String::from)
}

/// A URL with a proxy scheme and a host. The message masks the password it may hold.
fn check_proxy_url(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("empty; every proxy needs its URL (http://user:password@host:port)".into());
    }
    let shown = mask_proxy_url(raw);
    let url = reqwest::Url::parse(raw)
        .map_err(|e| format!("{shown:?} is not a URL ({e}); expected scheme://[user:password@]host:port"))?;
    if !PROXY_SCHEMES.contains(&url.scheme()) {
        return Err(format!(
            "{shown:?} has the scheme {:?}; expected one of {}",
            url.scheme(),
            PROXY_SCHEMES.join(", ")
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} has no host; expected scheme://[user:password@]host:port"));
    }
    Ok(())
}

/// `2026-02-24` or `2026-02-24 10:30:00` (or ISO 8601): the day, at 00:00 UTC.
fn collection_day(raw: &str) -> Result<Timestamp, String> {
    let at = Timestamp::parse(raw)
        .map_err(|_| format!("{raw:?} is not a date; expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"))?;
    let day = at.as_datetime().date_naive().and_time(NaiveTime::MIN).and_utc();
    Ok(Timestamp::from_micros(day.timestamp_micros()))
}

#[cfg(test)]
mod tests;
