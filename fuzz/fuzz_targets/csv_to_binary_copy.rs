//! `cargo fuzz run csv_to_binary_copy`: see `ferry_engine::fuzz::csv_to_binary_copy` for the property.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferry_engine::fuzz::csv_to_binary_copy(data));
