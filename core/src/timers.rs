//! The timer heap behind `call_later` / `call_at`.
//!
//! # Data structure
//!
//! A binary min-heap of `(when, seq, handle)` entries, like asyncio's
//! `_scheduled` list. `seq` is a per-loop counter, so timers due at the same
//! instant pop in the order they were scheduled (asyncio leaves that order
//! undefined; we promise FIFO).
//!
//! * schedule: O(log n) push.
//! * due timers: popped in `(when, seq)` order once `when <= now`; a timer is
//!   never moved to the ready queue before its deadline.
//! * cancel: O(1). The handle drops its closure and bumps a shared counter;
//!   the heap entry stays until it reaches the top (then it is discarded) or
//!   until cancelled entries are more than half of a heap of over 100
//!   entries, when the heap is rebuilt without them in O(n) (asyncio's
//!   `_MIN_CANCELLED_TIMER_HANDLES_FRACTION`). Cancellation is thus amortised
//!   O(1) and cancelled entries — a few dozen bytes each, their closures
//!   already freed — never outnumber live ones by the start of an iteration.
//!
//! Why not a timing wheel (tokio)? A wheel needs a tick granularity, which
//! either fires timers early (rounding down) or reorders equal deadlines;
//! asyncio's semantics want exact deadlines and FIFO ties, and the heap's
//! cost is dominated by cache misses that a wheel would pay too.

use alloc::collections::BinaryHeap;
use alloc::rc::Rc;
use core::cell::Cell;
use core::cmp::Ordering;

use crate::Instant;
use crate::handle::{Callback, CancelCounter};

/// Heaps smaller than this are never compacted (asyncio uses 100 too).
const MIN_COMPACT_LEN: usize = 100;

/// A heap entry. `key` packs `(when, seq)` into one `u128` (deadline in
/// the high half), so ordering is a single integer comparison.
struct Entry {
    key: u128,
    cb: Rc<dyn Callback>,
}

impl Entry {
    fn when(&self) -> Instant {
        Instant::from_nanos((self.key >> 64) as u64)
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed, so `BinaryHeap` (a max-heap) pops the earliest `(when, seq)`.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// The loop's timers.
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    seq: u64,
    cancelled: CancelCounter,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers { heap: BinaryHeap::new(), seq: 0, cancelled: Rc::new(Cell::new(0)) }
    }

    /// The counter a new timer's handle must carry.
    pub(crate) fn counter(&self) -> CancelCounter {
        self.cancelled.clone()
    }

    /// Adds a timer; the handle must have been built with [`Timers::counter`].
    pub(crate) fn push(&mut self, when: Instant, cb: Rc<dyn Callback>) {
        self.seq += 1;
        self.heap.push(Entry { key: ((when.as_nanos() as u128) << 64) | self.seq as u128, cb });
    }

    /// Number of entries, cancelled ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Number of cancelled entries still in the heap.
    pub(crate) fn cancelled_len(&self) -> usize {
        self.cancelled.get()
    }

    /// Drops cancelled entries at the top, and rebuilds the heap if they are
    /// more than half of it. Returns the earliest live deadline.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        let n = self.heap.len();
        let dead = self.cancelled.get();
        if n > MIN_COMPACT_LEN && dead * 2 > n {
            // O(n) rebuild; cancelled entries have no closure left to drop.
            self.heap.retain(|e| !e.cb.is_cancelled());
            self.cancelled.set(0);
        }
        while let Some(top) = self.heap.peek() {
            if !top.cb.is_cancelled() {
                return Some(top.when());
            }
            self.heap.pop();
            self.cancelled.set(self.cancelled.get().saturating_sub(1));
        }
        None
    }

    /// Moves every live timer with `when <= now` to `out`, in `(when, seq)`
    /// order.
    pub(crate) fn pop_due(&mut self, now: Instant, mut out: impl FnMut(Rc<dyn Callback>)) {
        while let Some(top) = self.heap.peek() {
            if top.when() > now {
                break;
            }
            let Some(entry) = self.heap.pop() else { break };
            if entry.cb.is_cancelled() {
                self.cancelled.set(self.cancelled.get().saturating_sub(1));
                continue;
            }
            entry.cb.leave_heap();
            out(entry.cb);
        }
    }

    /// Empties the heap, returning the entries so the caller can drop them
    /// (and the closures they hold) outside any borrow of the loop.
    pub(crate) fn take_all(&mut self) -> alloc::vec::Vec<Rc<dyn Callback>> {
        self.cancelled.set(0);
        core::mem::take(&mut self.heap)
            .into_vec()
            .into_iter()
            .map(|e| {
                e.cb.leave_heap();
                e.cb
            })
            .collect()
    }
}
