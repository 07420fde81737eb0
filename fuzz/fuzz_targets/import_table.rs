//! `import table` readers on arbitrary bytes: f32 rows at several dims, ids, TSV vectors.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for dim in [1, 3, 64] {
        if let Ok(rows) = recdb::parse_f32_rows("fuzz.f32", data, dim) {
            assert!(rows.iter().all(|x| x.is_finite()) && rows.len() % dim == 0);
        }
    }
    let _ = recdb::testkit::parse_ids("fuzz.ids", data, 3);
    if let Ok(p) = recdb::parse_tsv_vectors("fuzz.tsv", data) {
        assert_eq!(p.rows.len(), p.ids.len() * p.dim);
    }
});
