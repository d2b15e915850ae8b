//! How the operator's commands write counts, durations, times and tables.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{Timestamp, status};

pub fn plural(count: u64, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

/// `20 jobs: 19 succeeded, 1 failed` (plus `, 2 cancelled` and `, 3 not finished` when there
/// are any): the line a run's summary and `armada runs` print.
pub fn jobs_line(counts: &BTreeMap<String, u64>, total: u64) -> String {
    let count = |s: &str| counts.get(s).copied().unwrap_or_default();
    let (succeeded, failed, cancelled) = (count(status::SUCCESS), count(status::FAILED), count(status::CANCELLED));
    let mut line = format!("{}: {succeeded} succeeded, {failed} failed", plural(total, "job"));
    if cancelled > 0 {
        line.push_str(&format!(", {cancelled} cancelled"));
    }
    let open = total.saturating_sub(succeeded + failed + cancelled);
    if open > 0 {
        line.push_str(&format!(", {open} not finished"));
    }
    line
}

/// `850ms`, `14.2s`, `3m 05s`, `2h 07m`.
pub fn duration(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    match secs {
        0 if elapsed.is_zero() => "0s".to_owned(),
        0 => format!("{}ms", elapsed.as_millis()),
        1..60 => format!("{:.1}s", elapsed.as_secs_f64()),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// The time between two server timestamps (zero when the clock went backwards).
pub fn between(start: Timestamp, end: Timestamp) -> Duration {
    Duration::from_micros(u64::try_from(end.as_micros() - start.as_micros()).unwrap_or_default())
}

/// `2026-02-24 10:30:00` (UTC, second precision).
pub fn utc(time: Timestamp) -> String {
    time.as_datetime().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| if i == last { (*cell).to_owned() } else { format!("{cell:<width$}", width = widths[i]) })
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text.push('\n');
        text.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_line_counts_outcomes_and_what_is_left() {
        let counts = BTreeMap::from([("Success".to_owned(), 19), ("Failed".to_owned(), 1)]);
        assert_eq!(jobs_line(&counts, 20), "20 jobs: 19 succeeded, 1 failed");
        let counts = BTreeMap::from([("Cancelled".to_owned(), 4), ("Success".to_owned(), 1)]);
        assert_eq!(jobs_line(&counts, 6), "6 jobs: 1 succeeded, 0 failed, 4 cancelled, 1 not finished");
        assert_eq!(jobs_line(&BTreeMap::new(), 1), "1 job: 0 succeeded, 0 failed, 1 not finished");
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(14_240)), "14.2s");
        assert_eq!(duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(duration(Duration::from_secs(7620)), "2h 07m");
    }

    #[test]
    fn table_pads_every_column_but_the_last() {
        let rows = vec![vec!["a".to_owned(), "long value".to_owned(), "x".to_owned()]];
        assert_eq!(table(&["ID", "V", "LAST"], &rows), "ID  V           LAST\na   long value  x");
    }
}
