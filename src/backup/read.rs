//! Reading a dump back: every line parsed and checked (names, shapes, counts against
//! the end line) before anything is written.

use std::io::BufRead;

use super::{DumpReport, DumpedJob, Line, FORMAT, MAX_DUMP_LINE};
// TableOutput is defined in `db` until the job types move below it.
use crate::event::{EventKind, ItemRecord};
use crate::jobs::record::Policy;
use crate::jobs::TableOutput;
use crate::storage::tables::{self, RowSpace};
use crate::{Error, Result};
/// A table of the dump as read: its rows, the deleted ones (users and items tables),
/// and the line of its header for errors.
pub(crate) struct TableIn {
    pub(crate) out: TableOutput,
    pub(crate) declared: usize,
    pub(crate) dead: Vec<u32>,
    pub(crate) job: Option<DumpedJob>,
    pub(crate) line: u64,
}

/// Everything a dump holds, checked.
pub(crate) struct Parsed {
    pub(crate) users: Vec<crate::UserRecord>,
    pub(crate) items: Vec<ItemRecord>,
    /// Events and searches in arrival order.
    pub(crate) events: Vec<crate::EventRow>,
    pub(crate) tables: Vec<TableIn>,
    pub(crate) policies: Vec<Policy>,
    pub(crate) docs: Vec<(String, String)>,
}

impl Parsed {
    pub(crate) fn report(&self) -> DumpReport {
        let searches = self
            .events
            .iter()
            .filter(|r| matches!(r, crate::EventRow::Search(_)))
            .count() as u64;
        DumpReport {
            users: self.users.len() as u64,
            items: self.items.len() as u64,
            events: self.events.len() as u64 - searches,
            tables: self.tables.len() as u64,
            docs: self.docs.len() as u64,
            searches,
        }
    }
}

pub(crate) fn read_dump(r: &mut dyn BufRead, source: &str) -> Result<Parsed> {
    let bad = |line: u64, field: &str, msg: String| Error::Parse {
        file: source.to_owned(),
        line,
        field: field.to_owned(),
        msg,
    };
    let mut p = Parsed {
        users: Vec::new(),
        items: Vec::new(),
        events: Vec::new(),
        tables: Vec::new(),
        policies: Vec::new(),
        docs: Vec::new(),
    };
    let mut buf = Vec::new();
    let (mut n, mut header, mut end) = (0u64, false, None);
    while crate::ingest::read_line(r, &mut buf, MAX_DUMP_LINE, source, n + 1)? {
        n += 1;
        if buf.trim_ascii().is_empty() {
            continue;
        }
        if end.is_some() {
            return Err(bad(n, "t", "a line after the end line".into()));
        }
        let line: Line =
            serde_json::from_slice(&buf).map_err(|e| bad(n, "(line)", e.to_string()))?;
        match (&line, header) {
            (Line::RecdbDump { format }, false) if *format == FORMAT => {
                header = true;
                continue;
            }
            (Line::RecdbDump { format }, false) => {
                return Err(bad(
                    n,
                    "format",
                    format!("dump format {format}, this build reads {FORMAT}"),
                ))
            }
            (_, false) => return Err(bad(n, "t", "a dump starts with a recdb-dump header".into())),
            _ => {}
        }
        match line {
            Line::User { id, attrs } => p.users.push(crate::UserRecord { id, attrs }),
            Line::Item {
                id,
                title,
                genres,
                text,
                attrs,
            } => p.items.push(ItemRecord {
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
                let kind: EventKind = kind
                    .parse()
                    .map_err(|e: Error| bad(n, "kind", e.to_string()))?;
                p.events.push(crate::EventRow::Event(crate::RawEvent {
                    user,
                    item,
                    kind,
                    value,
                    timestamp: ts,
                    group,
                }));
            }
            Line::Search { user, q, ts } => {
                p.events.push(crate::EventRow::Search(crate::RawSearch {
                    user,
                    text: q,
                    timestamp: ts,
                }));
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
                tables::check_name(&name).map_err(|e| bad(n, "name", e.to_string()))?;
                if p.tables.iter().any(|t| t.out.name == name) {
                    return Err(bad(n, "name", format!("table `{name}` twice")));
                }
                if dim == 0 {
                    return Err(bad(n, "dim", format!("table `{name}` has dim 0")));
                }
                let space = match space.as_str() {
                    "users" => RowSpace::Users,
                    "items" => RowSpace::Items,
                    _ => RowSpace::Other,
                };
                if !row_ids.is_empty() && (space != RowSpace::Other || row_ids.len() != rows) {
                    return Err(bad(
                        n,
                        "row_ids",
                        format!(
                            "{} ids for the {rows} rows of table `{name}`",
                            row_ids.len()
                        ),
                    ));
                }
                // A count no address space holds is refused here; any other count
                // allocates nothing: the values grow as rows are read (memory follows
                // the dump, not what it claims) and a short table fails at the end.
                if rows
                    .checked_mul(dim)
                    .is_none_or(|len| len > isize::MAX as usize / size_of::<f32>())
                {
                    return Err(bad(
                        n,
                        "rows",
                        format!(
                            "table `{name}` of {rows} rows of {dim} values does not fit in memory"
                        ),
                    ));
                }
                p.tables.push(TableIn {
                    out: TableOutput {
                        name,
                        space,
                        dim,
                        rows: Vec::new(),
                        offset,
                        row_ids,
                    },
                    declared: rows,
                    dead: Vec::new(),
                    job,
                    line: n,
                });
            }
            Line::Row { id, v } => {
                let t = p
                    .tables
                    .last_mut()
                    .ok_or_else(|| bad(n, "t", "a row before any table".into()))?;
                let o = &mut t.out;
                let row = o.rows.len() / o.dim;
                if row == t.declared {
                    return Err(bad(
                        n,
                        "t",
                        format!("table `{}` has more rows than its {}", o.name, t.declared),
                    ));
                }
                o.rows.try_reserve(o.dim).map_err(|_| {
                    bad(n, "v", format!("table `{}` does not fit in memory", o.name))
                })?;
                let other = o.space == RowSpace::Other;
                if v.is_empty() && !other {
                    t.dead.push(crate::error::to_u32(row, "table rows")?);
                    o.rows.extend(std::iter::repeat_n(0.0, o.dim));
                    continue;
                }
                if v.len() != o.dim {
                    return Err(bad(
                        n,
                        "v",
                        format!("{} values, table `{}` has {}", v.len(), o.name, o.dim),
                    ));
                }
                if let Some(j) = v.iter().position(|x| !x.is_finite()) {
                    return Err(bad(n, "v", format!("value {} is not finite", j + 1)));
                }
                // Ids are on every row of an `other` table (the first row decides), or
                // on its table line, or nowhere (rows named by position).
                match id {
                    Some(id) if other && o.row_ids.len() == row => o.row_ids.push(id),
                    None if row == 0 || o.row_ids.len() != row => {}
                    _ => {
                        return Err(bad(
                            n,
                            "id",
                            format!(
                                "a row id does not fit table `{}` (ids on every row or on none)",
                                o.name
                            ),
                        ))
                    }
                }
                o.rows.extend(v);
            }
            Line::Policy {
                model,
                params,
                every,
            } => p.policies.push(Policy {
                model,
                params,
                every_events: every,
            }),
            Line::Doc { tag, text } => p.docs.push((tag, text)),
            Line::End {
                users,
                items,
                events,
                tables,
                docs,
                searches,
            } => {
                end = Some(DumpReport {
                    users,
                    items,
                    events,
                    tables,
                    docs,
                    searches,
                })
            }
            Line::RecdbDump { .. } => return Err(bad(n, "t", "a second header".into())),
        }
    }
    let Some(want) = end else {
        return Err(bad(n, "t", "the dump has no end line (truncated?)".into()));
    };
    // Ids, when there are any, are one per row read (checked row by row) or as many as
    // declared (checked at the table line): the row count settles both.
    for t in &p.tables {
        let got = t.out.rows.len() / t.out.dim;
        if got != t.declared {
            return Err(bad(
                t.line,
                "rows",
                format!(
                    "table `{}` has {got} of its {} rows (truncated?)",
                    t.out.name, t.declared
                ),
            ));
        }
    }
    let got = p.report();
    if got != want {
        return Err(Error::InvalidInput(format!(
            "{source}: dump counts {got:?} disagree with its end line {want:?} (truncated?)"
        )));
    }
    Ok(p)
}
