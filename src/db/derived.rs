//! Derived tables: tables computed from other tables, published like a job's.

use std::collections::HashMap;

use super::Db;
use crate::jobs::TableOutput;
use crate::storage::tables::{self, RowSpace, TableView};
use crate::{Error, Result};

impl Db {
    /// Publish `name` as the row-wise concatenation of `sources` (at least two): each
    /// source row is L2-normalised first (so no source dominates by scale; a zero row
    /// stays zero), and the dims add up. All sources must share one row space; rows are
    /// matched by id (dense id for users/items, the stored row id for `other`). A row
    /// present in one source but not another is an error naming the id: filling with
    /// zeros would silently give that row a different geometry. Returns the new version.
    pub fn concat_tables(&self, name: &str, sources: &[&str]) -> Result<u64> {
        tables::check_name(name)?;
        if sources.len() < 2 {
            return Err(Error::param(
                "tables",
                format!("concat needs at least two tables, got {}", sources.len()),
            ));
        }
        let views = self.tables_consistent(sources)?;
        let space = views[0].space();
        if let Some(v) = views.iter().find(|v| v.space() != space) {
            return Err(Error::param(
                "tables",
                format!(
                    "`{}` has rows of {} but `{}` has rows of {}",
                    v.name(),
                    v.space().as_str(),
                    views[0].name(),
                    space.as_str()
                ),
            ));
        }
        let ids: Vec<String> = (0..views[0].rows())
            .map(|r| self.row_id(&views[0], r))
            .collect();
        // For each source, the row holding each id of the first table, in order.
        let mut order: Vec<Vec<usize>> = Vec::with_capacity(views.len());
        for v in &views {
            order.push(self.match_rows(v, space, &ids, &views[0])?);
        }
        let dim: usize = views.iter().map(|v| v.dim()).sum();
        let mut rows = Vec::with_capacity(ids.len() * dim);
        for r in 0..ids.len() {
            for (v, ord) in views.iter().zip(&order) {
                let row = v.row(ord[r]);
                let norm = row.norm();
                let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
                rows.extend(row.iter().map(|x| x * scale));
            }
        }
        let params = serde_json::json!({ "table": name, "sources": sources }).to_string();
        let out = TableOutput {
            name: name.to_owned(),
            space,
            dim,
            rows,
            offset: 0.0,
            row_ids: if space == RowSpace::Other {
                ids
            } else {
                vec![]
            },
        };
        self.publish_job("concat", params, out)?;
        Ok(self.table(name)?.version())
    }

    /// Row of `v` for each of `ids` (the rows of `first`); every row of `v` must be used.
    fn match_rows(
        &self,
        v: &TableView,
        space: RowSpace,
        ids: &[String],
        first: &TableView,
    ) -> Result<Vec<usize>> {
        let missing = |id: &str, from: &TableView| {
            Error::InvalidInput(format!(
                "row `{id}` of table `{}` is missing from table `{}`",
                first.name(),
                from.name()
            ))
        };
        let extra = |id: &str| {
            Error::InvalidInput(format!(
                "row `{id}` of table `{}` is missing from table `{}`",
                v.name(),
                first.name()
            ))
        };
        if space != RowSpace::Other {
            // Dense ids: row r is id r in every table of this space.
            if v.rows() < ids.len() {
                return Err(missing(&ids[v.rows()], v));
            }
            if v.rows() > ids.len() {
                return Err(extra(&self.row_id(v, ids.len())));
            }
            return Ok((0..ids.len()).collect());
        }
        let mut at: HashMap<String, usize> = HashMap::with_capacity(v.rows());
        for r in 0..v.rows() {
            at.insert(self.row_id(v, r), r);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(at.remove(id).ok_or_else(|| missing(id, v))?);
        }
        if let Some(id) = at.keys().min() {
            return Err(extra(id));
        }
        Ok(out)
    }
}
