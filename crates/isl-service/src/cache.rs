//! The in-process response cache: bounded in bytes (quick_cache's CLOCK-Pro eviction), entries
//! expire after a TTL measured on the injected clock, and concurrent identical misses coalesce on
//! a placeholder so that one request computes and the others wait for its answer.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use quick_cache::sync::{Cache, GuardResult, PlaceholderGuard};
use quick_cache::{Lifecycle, OptionsBuilder, Weighter};

use crate::config::CacheConfig;

/// Bytes charged per entry on top of its body (key, timestamps, bookkeeping).
pub const ENTRY_OVERHEAD_BYTES: u64 = 96;

/// A cached response body with the time it was stored.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The JSON body.
    pub body: Bytes,
    /// Clock reading when it was stored.
    pub inserted_nanos: u64,
}

/// Weight of an entry: its body plus a fixed overhead.
#[derive(Clone, Copy, Debug, Default)]
pub struct EntryWeighter;

impl Weighter<u128, Entry> for EntryWeighter {
    fn weight(&self, _key: &u128, val: &Entry) -> u64 {
        val.body.len() as u64 + ENTRY_OVERHEAD_BYTES
    }
}

/// Counts evictions (including bodies too large to be admitted at all).
#[derive(Clone, Debug, Default)]
pub struct EvictionCounter(Arc<AtomicU64>);

impl Lifecycle<u128, Entry> for EvictionCounter {
    type RequestState = ();

    fn begin_request(&self) -> Self::RequestState {}

    fn on_evict(&self, _state: &mut Self::RequestState, _key: u128, _val: Entry) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keys are already xxh3-128 hashes: fold them instead of hashing again. Deterministic on every
/// target (no random state needed on wasm32-unknown-unknown).
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasherBuilder;

/// The [`Hasher`] of [`KeyHasherBuilder`].
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u128(&mut self, i: u128) {
        self.0 ^= (i as u64) ^ ((i >> 64) as u64);
    }
}

impl BuildHasher for KeyHasherBuilder {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

type Inner = Cache<u128, Entry, EntryWeighter, KeyHasherBuilder, EvictionCounter>;

/// Raw request hash → cache key.
type Memo = Cache<u128, u128, quick_cache::UnitWeighter, KeyHasherBuilder>;

/// What a lookup found.
pub enum Lookup<'a> {
    /// A fresh entry was there.
    Hit(Entry),
    /// Another request was computing this key; we waited and got its answer.
    Coalesced(Entry),
    /// Absent: compute, then [`MissGuard::insert`] (dropping the guard without inserting lets a
    /// waiting request compute instead).
    Miss(MissGuard<'a>),
    /// The cache is disabled or could not settle; compute without caching.
    Bypass,
}

/// The right (and duty) to fill a missing entry; waiters on the same key are released when it is
/// filled or dropped.
pub struct MissGuard<'a> {
    guard: PlaceholderGuard<'a, u128, Entry, EntryWeighter, KeyHasherBuilder, EvictionCounter>,
}

impl MissGuard<'_> {
    /// Stores the entry and wakes the waiters.
    pub fn insert(self, entry: Entry) {
        // Err means it was not admitted (too big); the eviction counter has seen it.
        let _ = self.guard.insert(entry);
    }
}

/// Counters of cache outcomes.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Fresh entries served.
    pub hits: AtomicU64,
    /// Lookups that had to compute.
    pub misses: AtomicU64,
    /// Lookups answered by another request's computation.
    pub coalesced: AtomicU64,
}

/// A snapshot of the cache's counters and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSnapshot {
    /// Fresh entries served.
    pub hits: u64,
    /// Lookups that had to compute.
    pub misses: u64,
    /// Lookups answered by another request's computation.
    pub coalesced: u64,
    /// Entries evicted (or refused as too large).
    pub evictions: u64,
    /// Weighted bytes held.
    pub bytes: u64,
    /// Entries held.
    pub entries: u64,
    /// Capacity in bytes.
    pub capacity_bytes: u64,
}

/// The response cache.
pub struct ResponseCache {
    inner: Option<Inner>,
    memo: Option<Memo>,
    evictions: EvictionCounter,
    ttl_nanos: u64,
    capacity_bytes: u64,
    stats: CacheStats,
}

impl ResponseCache {
    /// A cache with the given sizing; `capacity_bytes == 0` disables it.
    pub fn new(config: &CacheConfig) -> ResponseCache {
        let evictions = EvictionCounter::default();
        let inner = (config.capacity_bytes > 0).then(|| {
            let shards = config.shards.max(1);
            let estimated_items = usize::try_from(config.capacity_bytes / 4096).unwrap_or(usize::MAX).max(16);
            let options = OptionsBuilder::new()
                .shards(shards)
                .estimated_items_capacity(estimated_items)
                .weight_capacity(config.capacity_bytes)
                .build();
            match options {
                Ok(options) => Cache::with_options(options, EntryWeighter, KeyHasherBuilder, evictions.clone()),
                // Unreachable: both required options are set. Fall back to the plain constructor.
                Err(_) => Cache::with(
                    estimated_items,
                    config.capacity_bytes,
                    EntryWeighter,
                    KeyHasherBuilder,
                    evictions.clone(),
                ),
            }
        });
        let memo = (config.memo_entries > 0 && inner.is_some()).then(|| {
            Cache::with(
                config.memo_entries,
                config.memo_entries as u64,
                quick_cache::UnitWeighter,
                KeyHasherBuilder,
                Default::default(),
            )
        });
        ResponseCache {
            inner,
            memo,
            evictions,
            ttl_nanos: config.ttl_secs.saturating_mul(1_000_000_000),
            capacity_bytes: config.capacity_bytes,
            stats: CacheStats::default(),
        }
    }

    fn fresh(&self, entry: &Entry, now: u64) -> bool {
        self.ttl_nanos == 0 || now.saturating_sub(entry.inserted_nanos) < self.ttl_nanos
    }

    /// Looks `key` up at time `now`: a fresh hit, a coalesced answer, or a miss to fill.
    /// Expired entries are removed and count as misses. Blocks while another request computes
    /// the same key.
    pub fn lookup(&self, key: u128, now: impl Fn() -> u64) -> Lookup<'_> {
        let Some(inner) = &self.inner else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return Lookup::Bypass;
        };
        if let Some(entry) = inner.get(&key) {
            if self.fresh(&entry, now()) {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                return Lookup::Hit(entry);
            }
            let stamp = entry.inserted_nanos;
            inner.remove_if(&key, |e| e.inserted_nanos == stamp);
        }
        // A few rounds: an entry that shows up expired between our check and the placeholder is
        // removed and we try again; past that, compute without caching.
        for _ in 0..3 {
            match inner.get_value_or_guard(&key, None) {
                GuardResult::Value(entry) => {
                    if self.fresh(&entry, now()) {
                        self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                        return Lookup::Coalesced(entry);
                    }
                    let stamp = entry.inserted_nanos;
                    inner.remove_if(&key, |e| e.inserted_nanos == stamp);
                }
                GuardResult::Guard(guard) => {
                    self.stats.misses.fetch_add(1, Ordering::Relaxed);
                    return Lookup::Miss(MissGuard { guard });
                }
                GuardResult::Timeout => break,
            }
        }
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        Lookup::Bypass
    }

    /// A fresh entry for `key`, counted as a hit; `None` (not counted) otherwise. Never waits.
    pub fn get_fresh(&self, key: u128, now: u64) -> Option<Entry> {
        let entry = self.inner.as_ref()?.get(&key).filter(|e| self.fresh(e, now))?;
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Some(entry)
    }

    /// Stores `entry` under `key` (replacing what was there), as computed elsewhere.
    pub fn insert(&self, key: u128, entry: Entry) {
        if let Some(inner) = &self.inner {
            inner.insert(key, entry);
        }
    }

    /// The cache key remembered for a raw request hash.
    pub fn memo_get(&self, raw: u128) -> Option<u128> {
        self.memo.as_ref()?.get(&raw)
    }

    /// Remembers the cache key of a raw request hash.
    pub fn memo_insert(&self, raw: u128, key: u128) {
        if let Some(memo) = &self.memo {
            memo.insert(raw, key);
        }
    }

    /// Removes every entry; returns how many there were.
    pub fn clear(&self) -> u64 {
        match &self.inner {
            Some(inner) => {
                let n = inner.len() as u64;
                inner.clear();
                if let Some(memo) = &self.memo {
                    memo.clear();
                }
                n
            }
            None => 0,
        }
    }

    /// Counters and size now.
    pub fn snapshot(&self) -> CacheSnapshot {
        let (bytes, entries) = self.inner.as_ref().map(|c| (c.weight(), c.len() as u64)).unwrap_or((0, 0));
        CacheSnapshot {
            hits: self.stats.hits.load(Ordering::Relaxed),
            misses: self.stats.misses.load(Ordering::Relaxed),
            coalesced: self.stats.coalesced.load(Ordering::Relaxed),
            evictions: self.evictions.0.load(Ordering::Relaxed),
            bytes,
            entries,
            capacity_bytes: self.capacity_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(len: usize, at: u64) -> Entry {
        Entry { body: Bytes::from(vec![b'x'; len]), inserted_nanos: at }
    }

    fn fill(cache: &ResponseCache, key: u128, len: usize, at: u64) {
        match cache.lookup(key, || at) {
            Lookup::Miss(g) => g.insert(entry(len, at)),
            _ => panic!("expected a miss for {key}"),
        }
    }

    #[test]
    fn hit_after_insert_and_ttl_expiry() {
        let cache = ResponseCache::new(&CacheConfig {
            capacity_bytes: 1 << 20,
            ttl_secs: 10,
            shards: 1,
            memo_entries: 16,
            ..CacheConfig::default()
        });
        fill(&cache, 1, 100, 0);
        assert!(matches!(cache.lookup(1, || 9_000_000_000), Lookup::Hit(_)));
        assert!(matches!(cache.lookup(1, || 10_000_000_000), Lookup::Miss(_)));
        let s = cache.snapshot();
        assert_eq!((s.hits, s.misses), (1, 2));
    }

    #[test]
    fn evicts_when_over_capacity() {
        let cap = 10 * (1000 + ENTRY_OVERHEAD_BYTES);
        let cache = ResponseCache::new(&CacheConfig {
            capacity_bytes: cap,
            ttl_secs: 0,
            shards: 1,
            memo_entries: 16,
            ..CacheConfig::default()
        });
        for k in 0..50u128 {
            fill(&cache, k, 1000, 0);
        }
        let s = cache.snapshot();
        assert!(s.evictions >= 40, "{s:?}");
        assert!(s.bytes <= cap, "{s:?}");
        assert!(s.entries <= 10, "{s:?}");
        assert_eq!(cache.clear(), s.entries);
        assert_eq!(cache.snapshot().entries, 0);
    }

    #[test]
    fn disabled_cache_bypasses() {
        let cache = ResponseCache::new(&CacheConfig {
            capacity_bytes: 0,
            ttl_secs: 0,
            shards: 1,
            memo_entries: 16,
            ..CacheConfig::default()
        });
        assert!(matches!(cache.lookup(1, || 0), Lookup::Bypass));
        assert_eq!(cache.clear(), 0);
    }

    #[test]
    fn dropped_guard_lets_the_next_request_compute() {
        let cache = ResponseCache::new(&CacheConfig {
            capacity_bytes: 1 << 20,
            ttl_secs: 0,
            shards: 1,
            memo_entries: 16,
            ..CacheConfig::default()
        });
        match cache.lookup(7, || 0) {
            Lookup::Miss(g) => drop(g),
            _ => panic!("expected a miss"),
        }
        assert!(matches!(cache.lookup(7, || 0), Lookup::Miss(_)));
    }
}
