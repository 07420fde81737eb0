//! The facade of the queries (`similar`, `recommend`, `predict`): the logic is in
//! `query`, which reads the database through [`Source`], implemented here.

use std::sync::Arc;

use super::{Db, Served};
use crate::event::{Event, SearchEvent};
use crate::query::{self, Hit, Queries, QueryOptions, SequenceQuery, Source, TableShape};
use crate::storage::tables::TableView;
use crate::Result;

impl Db {
    /// Items most similar to `item` by cosine over the model's item table.
    pub fn similar(&self, item: &str, opts: &QueryOptions) -> Result<Vec<Hit>> {
        Queries::similar(self, item, opts)
    }

    /// The items with the highest predicted score for `user`; items the user has
    /// interacted with are left out unless `include_seen`. Sequence models (item2vec)
    /// answer from the user's recent items with the default [`SequenceQuery`].
    pub fn recommend(&self, user: &str, opts: &QueryOptions) -> Result<Vec<Hit>> {
        Queries::recommend(self, user, opts)
    }

    /// [`Db::recommend`] for many users at once (answers in order): the bulk job of a
    /// recommender, e.g. every user's list for tomorrow. For a factor model the users'
    /// vectors go through the item index as one batch ([`crate::TableSearcher::search_batch`]),
    /// which reads each list once for a group of users; the answers are the same. Any
    /// user `recommend` would refuse fails the whole call, naming the user.
    pub fn recommend_batch(&self, users: &[&str], opts: &QueryOptions) -> Result<Vec<Vec<Hit>>> {
        Queries::recommend_batch(self, users, opts)
    }

    /// `recommend` for a sequence model (one that published `<model>.items` and
    /// `<model>.out`), with the query built and scored as `sq` says.
    pub fn recommend_sequence(
        &self,
        user: &str,
        opts: &QueryOptions,
        sq: &SequenceQuery,
    ) -> Result<Vec<Hit>> {
        query::recommend_sequence(self, user, opts, sq)
    }

    /// The model's prediction for one (user, item) pair: dot product plus the table offset.
    pub fn predict(&self, user: &str, item: &str, model: &str) -> Result<f32> {
        Queries::predict(self, user, item, model)
    }

    /// `items` (an application's candidates) scored for `user` by the ranking model
    /// `model` (a `wide-deep` job): each hit's score is the probability of a click,
    /// best first.
    pub fn rank(&self, user: &str, items: &[&str], model: &str) -> Result<Vec<Hit>> {
        query::wide_deep::rank(self, user, items, model)
    }
}

impl Source for Db {
    fn user_id(&self, user: &str) -> Result<u32> {
        Db::user_id(self, user)
    }
    fn item_id(&self, item: &str) -> Result<u32> {
        Db::item_id(self, item)
    }
    fn item_name(&self, item: u32) -> Result<String> {
        Db::item_name(self, item)
    }
    fn history_dense(&self, user: u32) -> Result<Vec<Event>> {
        Db::history_dense(self, user)
    }
    fn searches_dense(&self, user: u32) -> Result<Vec<SearchEvent>> {
        self.state()?.searches.history(self.backend(), user)
    }
    fn user_attrs_dense(&self, user: u32) -> Result<Vec<(String, String)>> {
        let b = self.backend();
        Ok(
            crate::storage::attrs::get_user(b, user, &format!("#{user}"))?
                .map(|r| r.attrs)
                .unwrap_or_default(),
        )
    }
    fn item_attrs_dense(&self, item: u32) -> Result<Vec<(String, String)>> {
        let b = self.backend();
        Ok(
            crate::storage::attrs::get_item(b, item, &format!("#{item}"))?
                .map(|r| crate::features::item_fields(&r))
                .unwrap_or_default(),
        )
    }
    fn table(&self, name: &str) -> Result<Arc<TableView>> {
        Db::table(self, name)
    }
    fn tables_consistent(&self, names: &[&str]) -> Result<Vec<Arc<TableView>>> {
        Db::tables_consistent(self, names)
    }
    fn table_shapes(&self) -> Result<Vec<TableShape>> {
        Ok(self
            .tables()?
            .into_iter()
            .map(|t| TableShape {
                name: t.name,
                dim: t.dim,
            })
            .collect())
    }
    fn served(&self, view: Arc<TableView>) -> Result<Served> {
        Db::served(self, view)
    }
    fn genre_rows(&self, genre: &str) -> Result<Option<Vec<bool>>> {
        Ok(self.genre_index()?.by_genre.get(genre).cloned())
    }
    fn parsed_cache(&self) -> &crate::query::parsed::ParsedCache {
        &self.inner.parsed
    }
}
