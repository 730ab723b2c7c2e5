//! Philox4x32-10 on the GPU against the Random123 known-answer vectors and the CPU generator.

mod common;

#[test]
fn random123_known_answers_on_the_gpu() {
    let Some(gpu) = common::engine() else { return };
    // Random123 kat_vectors, "philox4x32 10" lines: counter, key -> output.
    let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        ([0; 4], [0; 2], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
        ([u32::MAX; 4], [u32::MAX; 2], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    let inputs: Vec<([u32; 4], [u32; 2])> = cases.iter().map(|c| (c.0, c.1)).collect();
    let got = gpu.philox(&inputs).expect("philox on the GPU");
    for (g, c) in got.iter().zip(&cases) {
        assert_eq!(*g, c.2, "counter {:08x?} key {:08x?}", c.0, c.1);
    }
}

#[test]
fn gpu_philox_matches_the_cpu_on_many_counters() {
    let Some(gpu) = common::engine() else { return };
    let mut inputs = Vec::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..4096 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let a = (x >> 32) as u32;
        let b = x as u32;
        inputs.push(([a, b ^ 0x5555_5555, a.rotate_left(7), b.rotate_right(3)], [b, a ^ 0xdead_beef]));
    }
    let got = gpu.philox(&inputs).expect("philox on the GPU");
    for (g, (c, k)) in got.iter().zip(&inputs) {
        assert_eq!(*g, isl_mc::rng::philox4x32_10(*c, *k));
    }
}

/// Both ways of forming Philox's 64-bit products give the Random123 bits: 64-bit shader
/// integers where the adapter has them (the default) and the 16-bit emulation every adapter runs.
#[test]
fn both_multiplies_give_the_cpu_generators_bits() {
    let Some(gpu) = common::engine() else { return };
    eprintln!("default engine: wide multiply {}", gpu.adapter().wide_multiply);
    let narrow = common::engine_with(isl_gpu::GpuOptions { wide_multiply: false, ..isl_gpu::GpuOptions::default() })
        .expect("a second engine on the same adapter");
    assert!(!narrow.adapter().wide_multiply);
    let inputs: Vec<([u32; 4], [u32; 2])> = (0..1024u32)
        .map(|i| ([i.wrapping_mul(0x9E37_79B9), !i, i << 7, i ^ 0xffff_0000], [i.rotate_left(13), 0xdead_beef ^ i]))
        .collect();
    let want: Vec<[u32; 4]> = inputs.iter().map(|(c, k)| isl_mc::rng::philox4x32_10(*c, *k)).collect();
    assert_eq!(narrow.philox(&inputs).expect("16-bit products"), want);
    assert_eq!(gpu.philox(&inputs).expect("default products"), want);
}
