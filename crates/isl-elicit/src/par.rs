//! Data parallelism that never changes an answer: rayon on native targets, a plain loop on
//! wasm. Work is split into fixed pieces (chunks of particles, single candidates) whose results
//! are combined by the caller in a fixed order, so the thread count is invisible in the output.

/// `f(i, &items[i])` for every item, results in item order.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync + Send) -> Vec<R> {
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        items.par_iter().enumerate().map(|(i, t)| f(i, t)).collect()
    }
    #[cfg(target_family = "wasm")]
    {
        items.iter().enumerate().map(|(i, t)| f(i, t)).collect()
    }
}

/// `f(chunk_index, a_chunk, b_chunk, c_chunk)` over matching chunks of three slices (`a` holds
/// `stride` values per item, `b` and `c` one): chunk `k` covers items `k·chunk ..`. Returns
/// each chunk's result, in chunk order.
pub(crate) fn chunks3<A: Send, B: Send, C: Send, R: Send>(
    a: &mut [A],
    stride: usize,
    b: &mut [B],
    c: &mut [C],
    chunk: usize,
    f: impl Fn(usize, &mut [A], &mut [B], &mut [C]) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        a.par_chunks_mut(chunk * stride)
            .zip(b.par_chunks_mut(chunk))
            .zip(c.par_chunks_mut(chunk))
            .enumerate()
            .map(|(k, ((a, b), c))| f(k, a, b, c))
            .collect()
    }
    #[cfg(target_family = "wasm")]
    {
        a.chunks_mut(chunk * stride)
            .zip(b.chunks_mut(chunk))
            .zip(c.chunks_mut(chunk))
            .enumerate()
            .map(|(k, ((a, b), c))| f(k, a, b, c))
            .collect()
    }
}

/// `f(chunk_index, a_chunk, b_chunk)` over matching chunks of a shared slice `a` (`sa` values
/// per item) and a mutable slice `b` (`sb` values per item): chunk `k` covers items
/// `k·chunk ..`. Returns each chunk's result, in chunk order.
pub(crate) fn zip_chunks<A: Sync, B: Send, R: Send>(
    a: &[A],
    sa: usize,
    b: &mut [B],
    sb: usize,
    chunk: usize,
    f: impl Fn(usize, &[A], &mut [B]) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(not(target_family = "wasm"))]
    {
        use rayon::prelude::*;
        a.par_chunks(chunk * sa).zip(b.par_chunks_mut(chunk * sb)).enumerate().map(|(k, (a, b))| f(k, a, b)).collect()
    }
    #[cfg(target_family = "wasm")]
    {
        a.chunks(chunk * sa).zip(b.chunks_mut(chunk * sb)).enumerate().map(|(k, (a, b))| f(k, a, b)).collect()
    }
}
