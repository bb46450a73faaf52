//! `cargo fuzz run event_parser`: see `ferry_engine::fuzz::event_parser` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_engine::fuzz::event_parser(data));
