//! `dump` and `restore`: a portable JSON-lines copy of everything a database holds
//! (ids, attributes, the log in arrival order, current table versions, policies),
//! since sled has no repair tool of its own.
//!
//! One JSON object per line, `"t"` says what it is: `recdb-dump` (header), `user`,
//! `item` (dense-id order, so tables stay aligned), `event` (arrival order), `table`
//! followed by its `row`s, `policy`, and an `end` trailer with counts that catches a
//! truncated file.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use super::tables::TableOutput;
use super::Db;
use crate::event::{EventKind, ItemRecord};
use crate::storage::attrs;
use crate::storage::backend::WriteBatch;
use crate::storage::ids::PendingIds;
use crate::storage::jobs::{self as job_store, JobRecord, JobState, Policy};
use crate::storage::meta;
use crate::storage::tables::{self, RowSpace};
use crate::{Error, Result};

/// The dump's own format (lines of JSON), independent of the database's on-disk format.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "kebab-case")]
enum Line {
    RecdbDump {
        format: u32,
    },
    User {
        id: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attrs: Vec<(String, String)>,
    },
    Item {
        id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        title: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        genres: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attrs: Vec<(String, String)>,
    },
    Doc {
        tag: String,
        text: String,
    },
    Event {
        user: String,
        item: String,
        kind: String,
        value: f32,
        ts: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
    },
    Table {
        name: String,
        space: String,
        dim: usize,
        rows: usize,
        offset: f32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        row_ids: Vec<String>,
        /// The job that trained the table: `infer` and `similar-text` read their
        /// hyperparameters and default seed from it (absent in older dumps).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<DumpedJob>,
    },
    Row {
        v: Vec<f32>,
    },
    Policy {
        model: String,
        params: String,
        every: u64,
    },
    End {
        users: u64,
        items: u64,
        events: u64,
        tables: u64,
        #[serde(default, skip_serializing_if = "is_zero")]
        docs: u64,
    },
}

/// What a restored table keeps of the job record that produced it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct DumpedJob {
    model: String,
    params: String,
    seed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a dump or restore moved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DumpReport {
    pub users: u64,
    pub items: u64,
    pub events: u64,
    pub tables: u64,
    /// Imported documents (`import docs`).
    pub docs: u64,
}

fn write_line(w: &mut dyn Write, line: &Line) -> Result<()> {
    let io = |e| Error::io("<dump>", e);
    serde_json::to_writer(&mut *w, line).map_err(|e| Error::io("<dump>", e.into()))?;
    w.write_all(b"\n").map_err(io)
}

impl Db {
    /// Write a portable copy of the database to `w`.
    pub fn dump(&self, w: &mut dyn Write) -> Result<DumpReport> {
        let b = self.backend();
        write_line(w, &Line::RecdbDump { format: FORMAT })?;
        let (users, items, groups, mut events) = {
            let st = self.state();
            let events = st.log.snapshot(b, u64::MAX)?;
            (
                st.users.all_names(b)?,
                st.items.all_names(b)?,
                st.groups.all_names(b)?,
                events,
            )
        };
        for (i, id) in users.iter().enumerate() {
            let attrs = attrs::get_user(b, i as u32, id)?
                .map(|u| u.attrs)
                .unwrap_or_default();
            write_line(
                w,
                &Line::User {
                    id: id.clone(),
                    attrs,
                },
            )?;
        }
        for (i, id) in items.iter().enumerate() {
            let it = attrs::get_item(b, i as u32, id)?.unwrap_or_default();
            write_line(
                w,
                &Line::Item {
                    id: id.clone(),
                    title: it.title,
                    genres: it.genres,
                    text: it.text,
                    attrs: it.attrs,
                },
            )?;
        }
        let docs = crate::storage::docs::all(b)?;
        for (tag, text) in &docs {
            write_line(
                w,
                &Line::Doc {
                    tag: tag.clone(),
                    text: text.clone(),
                },
            )?;
        }
        events.sort_unstable_by_key(|e| e.seq);
        for e in &events {
            let name = |v: &[String], i: u32| {
                v.get(i as usize).cloned().ok_or_else(|| {
                    Error::corrupted(format!("event {} (id {i} out of range)", e.seq))
                })
            };
            write_line(
                w,
                &Line::Event {
                    user: name(&users, e.user)?,
                    item: name(&items, e.item)?,
                    kind: e.kind.as_str().into(),
                    value: e.value,
                    ts: e.timestamp,
                    group: if e.group == u32::MAX {
                        None
                    } else {
                        Some(name(&groups, e.group)?)
                    },
                },
            )?;
        }
        let catalog = tables::load_catalog(b)?;
        for entry in &catalog {
            let view = self.table(&entry.name)?;
            let job = match entry.current() {
                Some(v) => job_store::get(b, v.job)?.map(|r| DumpedJob {
                    model: r.model,
                    params: r.params,
                    seed: r.seed,
                }),
                None => None,
            };
            write_line(
                w,
                &Line::Table {
                    name: entry.name.clone(),
                    space: view.space().as_str().into(),
                    dim: view.dim(),
                    rows: view.rows(),
                    offset: view.offset(),
                    row_ids: view.row_ids().to_vec(),
                    job,
                },
            )?;
            for r in 0..view.rows() {
                write_line(
                    w,
                    &Line::Row {
                        v: view.row(r).to_vec(),
                    },
                )?;
            }
        }
        for p in job_store::policies(b)? {
            write_line(
                w,
                &Line::Policy {
                    model: p.model,
                    params: p.params,
                    every: p.every_events,
                },
            )?;
        }
        let report = DumpReport {
            users: users.len() as u64,
            items: items.len() as u64,
            events: events.len() as u64,
            tables: catalog.len() as u64,
            docs: docs.len() as u64,
        };
        write_line(
            w,
            &Line::End {
                users: report.users,
                items: report.items,
                events: report.events,
                tables: report.tables,
                docs: report.docs,
            },
        )?;
        w.flush().map_err(|e| Error::io("<dump>", e))?;
        Ok(report)
    }

    /// Load a dump into this database, which must be empty. The whole dump is read and
    /// checked before anything is written; each part is then written atomically and
    /// durably (ids and attributes, events in batches, tables, policies).
    pub fn restore(&self, r: &mut dyn BufRead, source: &str) -> Result<DumpReport> {
        {
            let st = self.state();
            if st.meta.events > 0
                || st.users.len() > 0
                || st.items.len() > 0
                || !tables::load_catalog(self.backend())?.is_empty()
                || crate::storage::docs::count(self.backend())? > 0
            {
                return Err(Error::InvalidInput(
                    "restore needs an empty database".into(),
                ));
            }
        }
        let bad = |line: u64, field: &str, msg: String| Error::Parse {
            file: source.to_owned(),
            line,
            field: field.to_owned(),
            msg,
        };
        let mut lines: Vec<Line> = Vec::new();
        let mut buf = String::new();
        let mut n = 0u64;
        loop {
            buf.clear();
            let got = r.read_line(&mut buf).map_err(|e| Error::io(source, e))?;
            if got == 0 {
                break;
            }
            n += 1;
            if buf.trim().is_empty() {
                continue;
            }
            let line: Line =
                serde_json::from_str(&buf).map_err(|e| bad(n, "(line)", e.to_string()))?;
            match (&line, lines.len()) {
                (Line::RecdbDump { format }, 0) if *format == FORMAT => {}
                (Line::RecdbDump { format }, 0) => {
                    return Err(bad(
                        n,
                        "format",
                        format!("dump format {format}, this build reads {FORMAT}"),
                    ))
                }
                (_, 0) => return Err(bad(n, "t", "a dump starts with a recdb-dump header".into())),
                _ => {}
            }
            lines.push(line);
        }
        let Some(Line::End {
            users,
            items,
            events,
            tables: n_tables,
            docs: n_docs,
        }) = lines.last()
        else {
            return Err(bad(n, "t", "the dump has no end line (truncated?)".into()));
        };
        let want = DumpReport {
            users: *users,
            items: *items,
            events: *events,
            tables: *n_tables,
            docs: *n_docs,
        };
        let mut got = DumpReport {
            users: 0,
            items: 0,
            events: 0,
            tables: 0,
            docs: 0,
        };
        let mut user_recs = Vec::new();
        let mut item_recs = Vec::new();
        let mut evs = Vec::new();
        let mut outputs: Vec<TableOutput> = Vec::new();
        let mut table_jobs: Vec<Option<DumpedJob>> = Vec::new();
        let mut policies = Vec::new();
        let mut docs = Vec::new();
        for line in lines {
            match line {
                Line::User { id, attrs } => user_recs.push(crate::UserRecord { id, attrs }),
                Line::Item {
                    id,
                    title,
                    genres,
                    text,
                    attrs,
                } => item_recs.push(ItemRecord {
                    id,
                    title,
                    genres,
                    text,
                    attrs,
                }),
                Line::Event {
                    user,
                    item,
                    kind,
                    value,
                    ts,
                    group,
                } => {
                    let kind: EventKind = kind.parse()?;
                    evs.push(crate::RawEvent {
                        user,
                        item,
                        kind,
                        value,
                        timestamp: ts,
                        group,
                    });
                }
                Line::Table {
                    name,
                    space,
                    dim,
                    rows,
                    offset,
                    row_ids,
                    job,
                } => {
                    tables::check_name(&name)?;
                    table_jobs.push(job);
                    let space = match space.as_str() {
                        "users" => RowSpace::Users,
                        "items" => RowSpace::Items,
                        _ => RowSpace::Other,
                    };
                    outputs.push(TableOutput {
                        name,
                        space,
                        dim,
                        rows: Vec::with_capacity(rows * dim),
                        offset,
                        row_ids,
                    });
                }
                Line::Row { v } => {
                    let t = outputs.last_mut().ok_or_else(|| {
                        Error::InvalidInput("dump: a row before any table".into())
                    })?;
                    if v.len() != t.dim {
                        return Err(Error::DimensionMismatch {
                            expected: t.dim,
                            got: v.len(),
                        });
                    }
                    t.rows.extend(v);
                }
                Line::Policy {
                    model,
                    params,
                    every,
                } => policies.push(Policy {
                    model,
                    params,
                    every_events: every,
                }),
                Line::Doc { tag, text } => docs.push((tag, text)),
                Line::RecdbDump { .. } | Line::End { .. } => {}
            }
        }
        got.users = user_recs.len() as u64;
        got.items = item_recs.len() as u64;
        got.events = evs.len() as u64;
        got.tables = outputs.len() as u64;
        got.docs = docs.len() as u64;
        if got != want {
            return Err(Error::InvalidInput(format!(
                "dump counts {got:?} disagree with its end line {want:?} (truncated?)"
            )));
        }
        self.restore_ids(&user_recs, &item_recs)?;
        if !docs.is_empty() {
            self.put_docs(&docs)?;
        }
        for chunk in evs.chunks(1 << 20) {
            self.log_events(chunk)?;
        }
        // One restored job record per producing job of the dump (tables in dump order).
        let mut groups: Vec<(Option<DumpedJob>, Vec<TableOutput>)> = Vec::new();
        for (o, job) in outputs.into_iter().zip(table_jobs) {
            match groups.iter_mut().find(|g| g.0 == job) {
                Some(g) => g.1.push(o),
                None => groups.push((job, vec![o])),
            }
        }
        for (job, outs) in &groups {
            let mut rec = self.restore_record(job.as_ref())?;
            self.publish(outs, &mut rec)?;
        }
        if !policies.is_empty() {
            let _w = self.lock_write();
            let mut batch = WriteBatch::default();
            for p in &policies {
                job_store::put_policy(&mut batch, p);
            }
            self.backend().apply(batch)?;
            self.backend().flush()?;
        }
        Ok(got)
    }

    /// Users and items in dump order, so dense ids (and so table rows) match.
    fn restore_ids(&self, users: &[crate::UserRecord], items: &[ItemRecord]) -> Result<()> {
        let _w = self.lock_write();
        let b = self.backend();
        let mut batch = WriteBatch::default();
        let (new_u, new_i, meta) = {
            let st = self.state();
            let mut pu = PendingIds::new(&st.users, b);
            let mut pi = PendingIds::new(&st.items, b);
            for u in users {
                let id = pu.resolve(&u.id)?;
                if !u.attrs.is_empty() {
                    attrs::put_user(&mut batch, id, u);
                }
            }
            for it in items {
                let id = pi.resolve(&it.id)?;
                if it.title.is_some()
                    || it.text.is_some()
                    || !it.genres.is_empty()
                    || !it.attrs.is_empty()
                {
                    attrs::put_item(&mut batch, id, it);
                }
            }
            let new_u = pu.write(&mut batch)?;
            let new_i = pi.write(&mut batch)?;
            let mut meta = st.meta.clone();
            meta.users = pu.total();
            meta.items = pi.total();
            meta.put(&mut batch);
            (new_u, new_i, meta)
        };
        {
            let mut st = self.state_mut();
            b.apply(batch)?;
            st.users.install(new_u);
            st.items.install(new_i);
            st.meta = meta;
        }
        *self.inner.genres.write().unwrap_or_else(|e| e.into_inner()) = None;
        b.flush()
    }

    /// A finished job record for restored tables: the dumped job's model, parameters and
    /// seed when the dump has them, else a `restore` record.
    fn restore_record(&self, job: Option<&DumpedJob>) -> Result<JobRecord> {
        let _w = self.lock_write();
        let mut st = self.state_mut();
        let id = st.meta.next_job;
        st.meta.next_job += 1;
        Ok(JobRecord {
            id,
            model: job.map_or("restore".into(), |j| j.model.clone()),
            params: job.map_or("{}".into(), |j| j.params.clone()),
            seed: job.map_or(0, |j| j.seed),
            state: JobState::Done as u8,
            created_unix: meta::now_unix(),
            watermark: st.meta.events,
            progress: 1.0,
            message: "restored from a dump".into(),
            ..JobRecord::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Params, QueryOptions};

    fn sample() -> Db {
        let db = Db::temporary().unwrap();
        let mut b = db.batch();
        for u in 0..80 {
            for i in 0..6 {
                let group = format!("s{}", u % 3);
                b.push_in_group(
                    &format!("u{u}"),
                    &format!("i{}", (u * 7 + i) % 23),
                    EventKind::Rating,
                    1.0 + (i % 5) as f32,
                    (100 - i) as i64,
                    Some(&group),
                )
                .unwrap();
            }
        }
        b.commit().unwrap();
        db.put_items(&[ItemRecord {
            id: "i3".into(),
            title: Some("Three".into()),
            genres: vec!["g".into()],
            ..Default::default()
        }])
        .unwrap();
        db.train(
            "als",
            &Params::new().set("factors", 4).set("iterations", 2),
            &Default::default(),
        )
        .unwrap();
        db.set_retrain_policy("popular", &Params::new(), 1000)
            .unwrap();
        db
    }

    #[test]
    fn dump_restore_dump_is_identical_and_answers_match() {
        let a = sample();
        let mut first = Vec::new();
        let report = a.dump(&mut first).unwrap();
        assert_eq!(
            report,
            DumpReport {
                users: 80,
                items: 23,
                events: 480,
                tables: 2,
                docs: 0,
            }
        );
        let b = Db::temporary().unwrap();
        b.restore(&mut &first[..], "dump.jsonl").unwrap();
        let mut second = Vec::new();
        b.dump(&mut second).unwrap();
        assert_eq!(
            String::from_utf8(first).unwrap(),
            String::from_utf8(second).unwrap()
        );
        let q = QueryOptions::model("als").k(5);
        assert_eq!(
            a.recommend("u7", &q).unwrap(),
            b.recommend("u7", &q).unwrap()
        );
        assert_eq!(a.history("u9").unwrap(), b.history("u9").unwrap());
        b.check().unwrap();
    }

    #[test]
    fn truncated_or_foreign_dumps_change_nothing() {
        let mut full = Vec::new();
        sample().dump(&mut full).unwrap();
        let text = String::from_utf8(full).unwrap();
        let cut: String = text
            .lines()
            .take(text.lines().count() - 1)
            .map(|l| format!("{l}\n"))
            .collect();
        let b = Db::temporary().unwrap();
        assert!(b.restore(&mut cut.as_bytes(), "cut.jsonl").is_err());
        assert!(b
            .restore(&mut "{\"t\":\"user\",\"id\":\"x\"}\n".as_bytes(), "x.jsonl")
            .is_err());
        assert!(b.restore(&mut "not json\n".as_bytes(), "x.jsonl").is_err());
        let s = b.stats().unwrap();
        assert_eq!((s.users, s.items, s.events, s.tables.len()), (0, 0, 0, 0));
        // And a database that is not empty is refused.
        assert!(sample()
            .restore(&mut text.as_bytes(), "full.jsonl")
            .is_err());
    }
}
