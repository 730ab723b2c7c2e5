//! The parity answers as a wasm module, to compare with the native bytes pinned in
//! `tests/golden.rs`:
//!
//! ```text
//! cargo build -p isl-elicit --release --target wasm32-unknown-unknown --example elicit_wasm_parity
//! node --input-type=module -e "
//!   import { readFileSync } from 'node:fs';
//!   const { instance } = await WebAssembly.instantiate(
//!     readFileSync('target/wasm32-unknown-unknown/release/examples/elicit_wasm_parity.wasm'), {});
//!   console.log(BigInt.asUintN(64, instance.exports.parity_hash()), instance.exports.parity_len());"
//! ```
//!
//! prints the same hash and length as `GOLDEN` in `tests/golden.rs`.

include!("parity/cases.rs");

/// xxh3-64 of [`parity_json`].
#[unsafe(no_mangle)]
pub extern "C" fn parity_hash() -> u64 {
    xxhash_rust::xxh3::xxh3_64(parity_json().as_bytes())
}

/// Length of [`parity_json`] in bytes.
#[unsafe(no_mangle)]
pub extern "C" fn parity_len() -> u64 {
    parity_json().len() as u64
}
