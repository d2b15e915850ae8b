//! SQL Server's limits on one statement, and the arithmetic that keeps every statement inside
//! them: rows per multi-row `INSERT`, chunks of a batch, and page windows.

use std::collections::HashSet;
use std::hash::Hash;
use std::ops::Range;

use crate::model::PageRequest;

/// SQL Server refuses a request with more than 2,100 parameters.
pub(super) const SERVER_PARAMETER_LIMIT: usize = 2100;
/// What one statement may bind: parameterised statements travel through `sp_executesql`, which
/// spends two of the 2,100 on the statement text and its declarations; the rest is headroom.
pub(super) const MAX_PARAMS: usize = SERVER_PARAMETER_LIMIT - 100;
/// A table value constructor (`VALUES (…), (…)`) takes at most 1,000 rows.
pub(super) const MAX_ROWS: usize = 1000;

/// Rows of `params_per_row` parameters one statement may carry.
pub(super) fn rows_per_statement(params_per_row: usize) -> usize {
    (MAX_PARAMS / params_per_row.max(1)).clamp(1, MAX_ROWS)
}

/// Splits rows (given by their keys, in batch order) into consecutive chunks of at most
/// [`rows_per_statement`] rows in which no key repeats. A repeated key starts a new chunk, so
/// the later row finds the earlier one stored, exactly as applying the rows one by one would.
pub(super) fn chunks<K: Eq + Hash>(keys: &[K], params_per_row: usize) -> Vec<Range<usize>> {
    let max_rows = rows_per_statement(params_per_row);
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut seen = HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        if i - start == max_rows || !seen.insert(key) {
            chunks.push(start..i);
            start = i;
            seen.clear();
            seen.insert(key);
        }
    }
    if start < keys.len() {
        chunks.push(start..keys.len());
    }
    chunks
}

/// `OFFSET` and `FETCH NEXT` of a page (both as SQL Server's `BIGINT`).
pub(super) fn page_window(page: PageRequest) -> (i64, i64) {
    let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
    (offset, i64::from(page.page_size.max(1)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn rows_per_statement_respects_both_limits() {
        assert_eq!(rows_per_statement(1), 1000, "the VALUES limit");
        assert_eq!(rows_per_statement(2), 1000);
        assert_eq!(rows_per_statement(4), 500);
        assert_eq!(rows_per_statement(6), 333);
        assert_eq!(rows_per_statement(7), 285);
        assert_eq!(rows_per_statement(2001), 1, "a row always fits on its own");
        for per_row in 1..=200 {
            let rows = rows_per_statement(per_row);
            assert!(rows * per_row <= SERVER_PARAMETER_LIMIT - 2, "{per_row} per row");
            assert!(rows <= MAX_ROWS);
        }
    }

    #[test]
    fn a_repeated_key_starts_a_new_chunk() {
        assert_eq!(chunks(&[1, 2, 1, 3, 3], 6), vec![0..2, 2..4, 4..5]);
        assert_eq!(chunks::<u8>(&[], 6), Vec::<Range<usize>>::new());
    }

    #[test]
    fn large_batches_are_cut_at_the_parameter_limit() {
        let keys: Vec<u32> = (0..1000).collect();
        assert_eq!(chunks(&keys, 6), vec![0..333, 333..666, 666..999, 999..1000]);
        assert_eq!(chunks(&keys, 4), vec![0..500, 500..1000]);
    }

    #[test]
    fn page_windows() {
        assert_eq!(page_window(PageRequest { page: 1, page_size: 5 }), (0, 5));
        assert_eq!(page_window(PageRequest { page: 3, page_size: 100 }), (200, 100));
        let last = page_window(PageRequest { page: u32::MAX, page_size: 100 });
        assert_eq!(last, ((i64::from(u32::MAX) - 1) * 100, 100), "no overflow");
    }

    proptest! {
        /// Every row is placed exactly once, in order; no chunk exceeds the limits or repeats a key.
        #[test]
        fn chunks_cover_every_row_once_within_the_limits(
            keys in prop::collection::vec(0u16..400, 0..3000),
            per_row in 1usize..12,
        ) {
            let chunks = chunks(&keys, per_row);
            let mut next = 0;
            for chunk in &chunks {
                prop_assert_eq!(chunk.start, next);
                prop_assert!(!chunk.is_empty());
                prop_assert!(chunk.len() <= MAX_ROWS);
                prop_assert!(chunk.len() * per_row <= MAX_PARAMS);
                let distinct: HashSet<_> = keys[chunk.clone()].iter().collect();
                prop_assert_eq!(distinct.len(), chunk.len());
                next = chunk.end;
            }
            prop_assert_eq!(next, keys.len());
        }
    }
}
