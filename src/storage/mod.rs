//! Everything on disk: the backend, the key layout and the typed stores built on it.
//! Nothing outside this module knows that sled is underneath.
pub(crate) mod attrs;
pub(crate) mod backend;
pub(crate) mod codec;
pub(crate) mod docs;
pub(crate) mod durable;
pub(crate) mod id_cache;
pub(crate) mod id_hash;
pub(crate) mod ids;
pub(crate) mod imports;
pub(crate) mod keys;
pub(crate) mod log;
pub(crate) mod meta;
pub(crate) mod owner;
pub(crate) mod snapshot;
pub(crate) mod state;
pub(crate) mod tables;
pub(crate) mod vacuum;
