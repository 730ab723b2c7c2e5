//! Golden answers: the bytes of a set of answers are pinned by their xxh3-64, the same on every
//! target (the wasm32 build of `examples/wasm_parity.rs` computes the same hash). A change here
//! changes cached answers: bump the crate version (and so `ENGINE_VERSION`) with it.

include!("../examples/parity/cases.rs");

/// xxh3-64 and length of the parity answers (native, and wasm32 under node).
const GOLDEN: (u64, usize) = (7_683_557_289_936_813_505, 3233);

#[test]
fn answers_match_the_golden_bytes() {
    let text = parity_json();
    let got = (xxhash_rust::xxh3::xxh3_64(text.as_bytes()), text.len());
    assert_eq!(got, GOLDEN, "{text}");
}
