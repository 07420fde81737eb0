//! A published features encoder parsed from arbitrary bytes: damage must be an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    recdb::testkit::fuzzing::features_encoder(data);
});
