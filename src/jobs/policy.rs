//! When maintenance jobs start: pure decisions, separate from the code that starts the
//! jobs (`Db::after_commit`, `Db::after_publish`, the row-update path).

use super::record::JobState;

/// Retrain: a model with a policy of `every_events` is due when no run of it is
/// running and at least `every_events` events arrived since the watermark of its last
/// finished run (0 when none finished). `runs` are the model's records (state,
/// watermark).
pub(crate) fn retrain_due(
    events: u64,
    every_events: u64,
    runs: impl IntoIterator<Item = (JobState, u64)> + Clone,
) -> bool {
    if runs
        .clone()
        .into_iter()
        .any(|(s, _)| s == JobState::Running)
    {
        return false;
    }
    let last = runs
        .into_iter()
        .filter(|&(s, _)| s == JobState::Done)
        .map(|(_, w)| w)
        .max()
        .unwrap_or(0);
    events.saturating_sub(last) >= every_events
}

/// Delta operations after which a background `compact` job folds a version's delta
/// into a new version: 1 % of the rows, at least 1024 (an exact scan of 1024 rows × 64
/// dims is ≈ 20 µs next to ≈ 140 µs for an index query at 100k rows).
pub(crate) fn compact_threshold(rows: usize) -> usize {
    (rows / 100).max(1024)
}

/// Whether a version of `rows` rows whose delta holds `ops` operations is due for a
/// compaction.
pub(crate) fn compact_due(ops: u64, rows: usize) -> bool {
    ops >= compact_threshold(rows) as u64
}

/// Whether an index of `rows` rows, `placed` of them placed by carry-overs since k-means
/// ran, still has centroids that describe the table: up to a tenth of the rows.
pub(crate) fn centroids_fresh(placed: usize, rows: usize) -> bool {
    placed * 10 <= rows
}

/// What the index policy does for a table version just published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexBuild {
    /// No build: the version's carried-over index still serves, or the table is small.
    None,
    /// Build with the options of the table's last `index` job (it asked to be rebuilt on
    /// publish).
    Remembered,
    /// Build with the options the carried-over index was built with.
    AsCarried,
    /// Build with the default options (the table is large).
    Default,
}

/// The index policy after a publish. `carried`: the version came with an index carried
/// over by a compaction, as (rows placed since k-means, rows); `remembered`: the
/// table's last finished `index` job asked to be rebuilt on publish; `auto_index_rows`:
/// tables of at least that many rows get an index (0: never).
pub(crate) fn index_after_publish(
    carried: Option<(usize, usize)>,
    remembered: bool,
    rows: usize,
    auto_index_rows: usize,
) -> IndexBuild {
    match carried {
        Some((placed, n)) if centroids_fresh(placed, n) => IndexBuild::None,
        _ if remembered => IndexBuild::Remembered,
        Some(_) => IndexBuild::AsCarried,
        None if auto_index_rows > 0 && rows >= auto_index_rows => IndexBuild::Default,
        None => IndexBuild::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    #[test]
    fn retrain_counts_events_since_the_last_finished_run() {
        assert!(retrain_due(10, 10, []));
        assert!(!retrain_due(9, 10, []));
        assert!(!retrain_due(19, 10, [(Done, 10), (Failed, 15)]));
        assert!(retrain_due(20, 10, [(Done, 10), (Done, 5)]));
        // A failed run is not a run: the events since the last done one count.
        assert!(retrain_due(20, 10, [(Done, 5), (Failed, 19)]));
        // Never two runs at once.
        assert!(!retrain_due(100, 10, [(Done, 5), (Running, 90)]));
    }

    #[test]
    fn compaction_after_one_percent_of_the_rows_and_at_least_1024() {
        assert_eq!(compact_threshold(0), 1024);
        assert_eq!(compact_threshold(102_400), 1024);
        assert_eq!(compact_threshold(1_000_000), 10_000);
        assert!(!compact_due(1023, 10));
        assert!(compact_due(1024, 10));
        assert!(!compact_due(9_999, 1_000_000));
        assert!(compact_due(10_000, 1_000_000));
    }

    #[test]
    fn carried_index_is_rebuilt_past_a_tenth_of_placed_rows() {
        assert!(centroids_fresh(10, 100));
        assert!(!centroids_fresh(11, 100));
        let fresh = Some((10, 100));
        let stale = Some((11, 100));
        assert_eq!(index_after_publish(fresh, true, 100, 1), IndexBuild::None);
        assert_eq!(
            index_after_publish(stale, true, 100, 0),
            IndexBuild::Remembered
        );
        assert_eq!(
            index_after_publish(stale, false, 100, 0),
            IndexBuild::AsCarried
        );
    }

    #[test]
    fn large_tables_get_an_index_small_ones_do_not() {
        assert_eq!(
            index_after_publish(None, true, 5, 100),
            IndexBuild::Remembered
        );
        assert_eq!(index_after_publish(None, false, 99, 100), IndexBuild::None);
        assert_eq!(
            index_after_publish(None, false, 100, 100),
            IndexBuild::Default
        );
        // 0 switches the automatic index off.
        assert_eq!(
            index_after_publish(None, false, 1 << 30, 0),
            IndexBuild::None
        );
    }
}
