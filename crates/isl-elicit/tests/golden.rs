//! Byte-identical answers: the parity cases (`examples/parity/cases.rs`) hash to the pinned
//! value under any thread count and whichever vector width the CPU offers; the wasm32 build of
//! `examples/elicit_wasm_parity.rs` gives the same hash (command in that file).

include!("../examples/parity/cases.rs");

/// xxh3-64 and length of the parity JSON, as computed natively and by the wasm32 module.
const GOLDEN: (u64, usize) = (13_051_557_919_425_998_319, 12_488);

#[test]
fn parity_answers_are_pinned_and_thread_independent() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        pool.install(parity_json)
    };
    let one = run(1);
    assert_eq!(run(3), one, "thread count changed the answer");
    let got = (xxhash_rust::xxh3::xxh3_64(one.as_bytes()), one.len());
    assert_eq!(got, GOLDEN, "the parity answers changed: {}", &one[..one.len().min(400)]);
}
