//! `cargo fuzz run spec_parser`: see `ferry_engine::fuzz::spec_parser` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_engine::fuzz::spec_parser(data));
