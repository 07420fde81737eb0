//! Item "sentences" from the interaction log, for item2vec: a user's whole history,
//! their sessions, or baskets. Input events are grouped by user in time order (as a
//! job's `Snapshot` is); output is the SGNS core's flat `Sentences`.

use crate::event::Event;
use crate::train::sgns::Sentences;
use crate::{Error, Result};

/// How the log is cut into sentences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SentenceMode {
    /// One sentence per user: the whole history in time order.
    History,
    /// A user's history split where the session id changes (when the events have one)
    /// or where consecutive events are more than `gap` seconds apart.
    Session { gap: i64 },
    /// Events sharing a group (basket) id form one sentence; order inside is irrelevant.
    Basket,
}

impl SentenceMode {
    pub fn parse(mode: &str, gap: i64) -> Result<Self> {
        match mode {
            "history" => Ok(SentenceMode::History),
            "session" => Ok(SentenceMode::Session { gap }),
            "basket" => Ok(SentenceMode::Basket),
            other => Err(Error::param(
                "mode",
                format!("`{other}`: expected history, session or basket"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SentenceMode::History => "history",
            SentenceMode::Session { .. } => "session",
            SentenceMode::Basket => "basket",
        }
    }
}

/// Does `b` (the next event of the same user) start a new session after `a`?
fn new_session(a: &Event, b: &Event, gap: i64) -> bool {
    if a.group != u32::MAX && b.group != u32::MAX {
        a.group != b.group
    } else {
        b.timestamp.saturating_sub(a.timestamp) > gap
    }
}

/// Sentences of item ids. Sentences shorter than two tokens carry no context and are dropped.
pub(crate) fn build(events: &[Event], mode: SentenceMode) -> Result<Sentences> {
    let mut out = Sentences::new();
    let mut push = |s: &[u32]| {
        if s.len() >= 2 {
            out.push(s);
        }
    };
    match mode {
        SentenceMode::History | SentenceMode::Session { .. } => {
            let mut cur: Vec<u32> = Vec::new();
            for (i, e) in events.iter().enumerate() {
                let split = match (i.checked_sub(1).map(|j| &events[j]), mode) {
                    (None, _) => false,
                    (Some(p), _) if p.user != e.user => true,
                    (Some(p), SentenceMode::Session { gap }) => new_session(p, e, gap),
                    _ => false,
                };
                if split {
                    push(&cur);
                    cur.clear();
                }
                cur.push(e.item);
            }
            push(&cur);
        }
        SentenceMode::Basket => {
            // Stable sort of (group, position) keeps the within-basket log order.
            let mut grouped: Vec<(u32, u32)> = events
                .iter()
                .filter(|e| e.group != u32::MAX)
                .map(|e| (e.group, e.item))
                .collect();
            if grouped.is_empty() && !events.is_empty() {
                return Err(Error::param(
                    "mode",
                    "basket mode needs basket (group) ids on the events; none were imported",
                ));
            }
            grouped.sort_by_key(|&(g, _)| g);
            let mut cur = Vec::new();
            for (i, &(g, item)) in grouped.iter().enumerate() {
                if i > 0 && grouped[i - 1].0 != g {
                    push(&cur);
                    cur.clear();
                }
                cur.push(item);
            }
            push(&cur);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    fn ev(user: u32, item: u32, t: i64, group: u32) -> Event {
        Event {
            user,
            item,
            kind: EventKind::Interaction,
            value: 1.0,
            timestamp: t,
            group,
            seq: 0,
        }
    }

    fn all(s: &Sentences) -> Vec<Vec<u32>> {
        (0..s.len()).map(|i| s.get(i).to_vec()).collect()
    }

    const N: u32 = u32::MAX;

    #[test]
    fn history_is_one_sentence_per_user_in_order() {
        let e = [
            ev(0, 5, 1, N),
            ev(0, 3, 2, N),
            ev(0, 7, 900, N),
            ev(1, 1, 0, N),
            ev(1, 2, 5, N),
            ev(2, 9, 1, N),
        ];
        let s = build(&e, SentenceMode::History).unwrap();
        assert_eq!(all(&s), vec![vec![5, 3, 7], vec![1, 2]]);
    }

    #[test]
    fn sessions_split_on_gaps_and_users() {
        let e = [
            ev(0, 1, 0, N),
            ev(0, 2, 10, N),
            ev(0, 3, 111, N),
            ev(0, 4, 150, N),
            ev(1, 5, 151, N),
            ev(1, 6, 160, N),
        ];
        let s = build(&e, SentenceMode::Session { gap: 100 }).unwrap();
        assert_eq!(all(&s), vec![vec![1, 2], vec![3, 4], vec![5, 6]]);
        // A gap of exactly `gap` does not split.
        let e = [ev(0, 1, 0, N), ev(0, 2, 100, N)];
        assert_eq!(
            all(&build(&e, SentenceMode::Session { gap: 100 }).unwrap()),
            vec![vec![1, 2]]
        );
    }

    #[test]
    fn sessions_follow_group_ids_when_given() {
        let e = [
            ev(0, 1, 0, 7),
            ev(0, 2, 5000, 7),
            ev(0, 3, 5001, 8),
            ev(0, 4, 5002, 8),
        ];
        let s = build(&e, SentenceMode::Session { gap: 100 }).unwrap();
        assert_eq!(all(&s), vec![vec![1, 2], vec![3, 4]]);
    }

    #[test]
    fn baskets_group_by_id_across_users() {
        let e = [
            ev(0, 1, 0, 2),
            ev(0, 2, 1, 1),
            ev(0, 3, 2, 2),
            ev(1, 4, 0, 1),
            ev(1, 5, 9, N),
            ev(1, 6, 3, 3),
        ];
        let s = build(&e, SentenceMode::Basket).unwrap();
        assert_eq!(all(&s), vec![vec![2, 4], vec![1, 3]]);
        let e = [ev(0, 1, 0, N), ev(0, 2, 1, N)];
        let err = build(&e, SentenceMode::Basket).unwrap_err().to_string();
        assert!(err.contains("mode") && err.contains("basket"), "{err}");
    }

    #[test]
    fn modes_parse_by_name() {
        assert_eq!(
            SentenceMode::parse("session", 5).unwrap(),
            SentenceMode::Session { gap: 5 }
        );
        assert!(SentenceMode::parse("bag", 5)
            .unwrap_err()
            .to_string()
            .contains("mode"));
    }
}
