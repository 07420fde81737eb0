//! A wide-deep ranker's stored network parsed from arbitrary values: damage must be an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    recdb::testkit::fuzzing::wide_deep_ranker(data);
});
