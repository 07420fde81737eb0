//! `similar` and `recommend`: resolve ids, pick the table, filter, search.
//!
//! The queries read the database through [`Source`] (ids, histories, tables as served),
//! which the `Db` facade implements: this module never names the facade.

use std::sync::Arc;

use crate::event::{Event, SearchEvent};
use crate::index::served::Served;
use crate::index::Metric;
use crate::storage::tables::{RowSpace, TableView};
use crate::{Error, Result};

mod autoencoder;
mod blend;
pub(crate) mod find;
mod item_item;
mod names;
pub(crate) mod parsed;
mod sequence;
mod two_stage;
pub(crate) mod wide_deep;
pub(crate) mod youtube;
pub(crate) use blend::check_component as check_blend_component;
use item_item::{is_item_item_model, recommend_item_item};
use names::{explain_model, item_vectors, Needs};
pub(crate) use sequence::{is_sequence_model, recommend_sequence};
pub use sequence::{SequenceQuery, SequenceScoring};
pub use two_stage::{DEFAULT_CANDIDATES, MAX_CANDIDATES};

/// Options shared by `similar` and `recommend`.
#[derive(Debug, Clone)]
pub struct QueryOptions {
    /// How many results (at least 1).
    pub k: usize,
    /// The model whose tables answer (`<model>.items`, `<model>.users`).
    pub model: String,
    /// Keep items the user has already interacted with (recommend only).
    pub include_seen: bool,
    /// Only items with this genre/tag (case-insensitive).
    pub genre: Option<String>,
    /// Scan every row even when the table has an index.
    pub exact: bool,
    /// Two-stage `recommend`: this model re-scores `model`'s candidates and its top
    /// `k` are the answer (see [`QueryOptions::rank`]).
    pub rank: Option<String>,
    /// With `rank`: how many candidates `model` proposes ([`DEFAULT_CANDIDATES`] when
    /// unset; at least `k`, at most [`MAX_CANDIDATES`]).
    pub candidates: Option<usize>,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            k: 10,
            model: "als".into(),
            include_seen: false,
            genre: None,
            exact: false,
            rank: None,
            candidates: None,
        }
    }
}

impl QueryOptions {
    pub fn model(model: &str) -> Self {
        QueryOptions {
            model: model.to_owned(),
            ..QueryOptions::default()
        }
    }
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
    /// Two stages: `model` proposes candidates, `ranker` re-scores them and its top `k`
    /// are returned, e.g. `QueryOptions::model("youtube").candidates(200).rank("wide-deep")`.
    pub fn rank(mut self, ranker: &str) -> Self {
        self.rank = Some(ranker.to_owned());
        self
    }
    /// With [`QueryOptions::rank`]: how many candidates the model proposes.
    pub fn candidates(mut self, n: usize) -> Self {
        self.candidates = Some(n);
        self
    }
}

/// One result: an external id and its score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

/// A table's name and the width of its current version.
pub(crate) struct TableShape {
    pub name: String,
    pub dim: u64,
}

/// What a query reads from the database.
pub(crate) trait Source {
    fn user_id(&self, user: &str) -> Result<u32>;
    fn item_id(&self, item: &str) -> Result<u32>;
    fn item_name(&self, item: u32) -> Result<String>;
    /// A user's events in time order.
    fn history_dense(&self, user: u32) -> Result<Vec<Event>>;
    /// The user's searches in time order, from the live log.
    fn searches_dense(&self, user: u32) -> Result<Vec<SearchEvent>>;
    /// The user's attributes (empty when none were imported).
    fn user_attrs_dense(&self, user: u32) -> Result<Vec<(String, String)>>;
    /// The item's attributes as `features::item_fields` flattens them (empty when none).
    fn item_attrs_dense(&self, item: u32) -> Result<Vec<(String, String)>>;
    fn table(&self, name: &str) -> Result<Arc<TableView>>;
    /// The current versions of `names`, from one publish.
    fn tables_consistent(&self, names: &[&str]) -> Result<Vec<Arc<TableView>>>;
    /// The name and width of every table's current version.
    fn table_shapes(&self) -> Result<Vec<TableShape>>;
    fn served(&self, view: Arc<TableView>) -> Result<Served>;
    /// The items of genre `genre` (lowercase), one flag per dense item id.
    fn genre_rows(&self, genre: &str) -> Result<Option<Vec<bool>>>;
    /// The models parsed from stored tables, per published version ([`parsed::parsed`]).
    fn parsed_cache(&self) -> &parsed::ParsedCache;
}

/// Whether row `r` passes the genre filter (`None`: every row does).
pub(crate) fn in_genre(genre: &Option<Vec<bool>>, r: u32) -> bool {
    genre
        .as_ref()
        .is_none_or(|g| g.get(r as usize).copied().unwrap_or(false))
}

/// [`Queries::seen_items`] from a history already read (the paths that also score from
/// it read the log once per user).
pub(crate) fn seen_in(history: &[Event], include_seen: bool) -> Vec<u32> {
    if include_seen {
        return Vec::new();
    }
    let mut seen: Vec<u32> = history.iter().map(|e| e.item).collect();
    seen.sort_unstable();
    seen.dedup();
    seen
}

/// Each user's top `opts.k` of `items` for their query vector, as one batch through
/// the index, leaving out the user's `seen` items (sorted) and items outside the genre.
pub(crate) fn search_for_users<S: Queries + ?Sized>(
    db: &S,
    items: &Served,
    queries: &[Vec<f32>],
    seen: &[Vec<u32>],
    opts: &QueryOptions,
) -> Result<Vec<Vec<Hit>>> {
    search_for_users_dense(db, items, queries, seen, opts)?
        .into_iter()
        .map(|h| db.to_hits(h))
        .collect()
}

/// [`search_for_users`] with dense item ids: what a second stage re-scores before
/// naming only the items it returns.
pub(crate) fn search_for_users_dense<S: Queries + ?Sized>(
    db: &S,
    items: &Served,
    queries: &[Vec<f32>],
    seen: &[Vec<u32>],
    opts: &QueryOptions,
) -> Result<Vec<Vec<(u32, f32)>>> {
    let genre = db.allowed_genre(&opts.genre)?;
    let allow = |i: usize, r: u32| seen[i].binary_search(&r).is_err() && in_genre(&genre, r);
    let qs: Vec<&[f32]> = queries.iter().map(|q| &q[..]).collect();
    Ok(items.search_batch(&qs, Metric::Dot, opts.k, opts.exact, None, &allow))
}

/// How a model answers `recommend`.
enum Kind {
    Blend,
    ItemItem,
    Autoencoder,
    Youtube,
    Sequence,
    /// User and item vectors (als, bpr, sgd, popular...).
    Factor,
}

/// The kind of `model`: each kind publishes its own marker table, so at most one check
/// holds; `youtube`, the usual first stage, is asked first (each check is a table
/// lookup).
fn kind_of<S: Source + ?Sized>(db: &S, model: &str) -> Kind {
    if youtube::is_youtube(db, model) {
        Kind::Youtube
    } else if blend::is_blend(db, model) {
        Kind::Blend
    } else if is_item_item_model(db, model) {
        Kind::ItemItem
    } else if autoencoder::is_autoencoder(db, model) {
        Kind::Autoencoder
    } else if is_sequence_model(db, model) {
        Kind::Sequence
    } else {
        Kind::Factor
    }
}

/// `k` (results wanted) is at least 1.
fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        Err(Error::param("k", "must be at least 1"))
    } else {
        Ok(())
    }
}

/// Whether `opts` asks for two stages; a candidate count without a ranker is refused
/// (it would be silently ignored).
fn check_two_stage(opts: &QueryOptions) -> Result<bool> {
    match (&opts.rank, opts.candidates) {
        (Some(_), _) => Ok(true),
        (None, Some(_)) => Err(Error::param(
            "candidates",
            "a candidate count needs a ranker to re-score the candidates (rank)",
        )),
        (None, None) => Ok(false),
    }
}

/// The queries, for any [`Source`] (the `Db` facade's public methods call these).
pub(crate) trait Queries: Source {
    fn allowed_genre(&self, genre: &Option<String>) -> Result<Option<Vec<bool>>> {
        let Some(g) = genre else { return Ok(None) };
        self.genre_rows(&g.to_lowercase())?
            .map(Some)
            .ok_or_else(|| Error::param("genre", format!("no item has genre `{g}`")))
    }

    /// A model's users and items tables, from the same publish.
    fn model_tables(&self, model: &str) -> Result<[Arc<TableView>; 2]> {
        let (u, i) = (format!("{model}.users"), format!("{model}.items"));
        let mut v = self
            .tables_consistent(&[&u, &i])
            .map_err(|e| explain_model(self, model, Needs::UserVectors, e))?;
        let items = v.pop().expect("two tables");
        let users = v.pop().expect("two tables");
        Ok([users, items])
    }

    /// Items most similar to `item` by cosine over the model's item table.
    fn similar(&self, item: &str, opts: &QueryOptions) -> Result<Vec<Hit>> {
        check_k(opts.k)?;
        if autoencoder::is_autoencoder(self, &opts.model) {
            return autoencoder::similar(self, item, opts);
        }
        if youtube::is_youtube(self, &opts.model) {
            return youtube::similar(self, item, opts);
        }
        let iid = self.item_id(item)?;
        let table = item_vectors(self, &opts.model)?;
        if table.space() != RowSpace::Items {
            return Err(Error::InvalidInput(format!(
                "table `{}` does not hold items",
                table.name()
            )));
        }
        let served = self.served(table)?;
        let table = served.view();
        if iid as usize >= served.rows() {
            return Err(Error::NotInModel {
                kind: "item",
                id: item.to_owned(),
                model: opts.model.clone(),
            });
        }
        let Some(q) = served.row(iid as usize) else {
            return Err(Error::RowDeleted {
                kind: "item",
                id: item.to_owned(),
                table: table.name().to_owned(),
            });
        };
        if q.iter().all(|&x| x == 0.0) {
            return Err(Error::ZeroVector(format!(
                "item `{item}` in table `{}`: the item was too rare or unseen when model `{}` was trained (e.g. below its min_count)",
                table.name(),
                opts.model
            )));
        }
        let genre = self.allowed_genre(&opts.genre)?;
        let allow = |r: u32| r != iid && in_genre(&genre, r);
        let hits = served.search(&q, Metric::Cosine, opts.k, opts.exact, None, &allow);
        self.to_hits(hits)
    }

    /// The items with the highest predicted score for `user`; items the user has
    /// interacted with are left out unless `include_seen`. Sequence models (item2vec)
    /// answer from the user's recent items with the default [`SequenceQuery`];
    /// item-to-item models (ease) from the user's whole current history.
    fn recommend(&self, user: &str, opts: &QueryOptions) -> Result<Vec<Hit>> {
        check_k(opts.k)?;
        if check_two_stage(opts)? {
            return Ok(two_stage::recommend_batch(self, &[user], opts)?.remove(0));
        }
        match kind_of(self, &opts.model) {
            Kind::Blend => return Ok(blend::recommend_blend(self, &[user], opts)?.remove(0)),
            Kind::ItemItem => return Ok(recommend_item_item(self, &[user], opts)?.remove(0)),
            Kind::Autoencoder => return autoencoder::recommend(self, user, opts),
            Kind::Youtube => return youtube::recommend(self, user, opts),
            Kind::Sequence => {
                return recommend_sequence(self, user, opts, &SequenceQuery::default())
            }
            Kind::Factor => {}
        }
        let (users, items) = self.factor_tables(&opts.model)?;
        let (uid, q) = self.user_vector(&users, user, &opts.model)?;
        let seen = self.seen_items(uid, opts.include_seen)?;
        let genre = self.allowed_genre(&opts.genre)?;
        let allow = |r: u32| seen.binary_search(&r).is_err() && in_genre(&genre, r);
        let offset = items.view().offset();
        let hits = items.search(&q, Metric::Dot, opts.k, opts.exact, None, &allow);
        self.to_hits(hits.into_iter().map(|(i, s)| (i, s + offset)).collect())
    }

    /// `recommend` for many users at once (answers in order): the bulk job of a
    /// recommender, e.g. every user's list for tomorrow. For a factor model the users'
    /// vectors go through the item index as one batch ([`crate::TableSearcher::search_batch`]),
    /// which reads each list once for a group of users; the answers are the same. Any
    /// user `recommend` would refuse fails the whole call, naming the user.
    fn recommend_batch(&self, users: &[&str], opts: &QueryOptions) -> Result<Vec<Vec<Hit>>> {
        check_k(opts.k)?;
        if check_two_stage(opts)? {
            return two_stage::recommend_batch(self, users, opts);
        }
        match kind_of(self, &opts.model) {
            Kind::Blend => blend::recommend_blend(self, users, opts),
            Kind::ItemItem => recommend_item_item(self, users, opts),
            Kind::Autoencoder => autoencoder::recommend_batch(self, users, opts),
            Kind::Youtube => youtube::recommend_batch(self, users, opts),
            Kind::Sequence => users.iter().map(|u| self.recommend(u, opts)).collect(),
            Kind::Factor => self
                .factor_batch_dense(users, opts)?
                .into_iter()
                .map(|h| self.to_hits(h))
                .collect(),
        }
    }

    /// [`Queries::recommend_batch`] with dense item ids, for a second stage: the
    /// factor models and `youtube` answer without naming their items; any other model
    /// answers by name and its items are mapped back.
    fn candidates_dense(
        &self,
        users: &[&str],
        opts: &QueryOptions,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        match kind_of(self, &opts.model) {
            Kind::Youtube => return youtube::recommend_batch_dense(self, users, opts),
            Kind::Factor => return self.factor_batch_dense(users, opts),
            _ => {}
        }
        self.recommend_batch(users, opts)?
            .into_iter()
            .map(|hits| {
                hits.into_iter()
                    .map(|h| Ok((self.item_id(&h.id)?, h.score)))
                    .collect()
            })
            .collect()
    }

    /// A factor model's lists for `users` (dense item ids), as one batch search.
    fn factor_batch_dense(
        &self,
        users: &[&str],
        opts: &QueryOptions,
    ) -> Result<Vec<Vec<(u32, f32)>>> {
        let (served_users, items) = self.factor_tables(&opts.model)?;
        let mut queries = Vec::with_capacity(users.len());
        let mut seen: Vec<Vec<u32>> = Vec::with_capacity(users.len());
        for user in users {
            let (uid, q) = self.user_vector(&served_users, user, &opts.model)?;
            queries.push(q);
            seen.push(self.seen_items(uid, opts.include_seen)?);
        }
        let genre = self.allowed_genre(&opts.genre)?;
        let allow = |i: usize, r: u32| seen[i].binary_search(&r).is_err() && in_genre(&genre, r);
        let qs: Vec<&[f32]> = queries.iter().map(|q| &q[..]).collect();
        let offset = items.view().offset();
        let hits = items.search_batch(&qs, Metric::Dot, opts.k, opts.exact, None, &allow);
        Ok(hits
            .into_iter()
            .map(|h| h.into_iter().map(|(i, s)| (i, s + offset)).collect())
            .collect())
    }

    /// A factor model's served user and item tables, of one width.
    fn factor_tables(&self, model: &str) -> Result<(Served, Served)> {
        let [users, items] = self.model_tables(model)?;
        if users.dim() != items.dim() {
            return Err(Error::DimensionMismatch {
                expected: items.dim(),
                got: users.dim(),
            });
        }
        Ok((self.served(users)?, self.served(items)?))
    }

    /// `user`'s id and vector in the served user table of `model`.
    fn user_vector(&self, users: &Served, user: &str, model: &str) -> Result<(u32, Vec<f32>)> {
        let uid = self.user_id(user)?;
        if uid as usize >= users.rows() {
            return Err(Error::NotInModel {
                kind: "user",
                id: user.to_owned(),
                model: model.to_owned(),
            });
        }
        let Some(q) = users.row(uid as usize) else {
            return Err(Error::RowDeleted {
                kind: "user",
                id: user.to_owned(),
                table: users.view().name().to_owned(),
            });
        };
        Ok((uid, q))
    }

    /// The items `uid` interacted with, sorted (none when `include_seen`). A sorted list,
    /// not a bitmap of every item: at 1M items the bitmap's memset cost more than the
    /// history lookup.
    fn seen_items(&self, uid: u32, include_seen: bool) -> Result<Vec<u32>> {
        if include_seen {
            return Ok(Vec::new());
        }
        Ok(seen_in(&self.history_dense(uid)?, false))
    }

    /// The model's prediction for one (user, item) pair: dot product plus the table offset.
    fn predict(&self, user: &str, item: &str, model: &str) -> Result<f32> {
        if wide_deep::is_wide_deep(self, model) {
            return wide_deep::predict(self, user, item, model);
        }
        let (uid, iid) = (self.user_id(user)?, self.item_id(item)?);
        let [users, items] = self.model_tables(model)?;
        if users.dim() != items.dim() {
            return Err(Error::DimensionMismatch {
                expected: items.dim(),
                got: users.dim(),
            });
        }
        if uid as usize >= users.rows() || iid as usize >= items.rows() {
            return Err(Error::InvalidInput(format!(
                "`{user}` or `{item}` arrived after model `{model}` was trained"
            )));
        }
        Ok(items
            .row(iid as usize)
            .dot(&users.row(uid as usize).to_vec())
            + items.offset())
    }

    fn to_hits(&self, hits: Vec<(u32, f32)>) -> Result<Vec<Hit>> {
        hits.into_iter()
            .map(|(i, score)| {
                Ok(Hit {
                    id: self.item_name(i)?,
                    score,
                })
            })
            .collect()
    }
}

impl<S: Source> Queries for S {}
