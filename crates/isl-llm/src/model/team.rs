//! A team of threads that runs one closure on each member, the way ggml runs a graph: every
//! member walks the same stages, takes its share of each, and waits at a barrier before the
//! next stage reads what the previous one wrote. One forward pass is one team run, so a decode
//! step costs one thread start instead of a pool wake-up per matrix product.

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What a member knows: its index, the team size, and the barrier.
pub struct Member<'a> {
    /// This member's index, `0..size`.
    pub id: usize,
    /// Members in the team.
    pub size: usize,
    barrier: &'a Barrier,
}

impl Member<'_> {
    /// Waits until every member has reached this point: everything written before it by any
    /// member is visible to every member after it.
    pub fn sync(&self) {
        self.barrier.wait();
    }

    /// This member's share of `0..total`, in contiguous pieces that are multiples of `align`
    /// (the last may be shorter).
    pub fn share(&self, total: usize, align: usize) -> Range<usize> {
        let units = total.div_ceil(align);
        let a = (units * self.id / self.size * align).min(total);
        let b = (units * (self.id + 1) / self.size * align).min(total);
        a..b
    }
}

/// A sense-free counting barrier that spins briefly, then yields.
struct Barrier {
    size: usize,
    arrived: AtomicUsize,
    epoch: AtomicUsize,
    poisoned: AtomicBool,
}

impl Barrier {
    fn wait(&self) {
        if self.size == 1 {
            return;
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.size {
            self.arrived.store(0, Ordering::Relaxed);
            self.epoch.fetch_add(1, Ordering::AcqRel);
            return;
        }
        let mut spins = 0u32;
        while self.epoch.load(Ordering::Acquire) == epoch {
            if self.poisoned.load(Ordering::Relaxed) {
                panic!("another thread of the forward pass panicked");
            }
            if spins < 4_000 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Marks the barrier poisoned when its member unwinds, so that the others stop waiting.
struct PoisonOnPanic<'a>(&'a Barrier);

impl Drop for PoisonOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.poisoned.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs `f` on `size` members (the calling thread is member 0) and returns when all are done.
pub fn run<F: Fn(&Member<'_>) + Sync>(size: usize, f: F) {
    let size = size.max(1);
    let barrier =
        Barrier { size, arrived: AtomicUsize::new(0), epoch: AtomicUsize::new(0), poisoned: AtomicBool::new(false) };
    let member = |id: usize| {
        let _guard = PoisonOnPanic(&barrier);
        f(&Member { id, size, barrier: &barrier });
    };
    if size == 1 {
        member(0);
        return;
    }
    std::thread::scope(|s| {
        for id in 1..size {
            let member = &member;
            s.spawn(move || member(id));
        }
        member(0);
    });
}

/// A buffer the members write in disjoint parts between barriers and read whole after one.
///
/// The rule every caller keeps: between two barriers, a range is either written by one member
/// only, or read (by anyone) and written by nobody. The methods are `unsafe` because that rule
/// spans threads and is not checked.
pub struct Shared<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `Shared` is a `&mut [T]` lent to several threads under the rule above: no range is
// accessed by two threads unless all of them only read it.
unsafe impl<T: Send + Sync> Sync for Shared<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for Shared<'_, T> {}

impl<'a, T> Shared<'a, T> {
    /// Lends `buf` to the team for as long as the `Shared` lives.
    pub fn new(buf: &'a mut [T]) -> Self {
        Shared { ptr: buf.as_mut_ptr(), len: buf.len(), _borrow: PhantomData }
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Writes `range`.
    ///
    /// # Safety
    /// No other member touches `range` until the next barrier.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, range: Range<usize>) -> &mut [T] {
        assert!(range.start <= range.end && range.end <= self.len, "range {range:?} of {}", self.len);
        // SAFETY: in bounds (checked above); exclusive for the stage by the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.end - range.start) }
    }

    /// Reads `range`.
    ///
    /// # Safety
    /// No member writes `range` until the next barrier.
    pub unsafe fn get(&self, range: Range<usize>) -> &[T] {
        assert!(range.start <= range.end && range.end <= self.len, "range {range:?} of {}", self.len);
        // SAFETY: in bounds; nobody writes it during the stage by the caller's promise.
        unsafe { std::slice::from_raw_parts(self.ptr.add(range.start), range.end - range.start) }
    }

    /// Writes one element.
    ///
    /// # Safety
    /// No other member touches element `i` until the next barrier.
    pub unsafe fn set(&self, i: usize, v: T) {
        assert!(i < self.len);
        // SAFETY: in bounds; exclusive by the caller's promise.
        unsafe { self.ptr.add(i).write(v) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_range_once() {
        let barrier = Barrier {
            size: 3,
            arrived: AtomicUsize::new(0),
            epoch: AtomicUsize::new(0),
            poisoned: AtomicBool::new(false),
        };
        for total in [0usize, 1, 5, 64, 100, 577] {
            let mut next = 0;
            for id in 0..3 {
                let r = Member { id, size: 3, barrier: &barrier }.share(total, 4);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, total);
        }
    }

    #[test]
    fn members_see_each_others_writes_after_a_barrier() {
        let mut buf = vec![0usize; 4 * 1000];
        let shared = Shared::new(&mut buf);
        run(4, |m| {
            for round in 1..50 {
                let r = m.share(shared.len(), 1);
                // SAFETY: each member writes its own share, then all read after the barrier.
                unsafe { shared.part(r.clone()).iter_mut().for_each(|x| *x = round) };
                m.sync();
                // SAFETY: nobody writes until the next barrier.
                assert!(unsafe { shared.get(0..shared.len()) }.iter().all(|&x| x == round));
                m.sync();
            }
        });
    }
}
