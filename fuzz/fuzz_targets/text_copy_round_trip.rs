//! `cargo fuzz run text_copy_round_trip`: see `ferry_engine::fuzz::text_copy_round_trip` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_engine::fuzz::text_copy_round_trip(data));
