//! Tables as the database serves them: the catalog, the cache of open versions,
//! atomic publish with garbage collection, and export.

use crate::error::OrPoisoned;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::served::ServedRow;
use super::Db;
use crate::index::Metric;
use crate::jobs::record as job_store;
use crate::jobs::record::JobRecord;
use crate::jobs::TableOutput;
use crate::storage::backend::{Backend, WriteBatch};
use crate::storage::tables::{self, CatalogEntry, RowSpace, TableView, VersionInfo};
use crate::storage::{attrs, keys, meta};
use crate::{Error, Result};

/// A table as `stats` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TableInfo {
    pub name: String,
    pub version: u64,
    pub rows: u64,
    pub dim: u64,
    pub space: &'static str,
    /// Versions still stored (the current one included).
    pub versions: Vec<u64>,
    pub job: u64,
    pub watermark: u64,
}

/// Export formats of `export table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Raw little-endian f32 rows in `FILE`, ids one a line in `FILE.ids`.
    F32,
    /// `id<TAB>v1<TAB>v2...` one row a line.
    Tsv,
    /// Import only: factor rows as Spark's ALS writes them (`id`, `features`).
    #[cfg(feature = "parquet")]
    Parquet,
}

impl std::str::FromStr for TableFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(TableFormat::F32),
            "tsv" => Ok(TableFormat::Tsv),
            #[cfg(feature = "parquet")]
            "parquet" => Ok(TableFormat::Parquet),
            #[cfg(not(feature = "parquet"))]
            "parquet" => Err(Error::param(
                "format",
                "parquet: this build has no Parquet support (cargo feature `parquet`)",
            )),
            _ => Err(Error::param(
                "format",
                format!("`{s}`: expected f32 or tsv"),
            )),
        }
    }
}

/// Extra writes of a publish: (backend, published (name, version), batch).
pub(crate) type PublishExtra<'a> =
    dyn FnMut(&dyn Backend, &[(String, u64)], &mut WriteBatch) -> Result<()> + 'a;

/// Items by genre, built from the attributes on first use.
pub(crate) struct GenreIndex {
    pub by_genre: HashMap<String, Vec<bool>>,
}

fn info_of(entry: &CatalogEntry) -> Option<TableInfo> {
    let cur = entry.current()?;
    Some(TableInfo {
        name: entry.name.clone(),
        version: cur.version,
        rows: cur.rows as u64,
        dim: cur.dim as u64,
        space: RowSpace::from_u8(cur.space)
            .unwrap_or(RowSpace::Other)
            .as_str(),
        versions: entry.versions.iter().map(|v| v.version).collect(),
        job: cur.job,
        watermark: cur.watermark,
    })
}

/// What [`verify_all`] checked.
pub(crate) struct Verified {
    pub versions: u64,
    pub rows: u64,
    pub indexes: u64,
    pub indexed_rows: u64,
    pub delta_ops: u64,
}

/// Validate every block of every stored version, its index (every row at most once; a
/// dot index holds every row, a cosine one every non-zero row) and its delta.
pub(crate) fn verify_all(b: &dyn Backend) -> Result<Verified> {
    let mut out = Verified {
        versions: 0,
        rows: 0,
        indexes: 0,
        indexed_rows: 0,
        delta_ops: 0,
    };
    for entry in tables::load_catalog(b)? {
        for v in &entry.versions {
            let view = TableView::load(b, &entry.name, v)?;
            let mut nonzero = 0;
            for r in 0..view.rows() {
                let row = view.row(r);
                if row.iter().any(|x| !x.is_finite()) {
                    return Err(Error::corrupted(format!(
                        "row {r} of table `{}` version {} (not finite)",
                        entry.name, v.version
                    )));
                }
                nonzero += usize::from(row.norm() != 0.0);
            }
            let what = || format!("index of table `{}` version {}", entry.name, v.version);
            if let Some(ix) =
                crate::index::stored::load(b, &entry.name, v.version, view.rows(), view.dim())?
            {
                // The load checked each row's entries (one list, or two if spilled).
                let want = if Metric::from_stored_byte(ix.header.metric) == Metric::Dot {
                    view.rows()
                } else {
                    nonzero
                };
                if ix.rows != want {
                    return Err(Error::corrupted(format!(
                        "{} ({} rows indexed, {want} expected)",
                        what(),
                        ix.rows
                    )));
                }
                out.indexes += 1;
                out.indexed_rows += ix.rows as u64;
            }
            if let Some((d, segments)) = crate::index::delta::load(b, &entry.name, v.version)? {
                out.delta_ops += d.ops.len() as u64;
                crate::index::replay::Delta::replay(&view, d, segments)?;
            }
            out.versions += 1;
            out.rows += v.rows as u64;
        }
    }
    Ok(out)
}

impl Db {
    /// Every table with its current version.
    pub fn tables(&self) -> Result<Vec<TableInfo>> {
        Ok(tables::load_catalog(self.backend())?
            .iter()
            .filter_map(info_of)
            .collect())
    }

    /// The current version of a table, validated and read in place. The view stays valid
    /// (and unchanged) however many versions are published after it.
    pub fn table(&self, name: &str) -> Result<Arc<TableView>> {
        Ok(self.tables_consistent(&[name])?.remove(0))
    }

    /// Several tables as one publish left them (e.g. a model's users and items): loaded
    /// under one hold of the cache lock, which publish and drop take too, so the views
    /// never mix versions and a load never races a garbage collection.
    pub(crate) fn tables_consistent(&self, names: &[&str]) -> Result<Vec<Arc<TableView>>> {
        let mut views = self.inner.views.lock().or_poisoned("table cache")?;
        let mut out = Vec::with_capacity(names.len());
        for &name in names {
            if let Some(v) = views.get(name) {
                out.push(v.clone());
                continue;
            }
            let entry = tables::get_entry(self.backend(), name)?
                .ok_or_else(|| Error::UnknownTable(name.to_owned()))?;
            let cur = entry
                .current()
                .ok_or_else(|| Error::UnknownTable(name.to_owned()))?;
            let view = TableView::load(self.backend(), name, cur)?;
            views.insert(name.to_owned(), view.clone());
            out.push(view);
        }
        Ok(out)
    }

    /// Publish the tables of one job: write their blocks, then flip every catalog entry
    /// and record the job as done in one atomic batch, drop versions beyond
    /// `keep_versions` in the same batch, and flush.
    /// The index policy (`index_jobs.rs`) may then start background index builds.
    pub(crate) fn publish(&self, outputs: &[TableOutput], record: &mut JobRecord) -> Result<()> {
        self.publish_with(outputs, record, &mut |_, _, _| Ok(()))
    }

    /// [`Db::publish`] with `extra` writes in the same batch, staged under the write
    /// lock once the new versions are known (name, version).
    pub(crate) fn publish_with(
        &self,
        outputs: &[TableOutput],
        record: &mut JobRecord,
        extra: &mut PublishExtra<'_>,
    ) -> Result<()> {
        for o in outputs {
            tables::check_name(&o.name)?;
            if o.dim == 0 || o.rows.len() % o.dim != 0 {
                return Err(Error::DimensionMismatch {
                    expected: o.dim,
                    got: o.rows.len(),
                });
            }
            if let Some(i) = o.rows.iter().position(|x| !x.is_finite()) {
                return Err(Error::JobFailed(format!(
                    "table `{}` has a non-finite value at row {}",
                    o.name,
                    i / o.dim
                )));
            }
        }
        let _w = self.lock_write();
        let b = self.backend();
        let mut meta = self.state()?.meta.clone();
        let mut batch = WriteBatch::default();
        let mut published = Vec::with_capacity(outputs.len());
        for o in outputs {
            let version = meta.next_version;
            meta.next_version += 1;
            published.push((o.name.clone(), version));
            let (rows_per_block, blocks) =
                tables::write_blocks(b, &o.name, version, o.dim, &o.rows)?;
            let mut entry = tables::get_entry(b, &o.name)?.unwrap_or_else(|| CatalogEntry {
                name: o.name.clone(),
                versions: vec![],
            });
            entry.versions.push(VersionInfo {
                version,
                rows: crate::error::to_u32(o.rows.len() / o.dim, "table rows")?,
                dim: crate::error::to_u32(o.dim, "table dimension")?,
                rows_per_block,
                blocks,
                space: o.space as u8,
                created_unix: meta::now_unix(),
                job: record.id,
                watermark: record.watermark,
                offset: o.offset,
                row_ids: o.row_ids.clone(),
            });
            let keep = self.inner.config.keep_versions;
            while entry.versions.len() > keep {
                let old = entry.versions.remove(0);
                tables::delete_blocks(b, &o.name, old.version, &mut batch)?;
            }
            tables::put_entry(&mut batch, &entry);
        }
        record.tables = outputs.iter().map(|o| o.name.clone()).collect();
        job_store::put(&mut batch, record);
        extra(b, &published, &mut batch)?;
        {
            let mut views = self.inner.views.lock().or_poisoned("table cache")?;
            let mut st = self.state_mut()?;
            st.meta.next_version = meta.next_version;
            st.meta.put(&mut batch);
            b.apply(batch)?;
            for o in outputs {
                views.remove(&o.name);
            }
        }
        b.flush()?;
        drop(_w);
        self.after_publish(&published);
        Ok(())
    }

    /// Delete a table and all its versions. Durable on return.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        let _w = self.lock_write();
        let b = self.backend();
        let entry =
            tables::get_entry(b, name)?.ok_or_else(|| Error::UnknownTable(name.to_owned()))?;
        let mut batch = WriteBatch::default();
        for v in &entry.versions {
            tables::delete_blocks(b, name, v.version, &mut batch)?;
        }
        batch.delete(keys::catalog(name));
        let mut views = self.inner.views.lock().or_poisoned("table cache")?;
        b.apply(batch)?;
        views.remove(name);
        drop(views);
        self.inner
            .indexes
            .lock()
            .or_poisoned("index cache")?
            .remove(name);
        self.inner
            .deltas
            .lock()
            .or_poisoned("delta cache")?
            .remove(name);
        self.inner.parsed.forget_table(name);
        b.flush()
    }

    /// The external id of row `r` of a table (`#r` if its id block cannot be read:
    /// `check` names the corruption).
    // why: r is a row of `view`, whose row count is a u32.
    #[allow(clippy::cast_possible_truncation)]
    pub fn row_id(&self, view: &TableView, r: usize) -> String {
        let placeholder = |_| format!("#{r}");
        match view.space() {
            RowSpace::Items => self.item_name(r as u32).unwrap_or_else(placeholder),
            RowSpace::Users => self.user_name(r as u32).unwrap_or_else(placeholder),
            RowSpace::Other => view
                .row_ids()
                .get(r)
                .cloned()
                .unwrap_or_else(|| r.to_string()),
        }
    }

    /// Write a table out as queries see it (rows put or deleted since its version was
    /// published included; deleted rows left out): `F32` writes raw little-endian rows
    /// to `path` and the ids, one a line, to `path` + `.ids`; `Tsv` writes
    /// `id<TAB>values` lines. Returns the rows written.
    // why: r < the served table's row count, a u32.
    #[allow(clippy::cast_possible_truncation)]
    pub fn export_table(&self, name: &str, format: TableFormat, path: &Path) -> Result<u64> {
        #[cfg(feature = "parquet")]
        if format == TableFormat::Parquet {
            return Err(Error::param(
                "format",
                "export table writes f32 or tsv (parquet is for `import table` and `export log`)",
            ));
        }
        let table = self.served_rows(name)?;
        let io = |e| Error::io(path, e);
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        let ids_path = path.with_extension(match path.extension() {
            Some(e) => format!("{}.ids", e.to_string_lossy()),
            None => "ids".into(),
        });
        let ioi = |e| Error::io(&ids_path, e);
        let mut ids = match format {
            TableFormat::F32 => Some(std::io::BufWriter::new(
                std::fs::File::create(&ids_path).map_err(ioi)?,
            )),
            _ => None,
        };
        // The names of a users or items table, read once (a lookup per row would take
        // the state lock and search the id blocks a million times); a name the map
        // cannot give is written as `#row`, as `row_id` does.
        let names = match table.view.space() {
            RowSpace::Items => self.item_ids().unwrap_or_default(),
            RowSpace::Users => self.user_ids().unwrap_or_default(),
            RowSpace::Other => Vec::new(),
        };
        let id_of = |r: usize| -> std::borrow::Cow<'_, str> {
            if let Some(id) = table.delta.as_ref().and_then(|d| d.appended_id(r as u32)) {
                return id.into();
            }
            match table.view.space() {
                RowSpace::Other => match table.view.row_ids().get(r) {
                    Some(id) => id.as_str().into(),
                    None => r.to_string().into(),
                },
                _ => match names.get(r) {
                    Some(id) => id.as_str().into(),
                    None => format!("#{r}").into(),
                },
            }
        };
        let mut written = 0u64;
        for r in 0..table.rows() {
            let Some(row) = table.row_ref(r) else {
                continue;
            };
            let id = id_of(r);
            match &mut ids {
                Some(ids) => {
                    match row {
                        ServedRow::Stored(row) => out.write_all(row.le_bytes()).map_err(io)?,
                        ServedRow::Delta(row) => {
                            for x in row {
                                out.write_all(&x.to_le_bytes()).map_err(io)?;
                            }
                        }
                    }
                    writeln!(ids, "{id}").map_err(ioi)?;
                }
                None => {
                    write!(out, "{id}").map_err(io)?;
                    match row {
                        ServedRow::Stored(row) => {
                            for x in row.iter() {
                                write!(out, "\t{x}").map_err(io)?;
                            }
                        }
                        ServedRow::Delta(row) => {
                            for x in row {
                                write!(out, "\t{x}").map_err(io)?;
                            }
                        }
                    }
                    writeln!(out).map_err(io)?;
                }
            }
            written += 1;
        }
        if let Some(ids) = &mut ids {
            ids.flush().map_err(ioi)?;
        }
        out.flush().map_err(io)?;
        Ok(written)
    }

    pub(crate) fn genre_index(&self) -> Result<Arc<GenreIndex>> {
        if let Some(g) = self
            .inner
            .genres
            .read()
            .or_poisoned("genre index")?
            .as_ref()
        {
            return Ok(g.clone());
        }
        let n = self.state()?.items.len() as usize;
        let mut by_genre: HashMap<String, Vec<bool>> = HashMap::new();
        for (item, a) in attrs::all_items(self.backend())? {
            for g in a.genres {
                let v = by_genre
                    .entry(g.to_lowercase())
                    .or_insert_with(|| vec![false; n]);
                if let Some(slot) = v.get_mut(item as usize) {
                    *slot = true;
                }
            }
        }
        let g = Arc::new(GenreIndex { by_genre });
        *self.inner.genres.write().or_poisoned("genre index")? = Some(g.clone());
        Ok(g)
    }
}
