//! Event readers on arbitrary bytes, in every format: an error is fine, a panic is not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [None, Some(recdb::Format::Tsv), Some(recdb::Format::Csv), Some(recdb::Format::JsonLines), Some(recdb::Format::Atomic)] {
        let _ = recdb::testkit::parse_events("fuzz.tsv", data, format);
    }
});
