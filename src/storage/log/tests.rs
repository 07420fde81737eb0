use super::checked::CHECKED_MIN;
use super::*;
use crate::event::EventKind;
use crate::storage::backend::MemBackend;

fn ev(user: u32, item: u32, ts: i64, seq: u64) -> Event {
    Event {
        user,
        item,
        kind: EventKind::Rating,
        value: 4.0,
        timestamp: ts,
        group: u32::MAX,
        seq,
    }
}

fn commit_events(log: &mut Log, b: &MemBackend, evs: Vec<Event>, next_run: &mut u64) {
    let mut batch = WriteBatch::default();
    let up = log.plan_append(b, evs, next_run, &mut batch).unwrap();
    b.apply(batch).unwrap();
    log.install(up);
}

#[test]
fn histories_and_snapshots_match_a_naive_model_through_merges() {
    let b = MemBackend::default();
    let mut log = Log::default();
    let mut next_run = 0;
    let mut all = Vec::new();
    let mut seq = 0;
    for commit in 0..40u32 {
        let mut evs = Vec::new();
        for j in 0..(1 + commit % 7) * 13 {
            let user = (j * 7 + commit * 3) % 150;
            evs.push(ev(
                user,
                j + commit,
                ((j * 31 + commit * 17) % 50) as i64,
                seq,
            ));
            seq += 1;
        }
        all.extend(evs.iter().copied());
        commit_events(&mut log, &b, evs, &mut next_run);
        assert!(log.manifests.values().all(|m| m.runs.len() < MAX_RUNS));
    }
    let reloaded = Log::load(&b).unwrap();
    assert_eq!(reloaded.manifests, log.manifests);
    assert!(log.orphans(&b).unwrap().is_empty());
    for user in 0..150 {
        let mut want: Vec<Event> = all.iter().filter(|e| e.user == user).copied().collect();
        want.sort_by_key(|e| (e.timestamp, e.seq));
        assert_eq!(reloaded.history(&b, user).unwrap(), want, "user {user}");
    }
    let wm = seq / 2;
    let mut want: Vec<Event> = all.iter().filter(|e| e.seq < wm).copied().collect();
    want.sort_by_key(|e| (e.user, e.timestamp, e.seq));
    assert_eq!(reloaded.snapshot(&b, wm).unwrap(), want);
    for item in [0, 5, 30, 1000] {
        let n = want.iter().filter(|e| e.item == item).count() as u64;
        assert_eq!(reloaded.count_item(&b, item, wm).unwrap(), n, "item {item}");
    }
    assert_eq!(reloaded.verify(&b).unwrap(), seq);
}

/// A heavy user's large segment is checksummed once and then served from the held
/// buffer; histories stay those of a naive model across merges (which drop merged
/// runs from the cache), and a corrupted segment is still caught on first read.
#[test]
fn large_segments_are_checked_once_and_leave_with_their_runs() {
    let b = MemBackend::default();
    let mut log = Log::default();
    let (mut next_run, mut seq) = (0, 0u64);
    let mut all = Vec::new();
    for commit in 0..(MAX_RUNS as u32 + 4) {
        let mut evs = Vec::new();
        // User 0 is heavy in the first commit (a segment well over CHECKED_MIN).
        let heavy = if commit == 0 { 20_000 } else { 5 };
        for j in 0..heavy {
            evs.push(ev(0, j, j as i64, seq));
            seq += 1;
        }
        for u in 1..64 {
            evs.push(ev(u, commit, commit as i64, seq));
            seq += 1;
        }
        all.extend(evs.iter().copied());
        commit_events(&mut log, &b, evs, &mut next_run);
        for u in [0u32, 1, 63] {
            let mut want: Vec<Event> = all.iter().filter(|e| e.user == u).copied().collect();
            want.sort_by_key(|e| (e.timestamp, e.seq));
            assert_eq!(
                log.history(&b, u).unwrap(),
                want,
                "user {u}, commit {commit}"
            );
        }
        // Only segments listed by the manifest are held.
        let held = log.checked.lock().unwrap();
        assert!(held
            .runs
            .keys()
            .all(|k| log.manifests[&k.0].runs.iter().any(|r| r.run == k.1)));
        assert_eq!(
            held.bytes,
            held.runs.values().map(|v| v.len()).sum::<usize>()
        );
    }
    assert!(
        log.checked_bytes() >= CHECKED_MIN,
        "the heavy segment is held"
    );
    // A fresh reader checks a corrupted large segment on its first read.
    let big = log.manifests[&0]
        .runs
        .iter()
        .max_by_key(|r| r.events)
        .unwrap()
        .run;
    let mut v = b.get(&keys::segment(0, big)).unwrap().unwrap().to_vec();
    let mid = v.len() / 2;
    v[mid] ^= 1;
    let mut batch = WriteBatch::default();
    batch.put(keys::segment(0, big), v);
    b.apply(batch).unwrap();
    let fresh = Log::<Event>::load(&b).unwrap();
    let err = fresh.history(&b, 1).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

/// The search log is the same log over another record: histories, watermark snapshots
/// and merges match a naive model, token lists intact.
#[test]
fn search_runs_match_a_naive_model_through_merges() {
    use crate::event::SearchEvent;
    let b = MemBackend::default();
    let mut log: Log<SearchEvent> = Log::default();
    let (mut next_run, mut seq) = (0, 0u64);
    let mut all = Vec::new();
    for commit in 0..(MAX_RUNS as u32 + 6) {
        let mut s = Vec::new();
        for j in 0..(1 + commit % 5) * 9 {
            let user = (j * 5 + commit) % 130;
            s.push(SearchEvent {
                user,
                tokens: (0..1 + j % 4).map(|t| t * 7 + commit).collect(),
                timestamp: ((j * 13 + commit * 7) % 40) as i64,
                seq,
            });
            seq += 1;
        }
        all.extend(s.iter().cloned());
        let mut batch = WriteBatch::default();
        let up = log.plan_append(&b, s, &mut next_run, &mut batch).unwrap();
        b.apply(batch).unwrap();
        log.install(up);
    }
    let reloaded = Log::<SearchEvent>::load(&b).unwrap();
    assert!(reloaded.manifests.values().all(|m| m.runs.len() < MAX_RUNS));
    for user in 0..130 {
        let mut want: Vec<SearchEvent> = all.iter().filter(|e| e.user == user).cloned().collect();
        want.sort_by_key(|e| (e.timestamp, e.seq));
        assert_eq!(reloaded.history(&b, user).unwrap(), want, "user {user}");
    }
    let wm = seq / 3;
    let mut want: Vec<SearchEvent> = all.iter().filter(|e| e.seq < wm).cloned().collect();
    want.sort_by_key(|e| (e.user, e.timestamp, e.seq));
    assert_eq!(reloaded.snapshot(&b, wm).unwrap(), want);
    assert_eq!(reloaded.verify(&b).unwrap(), seq);
    assert!(reloaded.orphans(&b).unwrap().is_empty());
    // The interaction log does not see the search keys, nor the other way round.
    assert_eq!(Log::<Event>::load(&b).unwrap().runs(), 0);
}

/// What docs/SEARCH.md says a search costs: 24 bytes plus 4 per token, plus a small
/// constant per run.
#[test]
fn a_search_costs_24_bytes_plus_4_per_token() {
    use crate::event::SearchEvent;
    let run: Vec<SearchEvent> = (0..6400u32)
        .map(|i| SearchEvent {
            user: i / 100,
            tokens: vec![i, i + 1, i + 2],
            timestamp: i64::from(i),
            seq: u64::from(i),
        })
        .collect();
    let bytes = SearchEvent::encode_run(&run).len();
    assert!((6400 * 36..6400 * 36 + 64).contains(&bytes), "{bytes}");
}
