//! Entry points for the fuzz targets in `fuzz/`: decode arbitrary bytes as every stored
//! value type. Not part of the API.

use crate::storage::attrs::{ItemAttrs, UserAttrs};
use crate::storage::backend::{Backend, MemBackend, WriteBatch};
use crate::storage::codec::{self, Tag};
use crate::storage::ids::IdBlock;
use crate::storage::jobs::{JobRecord, Policy};
use crate::storage::keys;
use crate::storage::log::{Log, Manifest};
use crate::storage::meta::Meta;
use crate::storage::tables::{CatalogEntry, TableView};

/// Decode `bytes` as each kind of stored value; must never panic.
pub fn decode_stored(bytes: &[u8]) {
    let what = || "fuzz input".to_string();
    let _ = codec::decode::<Meta>(Tag::Meta, bytes, &what);
    let _ = codec::decode::<Manifest>(Tag::Manifest, bytes, &what);
    let _ = codec::decode::<IdBlock>(Tag::IdBlock, bytes, &what);
    let _ = codec::decode::<ItemAttrs>(Tag::ItemAttrs, bytes, &what);
    let _ = codec::decode::<UserAttrs>(Tag::UserAttrs, bytes, &what);
    let _ = codec::decode::<JobRecord>(Tag::Job, bytes, &what);
    let _ = codec::decode::<Policy>(Tag::Policy, bytes, &what);
    let _ = codec::decode::<crate::storage::delta::StoredDelta>(Tag::Delta, bytes, &what);
    if let Ok(entry) = codec::decode::<CatalogEntry>(Tag::Catalog, bytes, &what) {
        // A catalog entry over a backend with no blocks must fail cleanly.
        let b = MemBackend::default();
        for v in &entry.versions {
            let _ = TableView::load(&b, &entry.name, v);
        }
    }
    // As a log segment, through the same reader the database uses.
    let b = MemBackend::default();
    let mut batch = WriteBatch::default();
    batch.put(keys::segment(0, 0), bytes.to_vec());
    batch.put(
        keys::manifest(0),
        codec::encode(
            Tag::Manifest,
            &Manifest {
                runs: vec![crate::storage::log::RunInfo { run: 0, events: 1 }],
            },
        ),
    );
    if b.apply(batch).is_ok() {
        if let Ok(log) = Log::load(&b) {
            let _ = log.verify(&b);
            let _ = log.history(&b, 0);
            let _ = log.snapshot(&b, u64::MAX);
        }
    }
}

/// One valid encoding of each stored value type (fuzz seeds, and the test below).
pub fn sample_values() -> Vec<Vec<u8>> {
    use crate::storage::attrs::Field;
    use crate::storage::log::{RunInfo, Segment};
    use crate::storage::tables::{TableBlock, VersionInfo};
    let version = VersionInfo {
        version: 1,
        rows: 2,
        dim: 2,
        rows_per_block: 8192,
        blocks: 1,
        space: 1,
        created_unix: 0,
        job: 1,
        watermark: 3,
        offset: 0.5,
        row_ids: vec![],
    };
    vec![
        codec::encode(
            Tag::Meta,
            &Meta {
                events: 3,
                users: 2,
                items: 2,
                ..Meta::default()
            },
        ),
        codec::encode(
            Tag::Manifest,
            &Manifest {
                runs: vec![RunInfo { run: 0, events: 1 }],
            },
        ),
        codec::encode(
            Tag::IdBlock,
            &IdBlock {
                first: 0,
                names: vec!["a".into(), "b".into()],
            },
        ),
        codec::encode(
            Tag::ItemAttrs,
            &ItemAttrs {
                title: Some("T".into()),
                genres: vec!["g".into()],
                text: None,
                fields: vec![Field {
                    name: "y".into(),
                    value: "1".into(),
                }],
            },
        ),
        codec::encode(Tag::UserAttrs, &UserAttrs::default()),
        codec::encode(
            Tag::Job,
            &JobRecord {
                id: 1,
                model: "als".into(),
                ..JobRecord::default()
            },
        ),
        codec::encode(
            Tag::Policy,
            &Policy {
                model: "als".into(),
                params: String::new(),
                every_events: 10,
            },
        ),
        codec::encode(
            Tag::Catalog,
            &CatalogEntry {
                name: "t".into(),
                versions: vec![version],
            },
        ),
        codec::encode(
            Tag::TableBlock,
            &TableBlock {
                first_row: 0,
                dim: 2,
                values: vec![1.0, 2.0, 3.0, 4.0],
            },
        ),
        codec::encode(
            Tag::Segment,
            &Segment {
                users: vec![0],
                items: vec![1],
                kinds: vec![1],
                values: vec![4.0],
                timestamps: vec![9],
                groups: vec![u32::MAX],
                seqs: vec![0],
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_their_corruptions_never_panic() {
        for v in sample_values() {
            decode_stored(&v);
            for i in 0..v.len() {
                let mut w = v.clone();
                w[i] ^= 0x5a;
                decode_stored(&w);
                decode_stored(&v[..i]);
            }
        }
        if let Ok(dir) = std::env::var("RECDB_WRITE_SEEDS") {
            for (i, v) in sample_values().iter().enumerate() {
                std::fs::write(format!("{dir}/value{i}"), v).unwrap();
            }
        }
    }
}
