//! Support code for tests, benches and fuzzing, behind the `testkit` cargo feature (not
//! part of the API an application uses): deterministic synthetic data, the word2vec
//! bench's text and CPU clock, and the fuzz targets' entry points. The crate's own tests
//! and benches get the feature through the self dev-dependency in Cargo.toml.

// why: test and bench support of bounded, test-chosen sizes.
#![allow(clippy::cast_possible_truncation)]

pub mod fuzzing;
#[cfg(test)]
mod tests;
mod vectors;

// The parsers on their own, without a database: for the fuzz targets and the ingest bench.
pub use crate::ingest::{
    parse_event_rows, parse_events, parse_ids, parse_items, parse_users, read_events,
};
pub use crate::synth::searches::{generate_searches, genre_words, SearchConfig, SynthSearch};
pub use crate::synth::{generate, Synth, SynthConfig};
pub use crate::train::autoencoder::bench::AutoencoderEpochs;
pub use crate::train::ease::{
    fit_table as ease_fit, Penalty as EasePenalty, Precision as EasePrecision,
};
pub use crate::train::nn::gemm::gemm as nn_gemm;
pub use crate::train::sgns::{pool_cpu_seconds, ZipfText};
pub use crate::train::wide_deep::bench::WideDeepEpoch;
pub use crate::train::youtube::bench::YoutubeEpochs;
pub use vectors::{clustered_vectors, generate_dense, near_duplicate_clusters};

/// Forget the networks `db` parsed from its tables, so the next query parses again (as
/// every query did before they were cached): the serving bench's "uncached" figure.
pub fn forget_parsed_models(db: &crate::Db) {
    db.inner.parsed.clear();
}
