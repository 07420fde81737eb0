//! Item and user readers on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [None, Some(recdb::Format::Tsv), Some(recdb::Format::Csv), Some(recdb::Format::JsonLines), Some(recdb::Format::Atomic)] {
        let _ = recdb::testkit::parse_items("fuzz.item", data, format);
        let _ = recdb::testkit::parse_users("fuzz.user", data, format);
    }
});
