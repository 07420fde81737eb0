//! The job abstraction: validated hyperparameters in, tables out.

use crate::error::OrPoisoned;
use crate::event::{Event, SearchEvent};
use crate::jobs::JobContext;
use crate::jobs::TableOutput;
use crate::Result;

/// What a job reads: every event up to a watermark, grouped by user in time order.
pub(crate) struct Snapshot {
    pub n_users: usize,
    pub n_items: usize,
    pub events: Vec<Event>,
    /// (tag, text) pairs the job asked for with [`Job::text_input`].
    pub texts: Vec<(String, String)>,
    /// Searches up to the watermark, grouped by user in time order (only when
    /// [`Job::reads`] asks for them).
    pub searches: Vec<SearchEvent>,
    /// Size of the search-token vocabulary (token ids are below it).
    pub n_tokens: usize,
    /// Attributes by dense user id (empty when a user has none; only when asked for).
    pub user_attrs: Vec<Vec<(String, String)>>,
    /// Attributes by dense item id, as [`crate::features::item_fields`] flattens them
    /// (only when asked for).
    pub item_attrs: Vec<Vec<(String, String)>>,
    /// The published tables [`Job::input_tables`] names, in that order, as of the
    /// job's start (one consistent set of versions). A `users`/`items` table's row r
    /// is dense id r; ids added after it was published have no row (`r >= rows()`).
    pub tables: Vec<std::sync::Arc<crate::storage::tables::TableView>>,
    /// By dense user id: the (item, score) list [`Job::candidates`] names, best first,
    /// the user's own items included (empty when not asked for, or for a user the
    /// model cannot answer).
    pub candidates: Vec<Vec<(u32, f32)>>,
    /// With [`Job::candidate_prefixes`] `L > 0` instead of `candidates`: for each user
    /// and each of the user's last `L` events, the retrieval model's top list as it
    /// serves from the history before that event (that history's items left out, as
    /// serving leaves out the seen items). Users in dense-id order, each user's events
    /// oldest first.
    pub next_lists: Vec<NextList>,
}

/// One list of [`Snapshot::next_lists`]: what the retrieval model proposed for `user`
/// just before the event of `target`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NextList {
    pub user: u32,
    /// The item of the event the list was made before.
    pub target: u32,
    /// That event's index in [`Snapshot::events`].
    pub at: usize,
    /// (item, score), best first.
    pub list: Vec<(u32, f32)>,
}

/// What a job reads besides the interaction log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Reads {
    pub searches: bool,
    pub user_attrs: bool,
    pub item_attrs: bool,
}

/// Texts a job reads besides the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum TextInput {
    #[default]
    None,
    /// Imported documents, in tag order.
    Docs,
    /// Every item in dense-id order: its id, and title + genres + text.
    ItemTexts,
    /// Every item in dense-id order: its id, with empty text.
    ItemNames,
}

impl Snapshot {
    /// A snapshot of these events and nothing else (no texts, searches or attributes).
    pub fn of_events(n_users: usize, n_items: usize, events: Vec<Event>) -> Snapshot {
        Snapshot {
            n_users,
            n_items,
            events,
            texts: Vec::new(),
            searches: Vec::new(),
            n_tokens: 0,
            user_attrs: Vec::new(),
            item_attrs: Vec::new(),
            tables: Vec::new(),
            candidates: Vec::new(),
            next_lists: Vec::new(),
        }
    }

    /// (user, item, value) triples, for the matrix-factorization views.
    pub fn triples(&self) -> Vec<(u32, u32, f32)> {
        self.events
            .iter()
            .map(|e| (e.user, e.item, e.value))
            .collect()
    }
}

/// A training job. Built (and so validated) from [`crate::Params`] before anything runs.
pub(crate) trait Job: Send + Sync {
    /// The model name; tables are published as `<name>.users`, `<name>.items`, ...
    fn model(&self) -> &str;
    /// The validated hyperparameters, as JSON, for the job record.
    fn params_json(&self) -> String;
    fn run(&self, snapshot: &Snapshot, ctx: &JobContext<'_>) -> Result<Vec<TableOutput>>;
    /// Texts to read into [`Snapshot::texts`].
    fn text_input(&self) -> TextInput {
        TextInput::None
    }
    /// Searches and attributes to read into the snapshot.
    fn reads(&self) -> Reads {
        Reads::default()
    }
    /// Published tables to read into [`Snapshot::tables`] (an initialisation, frozen
    /// features): each must exist when the job is started.
    fn input_tables(&self) -> Vec<String> {
        Vec::new()
    }
    /// A retrieval model and a count: each user's top list of it, as the database serves
    /// it when the job starts, goes into [`Snapshot::candidates`]. The model must be
    /// trained first.
    fn candidates(&self) -> Option<(String, usize)> {
        None
    }
    /// With [`Job::candidates`]: read each user's last `L` events' lists made from the
    /// history before each ([`Snapshot::next_lists`]) instead of one list per user from
    /// the whole history (0).
    fn candidate_prefixes(&self) -> usize {
        0
    }
    /// Trained models this job reads at query time (a blend's components): each must
    /// exist when the job is started.
    fn requires_models(&self) -> Vec<String> {
        Vec::new()
    }
    /// A line about the finished run (e.g. throughput) for the job record's message.
    fn summary(&self) -> Option<String> {
        None
    }
}

/// The one-line summary a job leaves for its record, set when its run finishes.
#[derive(Default)]
pub(crate) struct Summary(std::sync::Mutex<Option<String>>);

impl Summary {
    pub fn get(&self) -> Option<String> {
        self.0.lock().recover().clone()
    }

    /// Corpus words per second: `tokens × epochs` over the time since `started`.
    pub fn words_per_second(&self, tokens: usize, epochs: usize, started: std::time::Instant) {
        let rate = (tokens as f64 * epochs as f64) / started.elapsed().as_secs_f64().max(1e-9);
        *self.0.lock().recover() = Some(format!("{rate:.0} corpus words/s"));
    }
}
