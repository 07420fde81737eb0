//! From a header line to column roles, and from a row of fields to a record.

use super::text::{self, Row};
use super::{perr, role_names, role_of, split_genres, strip_type, Role, Target};
use crate::{EventKind, EventRow, ItemRecord, RawEvent, RawSearch, Result, UserRecord};

/// What a delimited file's header decides, and how a row becomes a record.
pub(crate) trait Schema: Sized {
    type Out;
    fn from_header(file: &str, line: u64, names: &[String], atomic: bool) -> Result<Self>;
    /// `index` is the 0-based number of the data row (blank lines not counted).
    fn row<R: Row + ?Sized>(&self, file: &str, line: u64, index: u64, row: &R)
        -> Result<Self::Out>;
}

/// The header, mapped: for every column its display name and its role (None = no role).
struct Columns {
    names: Vec<String>,
    roles: Vec<Option<Role>>,
}

impl Columns {
    fn new(target: Target, file: &str, line: u64, raw: &[String]) -> Result<Columns> {
        let mut names = Vec::with_capacity(raw.len());
        let mut roles: Vec<Option<Role>> = Vec::with_capacity(raw.len());
        let mut seen: Vec<String> = Vec::with_capacity(raw.len());
        for r in raw {
            let name = strip_type(r).to_string();
            let norm = name.to_ascii_lowercase();
            let role = if norm.is_empty() {
                None
            } else {
                if seen.contains(&norm) {
                    return Err(perr(file, line, &name, "duplicate column in the header"));
                }
                seen.push(norm.clone());
                role_of(target, &norm)
            };
            if let Some(role) = role {
                if let Some(j) = roles.iter().position(|&x| x == Some(role)) {
                    return Err(perr(
                        file,
                        line,
                        &name,
                        format!(
                            "columns `{}` and `{name}` are both a `{}` column; keep one",
                            names[j],
                            role_names(role)[0]
                        ),
                    ));
                }
            }
            names.push(name);
            roles.push(role);
        }
        Ok(Columns { names, roles })
    }

    fn find(&self, role: Role) -> Option<usize> {
        self.roles.iter().position(|&r| r == Some(role))
    }

    fn require(&self, role: Role, file: &str, line: u64, extra: &str) -> Result<usize> {
        self.find(role).ok_or_else(|| {
            let field = role_names(role)[0];
            perr(
                file,
                line,
                field,
                format!(
                    "no {field} column in the header (expected one of {}{extra}; found {})",
                    role_names(role).join(", "),
                    self.names.join(", ")
                ),
            )
        })
    }

    /// Columns without a role and with a name: the attributes.
    fn attrs(&self) -> Vec<usize> {
        (0..self.names.len())
            .filter(|&i| self.roles[i].is_none() && !self.names[i].is_empty())
            .collect()
    }
}

pub(crate) struct EventSchema {
    cols: Columns,
    user: usize,
    /// Required unless there is a query column.
    item: Option<usize>,
    query: Option<usize>,
    value: Option<usize>,
    timestamp: Option<usize>,
    kind: Option<usize>,
    group: Option<usize>,
    default_kind: EventKind,
}

impl Schema for EventSchema {
    type Out = EventRow;

    fn from_header(file: &str, line: u64, names: &[String], _atomic: bool) -> Result<Self> {
        let cols = Columns::new(Target::Events, file, line, names)?;
        let user = cols.require(Role::User, file, line, "")?;
        let query = cols.find(Role::Query);
        let item = match query {
            Some(_) => cols.find(Role::Item),
            None => Some(cols.require(Role::Item, file, line, "")?),
        };
        let value = cols.find(Role::Value);
        let default_kind = match value {
            Some(v) if cols.names[v].eq_ignore_ascii_case("rating") => EventKind::Rating,
            _ => EventKind::Interaction,
        };
        Ok(EventSchema {
            user,
            item,
            query,
            value,
            timestamp: cols.find(Role::Timestamp),
            kind: cols.find(Role::Kind),
            group: cols.find(Role::Group),
            default_kind,
            cols,
        })
    }

    #[inline]
    fn row<R: Row + ?Sized>(&self, file: &str, line: u64, index: u64, row: &R) -> Result<EventRow> {
        let name = |i: usize| self.cols.names[i].as_str();
        let user = text::id(file, line, name(self.user), row.field(self.user))?;
        let timestamp = match self.timestamp {
            Some(i) => text::timestamp(file, line, name(i), row.field(i))?,
            None => index as i64,
        };
        let item = match (self.item, self.query) {
            (Some(i), None) => text::id(file, line, name(i), row.field(i))?,
            (item, Some(q)) => {
                let it = match item {
                    Some(i) => text::utf8(file, line, name(i), row.field(i))?,
                    None => "",
                };
                let query = text::utf8(file, line, name(q), row.field(q))?;
                match (it.is_empty(), query.is_empty()) {
                    (false, true) => it.to_string(),
                    (false, false) => {
                        return Err(perr(
                            file,
                            line,
                            name(q),
                            "a row has an item or a query, not both",
                        ))
                    }
                    (true, true) => {
                        return Err(perr(
                            file,
                            line,
                            item.map_or("item", name),
                            "a row needs an item or a query (both are empty)",
                        ))
                    }
                    (true, false) => {
                        super::check_query_field(file, line, name(q), query)?;
                        if let Some(k) = self.kind {
                            let s = text::utf8(file, line, name(k), row.field(k))?;
                            super::check_search_kind(file, line, name(k), s)?;
                        }
                        return Ok(EventRow::Search(RawSearch {
                            user,
                            text: query.to_string(),
                            timestamp,
                        }));
                    }
                }
            }
            // The header requires one of them; kept as an error rather than a panic.
            (None, None) => return Err(perr(file, line, "item", "no item column")),
        };
        let value = match self.value {
            Some(i) => text::value(file, line, name(i), row.field(i))?,
            None => 1.0,
        };
        let kind = match self.kind {
            Some(i) => {
                let s = text::utf8(file, line, name(i), row.field(i))?;
                super::parse_kind(file, line, name(i), s, self.default_kind)?
            }
            None => self.default_kind,
        };
        let group = match self.group {
            Some(i) => {
                let s = text::utf8(file, line, name(i), row.field(i))?;
                (!s.is_empty()).then(|| s.to_string())
            }
            None => None,
        };
        Ok(EventRow::Event(RawEvent {
            user,
            item,
            kind,
            value,
            timestamp,
            group,
        }))
    }
}

fn attrs<R: Row + ?Sized>(
    cols: &Columns,
    which: &[usize],
    file: &str,
    line: u64,
    row: &R,
) -> Result<Vec<(String, String)>> {
    let mut out = Vec::with_capacity(which.len());
    for &i in which {
        let s = text::utf8(file, line, &cols.names[i], row.field(i))?;
        if !s.is_empty() {
            out.push((cols.names[i].clone(), s.to_string()));
        }
    }
    Ok(out)
}

pub(crate) struct ItemSchema {
    cols: Columns,
    atomic: bool,
    id: usize,
    title: Option<usize>,
    genres: Option<usize>,
    text: Option<usize>,
    attrs: Vec<usize>,
}

impl Schema for ItemSchema {
    type Out = ItemRecord;

    fn from_header(file: &str, line: u64, names: &[String], atomic: bool) -> Result<Self> {
        let cols = Columns::new(Target::Items, file, line, names)?;
        Ok(ItemSchema {
            id: cols.require(Role::Item, file, line, ", id")?,
            title: cols.find(Role::Title),
            genres: cols.find(Role::Genres),
            text: cols.find(Role::Text),
            attrs: cols.attrs(),
            atomic,
            cols,
        })
    }

    fn row<R: Row + ?Sized>(&self, file: &str, line: u64, _: u64, row: &R) -> Result<ItemRecord> {
        let name = |i: usize| self.cols.names[i].as_str();
        let opt = |i: Option<usize>| -> Result<Option<String>> {
            match i {
                Some(i) => {
                    let s = text::utf8(file, line, name(i), row.field(i))?;
                    Ok((!s.is_empty()).then(|| s.to_string()))
                }
                None => Ok(None),
            }
        };
        Ok(ItemRecord {
            id: text::id(file, line, name(self.id), row.field(self.id))?,
            title: opt(self.title)?,
            genres: match self.genres {
                Some(i) => {
                    split_genres(text::utf8(file, line, name(i), row.field(i))?, self.atomic)
                }
                None => Vec::new(),
            },
            text: opt(self.text)?,
            attrs: attrs(&self.cols, &self.attrs, file, line, row)?,
        })
    }
}

pub(crate) struct UserSchema {
    cols: Columns,
    id: usize,
    attrs: Vec<usize>,
}

impl Schema for UserSchema {
    type Out = UserRecord;

    fn from_header(file: &str, line: u64, names: &[String], _atomic: bool) -> Result<Self> {
        let cols = Columns::new(Target::Users, file, line, names)?;
        Ok(UserSchema {
            id: cols.require(Role::User, file, line, ", id")?,
            attrs: cols.attrs(),
            cols,
        })
    }

    fn row<R: Row + ?Sized>(&self, file: &str, line: u64, _: u64, row: &R) -> Result<UserRecord> {
        Ok(UserRecord {
            id: text::id(file, line, &self.cols.names[self.id], row.field(self.id))?,
            attrs: attrs(&self.cols, &self.attrs, file, line, row)?,
        })
    }
}
