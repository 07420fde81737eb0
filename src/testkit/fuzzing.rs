//! Entry points for the fuzz targets in `fuzz/`: decode arbitrary bytes as every stored
//! value type. Not part of the API.
// why: test and bench support; its sizes are small parameters, and its floats are
// sampled in f64 and stored as f32 on purpose.
#![allow(clippy::cast_possible_truncation)]

use crate::index::delta::{DeltaOp, StoredDelta};
use crate::index::stored::{self, ArchivedPostingBlock, IndexHeader};
use crate::jobs::record::{JobRecord, Policy};
use crate::storage::attrs::{ItemAttrs, UserAttrs};
use crate::storage::backend::{Backend, MemBackend, WriteBatch};
use crate::storage::codec::{self, Tag};
use crate::storage::docs::StoredDoc;
use crate::storage::id_hash::IdBucket;
use crate::storage::ids::IdBlock;
use crate::storage::keys;
use crate::storage::log::{ArchivedSegment, Log, Manifest};
use crate::storage::meta::Meta;
use crate::storage::tables::{ArchivedTableBlock, CatalogEntry, TableView};

/// `bytes` as little-endian f32s (a trailing partial value dropped), as a one-column
/// stored network table holds them.
fn le_f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A one-column stored network table (`<model>.tower`, `.ranker`, `.net`) as the bytes
/// its fuzz target parses; with `RECDB_WRITE_SEEDS=DIR` also written to `DIR/name`,
/// a seed of the target.
pub fn network_seed(table: &TableView, name: &str) -> Vec<u8> {
    let bytes: Vec<u8> = (0..table.rows())
        .flat_map(|r| table.row(r).get(0).to_le_bytes())
        .collect();
    if let Ok(dir) = std::env::var("RECDB_WRITE_SEEDS") {
        if let Err(e) = std::fs::write(format!("{dir}/{name}"), &bytes) {
            panic!("writing the seed {dir}/{name}: {e}");
        }
    }
    bytes
}

/// Parse `bytes` (little-endian f32s) as an autoencoder's stored network (`<model>.net`);
/// must never panic. True when the values parse.
pub fn autoencoder_net(bytes: &[u8]) -> bool {
    crate::train::autoencoder::stored::fuzz_parse(&le_f32s(bytes))
}

/// Parse `bytes` (little-endian f32s) as a `youtube` model's stored tower
/// (`<model>.tower`); must never panic. True when the values parse.
pub fn youtube_tower(bytes: &[u8]) -> bool {
    crate::train::youtube::stored::fuzz_parse(&le_f32s(bytes))
}

/// Parse `bytes` (little-endian f32s) as a `wide-deep` ranker's stored network
/// (`<model>.ranker`); must never panic. True when the values parse.
pub fn wide_deep_ranker(bytes: &[u8]) -> bool {
    crate::train::wide_deep::stored::fuzz_parse(&le_f32s(bytes))
}

/// Parse `bytes` as a published features encoder; must never panic, and damage must be
/// [`crate::Error::Corrupted`]. True when they parse: then the encoder writes the same
/// bytes back and encodes a record into its declared shape, finite numbers only.
pub fn features_encoder(bytes: &[u8]) -> bool {
    match crate::features::Encoder::from_bytes(bytes) {
        Ok(enc) => {
            assert_eq!(
                enc.to_bytes(),
                bytes,
                "a parsed encoder writes its bytes back"
            );
            let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
            for attrs in [
                vec![],
                vec![
                    pair("gender", "M"),
                    pair("genres", "A|B"),
                    pair("year", "1e400"),
                ],
                vec![
                    pair("zip_code", "48067"),
                    pair("age", "-0"),
                    pair("year", "1995"),
                ],
            ] {
                let e = enc.encode(&attrs);
                assert_eq!(e.ids.len(), enc.slots().len());
                for (ids, slot) in e.ids.iter().zip(enc.slots()) {
                    assert!(!ids.is_empty() && ids.iter().all(|&i| (i as usize) < slot.vocab));
                }
                assert_eq!(e.numeric.len(), enc.numeric_width());
                assert!(e.numeric.iter().all(|x| x.is_finite()));
            }
            true
        }
        Err(crate::Error::Corrupted { .. }) => false,
        Err(e) => panic!("damage must be reported as corruption, not `{e}`"),
    }
}

/// Encoders as bytes, every kind of field among them: the fuzz target's seeds.
pub fn features_encoder_samples() -> Vec<Vec<u8>> {
    use crate::features::{Encoder, Schema};
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    let rows = vec![
        vec![
            pair("gender", "F"),
            pair("age", "25"),
            pair("zip_code", "48067"),
            pair("genres", "Comedy|Drama"),
            pair("year", "1995"),
        ],
        vec![
            pair("gender", "M"),
            pair("age", "18"),
            pair("zip_code", "10001-2"),
            pair("genres", "Drama"),
        ],
    ];
    [
        "",
        "gender:cat,age:cat",
        "gender:cat:min=2,zip_code:prefix=2,genres:multi,year:num",
        "zip_code:hash=1000,genres:multi=,,year:num",
    ]
    .iter()
    .filter_map(|s| s.parse::<Schema>().ok())
    .filter_map(|s| Encoder::fit(&s, &rows).ok())
    .chain(std::iter::once(Encoder::fit(&Encoder::infer(&rows), &rows).ok()).flatten())
    .map(|e| e.to_bytes())
    .collect()
}

/// Decode `bytes` as each kind of stored value; must never panic. Returns the tag byte
/// of every type the bytes decoded as (normally none or one), so a test can check that
/// every [`Tag`] is reached.
pub fn decode_stored(bytes: &[u8]) -> Vec<u8> {
    let what = || "fuzz input".to_string();
    let mut ok = Vec::new();
    let mut hit = |tag: Tag, decoded: bool| {
        if decoded {
            ok.push(tag as u8);
        }
    };
    hit(
        Tag::SearchHeader,
        codec::decode::<crate::storage::log::SearchHeader>(Tag::SearchHeader, bytes, &what).is_ok(),
    );
    hit(
        Tag::Meta,
        codec::decode::<Meta>(Tag::Meta, bytes, &what).is_ok(),
    );
    hit(
        Tag::Manifest,
        codec::decode::<Manifest>(Tag::Manifest, bytes, &what).is_ok(),
    );
    hit(
        Tag::IdBlock,
        codec::decode::<IdBlock>(Tag::IdBlock, bytes, &what).is_ok(),
    );
    hit(
        Tag::IdBucket,
        codec::decode::<IdBucket>(Tag::IdBucket, bytes, &what).is_ok(),
    );
    hit(
        Tag::ItemAttrs,
        codec::decode::<ItemAttrs>(Tag::ItemAttrs, bytes, &what).is_ok(),
    );
    hit(
        Tag::UserAttrs,
        codec::decode::<UserAttrs>(Tag::UserAttrs, bytes, &what).is_ok(),
    );
    hit(
        Tag::Job,
        codec::decode::<JobRecord>(Tag::Job, bytes, &what).is_ok(),
    );
    hit(
        Tag::Policy,
        codec::decode::<Policy>(Tag::Policy, bytes, &what).is_ok(),
    );
    hit(
        Tag::Doc,
        codec::decode::<StoredDoc>(Tag::Doc, bytes, &what).is_ok(),
    );
    hit(
        Tag::Delta,
        codec::decode::<StoredDelta>(Tag::Delta, bytes, &what).is_ok(),
    );
    if let Ok(entry) = codec::decode::<CatalogEntry>(Tag::Catalog, bytes, &what) {
        hit(Tag::Catalog, true);
        // A catalog entry over a backend with no blocks must fail cleanly.
        let b = MemBackend::default();
        for v in &entry.versions {
            let _ = TableView::load(&b, &entry.name, v);
        }
    }
    hit(
        Tag::TableBlock,
        codec::access::<ArchivedTableBlock>(Tag::TableBlock, bytes, &what).is_ok(),
    );
    // As an index header, through the reader the database uses (shape taken from the
    // header itself so the consistency checks run; its posting blocks are missing).
    if let Ok(h) = codec::decode::<IndexHeader>(Tag::IndexHeader, bytes, &what) {
        hit(Tag::IndexHeader, true);
        let b = MemBackend::default();
        let mut batch = WriteBatch::default();
        batch.put(keys::index_block("t", 1, 0), bytes.to_vec());
        if b.apply(batch).is_ok() {
            let _ = stored::load(&b, "t", 1, h.table_rows as usize, h.dim as usize);
        }
    }
    // As a posting block: behind a header that claims exactly its shape, so the reader
    // goes on to check its row ids.
    if let Ok(p) = codec::access::<ArchivedPostingBlock>(Tag::Postings, bytes, &what) {
        hit(Tag::Postings, true);
        let (first, end) = (p.first_list.to_native(), p.end_list.to_native());
        let n = p.ids.len();
        // All rows in the last list; the width is the one whose packed length matches.
        // (Lists are capped so a hostile `end_list` cannot make the harness allocate.)
        let lists = (end as usize).clamp(1, 4096);
        let mut offsets = vec![0u32; lists + 1];
        offsets[lists] = n as u32;
        let per_dim = crate::index::code_bytes(&offsets, 2) / 2;
        if first == 0
            && end as usize == lists
            && n > 0
            && per_dim > 0
            && p.codes.len() % (2 * per_dim) == 0
        {
            let dim = p.codes.len() / per_dim;
            let header = IndexHeader {
                format: stored::INDEX_FORMAT,
                metric: 0,
                dim: dim as u32,
                table_rows: n as u32,
                lists: lists as u32,
                nprobe: 1,
                rerank: 0,
                phi: 1.0,
                seed: 0,
                target_recall: 0.9,
                recall: 1.0,
                build_seconds: 0.0,
                centroids: vec![0.0; lists * dim],
                half_norms: vec![0.0; lists],
                levels: (0..dim).flat_map(|_| (0..16).map(|l| l as f32)).collect(),
                offsets,
                block_lists: vec![0, lists as u32],
                code_bytes: p.codes.len() as u64,
                placed: 0,
            };
            let b = MemBackend::default();
            let mut batch = WriteBatch::default();
            batch.put(
                keys::index_block("t", 1, 0),
                codec::encode(Tag::IndexHeader, &header),
            );
            batch.put(keys::index_block("t", 1, 1), bytes.to_vec());
            if b.apply(batch).is_ok() {
                let _ = stored::load(&b, "t", 1, n, dim);
            }
        }
    }
    hit(
        Tag::Segment,
        codec::access::<ArchivedSegment>(Tag::Segment, bytes, &what).is_ok(),
    );
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
        if let Ok(log) = Log::<crate::event::Event>::load(&b) {
            let _ = log.verify(&b);
            let _ = log.history(&b, 0);
            let _ = log.snapshot(&b, u64::MAX);
        }
    }
    // As a search segment, through the search log's reader.
    use crate::storage::log::Record;
    let mut searches = Vec::new();
    hit(
        Tag::SearchSegment,
        crate::event::SearchEvent::decode_run(
            bytes,
            false,
            0,
            u32::MAX,
            u64::MAX,
            &what,
            &mut searches,
        )
        .is_ok(),
    );
    ok
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
            Tag::IdBucket,
            &IdBucket {
                names: vec!["a".into(), "b".into()],
                ids: vec![1, 0],
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
            Tag::Delta,
            &StoredDelta {
                next_seq: 2,
                tombstones: vec![0],
                ops: vec![DeltaOp {
                    seq: 1,
                    row: 2,
                    id: "c".into(),
                    values: vec![0.5, 0.25],
                }],
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
        codec::encode(
            Tag::SearchSegment,
            &crate::storage::log::SearchSegment {
                users: vec![0, 1],
                timestamps: vec![5, 9],
                seqs: vec![1, 2],
                ends: vec![2, 3],
                tokens: vec![0, 1, 0],
            },
        ),
        codec::encode(
            Tag::SearchHeader,
            &crate::storage::log::SearchHeader {
                searches: 2,
                tokens: 2,
            },
        ),
    ]
}

/// Every stored value of a small real database that holds one of each kind (events,
/// ids, item and user attributes, documents, a finished job and its tables, a retrain
/// policy, an imported table with an index), as written by the database itself: the
/// `decode_stored` seeds come from here, so they follow any change of a stored format.
pub fn stored_values() -> crate::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    use crate::{Db, EventKind, ItemRecord, Params, RowSpace, TrainOptions, UserRecord};
    let db = Db::temporary()?;
    let mut batch = db.batch();
    for i in 0..40u32 {
        let (u, it) = (format!("u{}", i % 7), format!("i{}", i % 11));
        let group = (i % 3 == 0).then(|| format!("s{}", i / 3));
        batch.push_in_group(
            &u,
            &it,
            EventKind::Rating,
            (i % 5 + 1) as f32,
            i as i64,
            group.as_deref(),
        )?;
        if i % 4 == 0 {
            batch.push_search(&u, &format!("toy story {i}"), i as i64)?;
        }
    }
    batch.commit()?;
    db.put_items(&[ItemRecord {
        id: "i0".into(),
        title: Some("Toy Story".into()),
        genres: vec!["Animation".into(), "Comedy".into()],
        text: Some("toys come alive".into()),
        attrs: vec![("release_year".into(), "1995".into())],
    }])?;
    db.put_users(&[UserRecord {
        id: "u0".into(),
        attrs: vec![("age".into(), "24".into())],
    }])?;
    db.put_docs(&[("d0".into(), "a short document".into())])?;
    db.train("popular", &Params::new(), &TrainOptions::default())?;
    db.set_retrain_policy("popular", &Params::new(), 1000)?;
    let (n, dim) = (64usize, 4usize);
    let rows: Vec<f32> = (0..n * dim)
        .map(|k| ((k * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    db.put_table(
        "vecs",
        RowSpace::Other,
        dim,
        &rows,
        (0..n).map(|r| format!("r{r}")).collect(),
    )?;
    db.build_index("vecs", &crate::IndexOptions::default())?;
    db.upsert_rows("vecs", &[("r64".into(), vec![0.5; dim])])?;
    db.delete_rows("vecs", &["r3".into()])?;
    db.flush()?;
    Ok(db
        .backend()
        .scan_prefix(b"")?
        .into_iter()
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect())
}

/// Every tag byte, by a match without a wildcard: a new [`Tag`] variant fails to compile
/// here until it is listed, and then the test below requires a stored value of it.
#[cfg(test)]
fn all_tags() -> Vec<u8> {
    let check = |t: Tag| match t {
        Tag::Meta
        | Tag::Segment
        | Tag::Manifest
        | Tag::IdBlock
        | Tag::IdBucket
        | Tag::ItemAttrs
        | Tag::UserAttrs
        | Tag::Catalog
        | Tag::TableBlock
        | Tag::Job
        | Tag::Policy
        | Tag::IndexHeaderV2
        | Tag::IndexHeader
        | Tag::Postings
        | Tag::Doc
        | Tag::Delta
        | Tag::SearchSegment
        | Tag::SearchHeader => t as u8,
    };
    [
        Tag::Meta,
        Tag::Segment,
        Tag::Manifest,
        Tag::IdBlock,
        Tag::IdBucket,
        Tag::ItemAttrs,
        Tag::UserAttrs,
        Tag::Catalog,
        Tag::TableBlock,
        Tag::Job,
        Tag::Policy,
        // Tag::IndexHeaderV2 is only read (to be ignored), never written.
        Tag::IndexHeader,
        Tag::Postings,
        Tag::Doc,
        Tag::Delta,
        Tag::SearchSegment,
        Tag::SearchHeader,
    ]
    .into_iter()
    .map(check)
    .collect()
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
    }

    #[test]
    fn every_tag_is_reached_by_the_decoder() {
        let values = stored_values().unwrap();
        let mut reached = std::collections::BTreeSet::new();
        // The format marker (key `F`) is the one value that is not framed.
        let values: Vec<_> = values.into_iter().filter(|(k, _)| k != b"F").collect();
        for (k, v) in &values {
            let tags = decode_stored(v);
            assert!(
                tags.contains(&v[0]),
                "key {k:?}: tag {} not decoded ({tags:?})",
                v[0]
            );
            reached.extend(tags);
        }
        for v in sample_values() {
            reached.extend(decode_stored(&v));
        }
        let all: std::collections::BTreeSet<u8> = all_tags().into_iter().collect();
        let from_db: std::collections::BTreeSet<u8> = values.iter().map(|(_, v)| v[0]).collect();
        assert_eq!(
            from_db, all,
            "the real database must store a value of every tag"
        );
        assert_eq!(reached, all);
    }

    /// `RECDB_WRITE_SEEDS=$PWD/fuzz/seeds/decode_stored cargo test --lib fuzzing` rewrites
    /// the seeds: one real stored value per (tag, key kind), plus the hand-made samples.
    #[test]
    fn write_decode_stored_seeds() {
        let Ok(dir) = std::env::var("RECDB_WRITE_SEEDS") else {
            return;
        };
        let mut seen = std::collections::BTreeSet::new();
        for (k, v) in stored_values().unwrap() {
            if k != b"F" && seen.insert((v[0], k[0])) {
                std::fs::write(format!("{dir}/db-tag{:02}-key{:02x}", v[0], k[0]), &v).unwrap();
            }
        }
        for (i, v) in sample_values().iter().enumerate() {
            std::fs::write(format!("{dir}/value{i}"), v).unwrap();
        }
    }
}
