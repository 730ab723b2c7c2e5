// The 32x32 -> 64-bit product (high word, low word) as one 64-bit multiply: for adapters with
// 64-bit shader integers (wgpu's SHADER_INT64), where the driver emits one wide multiply
// (NVIDIA: IMAD.WIDE.U32) instead of the four 16-bit products of mulhilo_u32.wgsl.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let p = u64(a) * u64(b);
    return vec2<u32>(u32(p >> 32u), u32(p));
}
