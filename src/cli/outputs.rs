//! `armada outputs RUN [--format csv|jsonl] [--output FILE]`: every output row of a run, oldest
//! first, read page by page from `GET /api/outputs?run_uuid=`.
//!
//! The CSV is the dashboard's download (`static/js/outputs.js`, `toCsv`), byte for byte: the
//! columns are the keys of the rows' `data` objects in first-seen order (a `data` that is not an
//! object is one `data` column), then `job_uuid`, `timestamp`, `output_uuid` (unless a `data`
//! key already has that name); values that are not strings are written as JSON; cells with a
//! quote, comma, line break or edge whitespace are quoted; lines end with CRLF. JSON Lines: one
//! output record per line, as the API returns it.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::client::{ApiClient, ServerArgs};
use crate::settings::LogFormat;

/// Rows per request (the API's maximum).
const PAGE_SIZE: u64 = 100;
/// The columns after the `data` keys.
const META: [&str; 3] = ["job_uuid", "timestamp", "output_uuid"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Csv,
    Jsonl,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    /// The run's id.
    run_id: Uuid,
    #[command(flatten)]
    server: ServerArgs,
    /// csv (the dashboard's CSV download) or jsonl (one output record per line).
    #[arg(long, value_enum, default_value_t = OutputFormat::Csv)]
    format: OutputFormat,
    /// Write to this file instead of standard output (replaced only once every row is read).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Deserialize)]
struct OutputsPage {
    outputs: Vec<Value>,
    total: u64,
}

pub async fn run(args: OutputsArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    crate::observability::init_logging_at(log_format.unwrap_or_default(), "warn");
    let client = ApiClient::from_args(&args.server)?;
    let run_id = args.run_id;
    if client.get_optional::<Value>(&format!("/api/runs/{run_id}")).await?.is_none() {
        anyhow::bail!("run {run_id} not found on {}", client.base_url());
    }
    let outputs = fetch_all(&client, run_id).await?;
    let text = match args.format {
        OutputFormat::Csv => to_csv(&outputs),
        OutputFormat::Jsonl => to_jsonl(&outputs)?,
    };
    match &args.output {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).context("cannot write the outputs")?;
        }
        Some(path) => {
            write_file(path, text.as_bytes())?;
            eprintln!(
                "armada: wrote {} of run {run_id} to {}",
                super::display::plural(outputs.len() as u64, "output"),
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every page, newest first as the API serves them; rows seen twice (new ones pushed older ones
/// onto the next page meanwhile) kept once; then oldest first, as the dashboard sorts them.
async fn fetch_all(client: &ApiClient, run_id: Uuid) -> anyhow::Result<Vec<Value>> {
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for page in 1u64.. {
        let answer: OutputsPage =
            client.get(&format!("/api/outputs?run_uuid={run_id}&page={page}&page_size={PAGE_SIZE}")).await?;
        let count = answer.outputs.len() as u64;
        for row in answer.outputs {
            let id = row.get("output_uuid").and_then(Value::as_str).map(str::to_owned);
            if id.is_none_or(|id| seen.insert(id)) {
                rows.push(row);
            }
        }
        if count < PAGE_SIZE || page * PAGE_SIZE >= answer.total {
            break;
        }
    }
    rows.reverse();
    // ISO 8601 UTC strings of one format sort as times; stable, so equal times keep their order.
    rows.sort_by(|a, b| timestamp(a).cmp(timestamp(b)));
    Ok(rows)
}

fn timestamp(row: &Value) -> &str {
    row.get("timestamp").and_then(Value::as_str).unwrap_or_default()
}

fn to_jsonl(outputs: &[Value]) -> anyhow::Result<String> {
    let mut text = String::new();
    for row in outputs {
        text.push_str(&serde_json::to_string(row).context("cannot write an output as JSON")?);
        text.push('\n');
    }
    Ok(text)
}

/// The dashboard's `toCsv`, rule for rule.
pub fn to_csv(outputs: &[Value]) -> String {
    let mut keys: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut plain = false;
    for row in outputs {
        match row.get("data") {
            Some(Value::Object(data)) => {
                for key in data.keys() {
                    if seen.insert(key.clone()) {
                        keys.push(key.clone());
                    }
                }
            }
            _ => plain = true,
        }
    }
    if plain && !seen.contains("data") {
        keys.push("data".to_owned());
    }
    let meta: Vec<&str> = META.into_iter().filter(|m| !seen.contains(*m)).collect();
    let mut lines: Vec<String> = Vec::with_capacity(outputs.len() + 1);
    let header: Vec<String> =
        keys.iter().map(String::as_str).chain(meta.iter().copied()).map(|c| quote(c.to_owned())).collect();
    lines.push(header.join(","));
    for row in outputs {
        let data = row.get("data");
        let object = data.and_then(Value::as_object);
        let mut cells: Vec<String> = keys
            .iter()
            .map(|key| match object {
                Some(object) => cell(object.get(key)),
                None if key == "data" => cell(data),
                None => String::new(),
            })
            .collect();
        cells.extend(meta.iter().map(|m| cell(row.get(*m))));
        lines.push(cells.join(","));
    }
    let mut text = lines.join("\r\n");
    text.push_str("\r\n");
    text
}

/// `null` and absent are empty; strings as they are; anything else as JSON.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => quote(text.clone()),
        Some(other) => quote(other.to_string()),
    }
}

/// Quoted when it holds `"`, `,`, CR or LF, or starts or ends with whitespace (`/[",\r\n]|^\s|\s$/`).
fn quote(text: String) -> String {
    let edge = |c: Option<char>| c.is_some_and(char::is_whitespace);
    if text.contains(['"', ',', '\r', '\n']) || edge(text.chars().next()) || edge(text.chars().next_back()) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Writes beside the target, then renames: a half-written file never takes the place of a whole one.
fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let mut file =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("cannot write in {}", dir.display()))?;
    file.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    file.persist(path).map_err(|e| e.error).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn output(id: &str, time: &str, data: Value) -> Value {
        json!({"output_uuid": id, "run_uuid": "r", "job_uuid": null, "data": data, "timestamp": time})
    }

    #[test]
    fn csv_columns_are_the_data_keys_in_first_seen_order_then_the_record_fields() {
        let rows = [
            output("o1", "t1", json!({"kind": "agent_init", "agent": 0})),
            output("o2", "t2", json!({"kind": "job", "name": "ada", "details": {"tags": ["a", "b"]}, "agent": 1})),
        ];
        assert_eq!(
            to_csv(&rows),
            "kind,agent,name,details,job_uuid,timestamp,output_uuid\r\n\
             agent_init,0,,,,t1,o1\r\n\
             job,1,ada,\"{\"\"tags\"\":[\"\"a\"\",\"\"b\"\"]}\",,t2,o2\r\n"
        );
    }

    #[test]
    fn csv_quotes_like_the_dashboard_and_keeps_plain_data_in_one_column() {
        let rows = [
            output("o1", "t1", json!({"text": " padded", "note": "a,b", "ok": true, "none": null})),
            output("o2", "t2", json!("just text")),
            output("o3", "t3", json!({"timestamp": "mine"})),
        ];
        assert_eq!(
            to_csv(&rows),
            "text,note,ok,none,timestamp,data,job_uuid,output_uuid\r\n\
             \" padded\",\"a,b\",true,,,,,o1\r\n\
             ,,,,,just text,,o2\r\n\
             ,,,,mine,,,o3\r\n"
        );
    }

    #[test]
    fn jsonl_is_one_record_per_line() {
        let rows = [output("o1", "t1", json!({"a": 1})), output("o2", "t2", json!([1]))];
        let text = to_jsonl(&rows).expect("json");
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(lines, rows);
    }
}
