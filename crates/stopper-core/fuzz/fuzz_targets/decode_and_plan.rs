//! cargo-fuzz's entry point: every input goes through the properties in
//! `../properties.rs` (also checked over the seeds by `tests/seeds.rs`).

#![no_main]

#[path = "../properties.rs"]
mod properties;

libfuzzer_sys::fuzz_target!(|data: &[u8]| properties::check(data));
