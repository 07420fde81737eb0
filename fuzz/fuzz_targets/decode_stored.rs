//! Every stored value type decoded from arbitrary bytes: corruption must be an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    recdb::testkit::fuzzing::decode_stored(data);
});
