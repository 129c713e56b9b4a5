//! Callback handles: [`Handle`], [`TimerHandle`] and [`ThreadsafeHandle`].
//!
//! A handle is the scheduled callback itself, shared between the loop's
//! queues and the caller (asyncio's `Handle` / `TimerHandle`). It is one
//! reference-counted allocation holding the state and the closure — and, in
//! debug mode only, the source location that scheduled it (asyncio keeps its
//! `_source_traceback` in debug mode only too; outside it, the extra word
//! costs `call_soon` a size class of the allocator). Cancelling drops the
//! closure at once, so whatever it captured is released even while the
//! timer entry still sits in the heap.
//!
//! Handles are `!Send`: the loop is single-threaded and its callbacks may
//! capture `Rc`s. From other threads use [`LoopHandle::call_soon_threadsafe`],
//! which returns a `Send + Sync` [`ThreadsafeHandle`].
//!
//! [`LoopHandle::call_soon_threadsafe`]: crate::LoopHandle::call_soon_threadsafe

use alloc::rc::Rc;
use alloc::sync::Arc;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::panic::Location;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::{EventLoop, Instant};

/// A scheduled callback, as the loop's queues and the handles see it.
pub(crate) trait Callback {
    /// Runs the callback unless it was cancelled. Called only by the loop.
    fn run(&self, lp: &EventLoop);
    /// Cancels it and drops the closure.
    fn cancel(&self);
    /// Whether it was cancelled.
    fn is_cancelled(&self) -> bool;
    /// The timer left the heap (it is due, or the heap was cleared): a later
    /// `cancel` no longer counts as a cancelled heap entry.
    fn leave_heap(&self) {}
    /// Where it was scheduled from, if that was recorded (debug mode).
    fn location(&self) -> Option<&'static Location<'static>> {
        None
    }
    /// A short description for debug output and exception contexts.
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

const PENDING: u8 = 0;
const CANCELLED: u8 = 1;
const DONE: u8 = 2;

/// Shared count of cancelled timers still in the heap, owned by the timer
/// heap; a timer bumps it when cancelled while in the heap, so the heap knows
/// when to compact.
pub(crate) type CancelCounter = Rc<Cell<usize>>;

/// A callback that runs at most once (`call_soon`).
struct Once<F> {
    state: Cell<u8>,
    f: Cell<Option<F>>,
}

impl<F> Once<F> {
    fn new(f: F) -> Once<F> {
        Once { state: Cell::new(PENDING), f: Cell::new(Some(f)) }
    }

    /// Cancels if still pending, dropping the closure (and everything it
    /// captured) now; whether this call did it.
    fn try_cancel(&self) -> bool {
        if self.state.get() != PENDING {
            return false;
        }
        self.state.set(CANCELLED);
        drop(self.f.take());
        true
    }

    fn describe_state(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state.get() {
            CANCELLED => f.write_str(" cancelled>"),
            DONE => f.write_str(" done>"),
            _ => f.write_str(">"),
        }
    }
}

impl<F: FnOnce(&EventLoop) + 'static> Callback for Once<F> {
    #[inline]
    fn run(&self, lp: &EventLoop) {
        if self.state.get() != PENDING {
            return;
        }
        self.state.set(DONE);
        if let Some(f) = self.f.take() {
            f(lp);
        }
    }
    fn cancel(&self) {
        self.try_cancel();
    }
    #[inline]
    fn is_cancelled(&self) -> bool {
        self.state.get() == CANCELLED
    }
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Handle {}", core::any::type_name::<F>())?;
        self.describe_state(f)
    }
}

/// Debug mode: a callback cell plus the place that scheduled it.
struct Traced<C> {
    cell: C,
    location: &'static Location<'static>,
}

impl<C: Callback> Callback for Traced<C> {
    #[inline]
    fn run(&self, lp: &EventLoop) {
        self.cell.run(lp)
    }
    fn cancel(&self) {
        self.cell.cancel()
    }
    fn is_cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }
    fn leave_heap(&self) {
        self.cell.leave_heap()
    }
    fn location(&self) -> Option<&'static Location<'static>> {
        Some(self.location)
    }
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cell.describe(f)?;
        write!(f, " created at {}:{}", self.location.file(), self.location.line())
    }
}

/// The callback cell, traced in debug mode.
fn boxed<C: Callback + 'static>(cell: C, debug: bool, location: &'static Location<'static>) -> Rc<dyn Callback> {
    if debug { Rc::new(Traced { cell, location }) } else { Rc::new(cell) }
}

/// A timer callback (`call_later`, `call_at`): a [`Once`] that also tells
/// the heap when it is cancelled while still in it.
struct TimerOnce<F> {
    once: Once<F>,
    when: Instant,
    /// Set while the entry is in the heap.
    in_heap: Cell<Option<CancelCounter>>,
}

impl<F: FnOnce(&EventLoop) + 'static> Callback for TimerOnce<F> {
    #[inline]
    fn run(&self, lp: &EventLoop) {
        self.once.run(lp)
    }
    fn cancel(&self) {
        if self.once.try_cancel()
            && let Some(counter) = self.in_heap.take()
        {
            counter.set(counter.get() + 1);
        }
    }
    #[inline]
    fn is_cancelled(&self) -> bool {
        self.once.is_cancelled()
    }
    #[inline]
    fn leave_heap(&self) {
        drop(self.in_heap.take());
    }
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<TimerHandle {} when={:?}", core::any::type_name::<F>(), self.when)?;
        self.once.describe_state(f)
    }
}

/// A callback that can run many times (I/O watchers: one handle per
/// `add_reader`, queued again on every readiness event, as asyncio does).
struct Repeating<F> {
    cancelled: Cell<bool>,
    location: &'static Location<'static>,
    f: RefCell<Option<F>>,
}

impl<F: FnMut(&EventLoop) + 'static> Callback for Repeating<F> {
    fn run(&self, lp: &EventLoop) {
        if self.cancelled.get() {
            return;
        }
        // The loop runs one callback at a time, never one inside another, so
        // the borrow only fails if the callback is somehow re-entered.
        if let Ok(mut slot) = self.f.try_borrow_mut() {
            if let Some(f) = slot.as_mut() {
                f(lp);
            }
            // It may have cancelled itself: release what it captured now.
            if self.cancelled.get() {
                drop(slot.take());
            }
        }
    }
    fn cancel(&self) {
        if !self.cancelled.replace(true) {
            // If the callback is running right now (it cancelled itself),
            // `run` drops the closure when it returns.
            if let Ok(mut slot) = self.f.try_borrow_mut() {
                drop(slot.take());
            }
        }
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.get()
    }
    fn location(&self) -> Option<&'static Location<'static>> {
        Some(self.location)
    }
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Handle (repeating) {}:{}", self.location.file(), self.location.line())?;
        f.write_str(if self.cancelled.get() { " cancelled>" } else { ">" })
    }
}

/// A callback scheduled with [`EventLoop::call_soon`] (asyncio's `Handle`).
///
/// Cloning a handle gives another reference to the same scheduled callback.
///
/// ```
/// # use anyloop_core::{EventLoop, testing::VirtualClock};
/// let lp = EventLoop::new(VirtualClock::new());
/// let h = lp.call_soon(|_| unreachable!("cancelled")).unwrap();
/// assert!(!h.cancelled());
/// h.cancel();
/// assert!(h.cancelled());
/// lp.call_soon(|lp| lp.stop()).unwrap();
/// lp.run_forever().unwrap();
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Rc<dyn Callback>,
}

impl Handle {
    pub(crate) fn from_rc(inner: Rc<dyn Callback>) -> Handle {
        Handle { inner }
    }
}

impl Handle {
    /// A one-shot callback; `debug` records where it was scheduled.
    #[track_caller]
    #[inline]
    pub(crate) fn once<F: FnOnce(&EventLoop) + 'static>(f: F, debug: bool) -> Handle {
        Handle { inner: boxed(Once::new(f), debug, Location::caller()) }
    }

    /// A callback that may be scheduled again and again with
    /// [`EventLoop::schedule_handle`] until cancelled. Hosts use this for
    /// I/O watchers (`add_reader`): one handle, queued on every event.
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, Handle, testing::VirtualClock};
    /// # use std::{cell::Cell, rc::Rc};
    /// let lp = EventLoop::new(VirtualClock::new());
    /// let n = Rc::new(Cell::new(0));
    /// let n2 = n.clone();
    /// let h = Handle::repeating(move |_| n2.set(n2.get() + 1));
    /// lp.schedule_handle(&h).unwrap();
    /// lp.schedule_handle(&h).unwrap();
    /// lp.call_soon(|lp| lp.stop()).unwrap();
    /// lp.run_forever().unwrap();
    /// assert_eq!(n.get(), 2);
    /// ```
    #[track_caller]
    pub fn repeating<F: FnMut(&EventLoop) + 'static>(f: F) -> Handle {
        Handle {
            inner: Rc::new(Repeating {
                cancelled: Cell::new(false),
                location: Location::caller(),
                f: RefCell::new(Some(f)),
            }),
        }
    }

    /// Cancels the callback. Has no effect if it already ran or was cancelled.
    /// The closure is dropped immediately.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether [`cancel`](Handle::cancel) was called before it ran.
    pub fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// Where the callback was scheduled: recorded in debug mode (and for
    /// repeating handles), `None` otherwise.
    pub fn source_location(&self) -> Option<&'static Location<'static>> {
        self.inner.location()
    }

    /// Whether two handles refer to the same scheduled callback.
    pub fn ptr_eq(&self, other: &Handle) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.describe(f)
    }
}

/// A callback scheduled with [`EventLoop::call_later`] or
/// [`EventLoop::call_at`] (asyncio's `TimerHandle`).
///
/// ```
/// # use anyloop_core::{EventLoop, testing::VirtualClock};
/// # use core::time::Duration;
/// let lp = EventLoop::new(VirtualClock::new());
/// let t = lp.call_later(Duration::from_secs(2), |lp| lp.stop()).unwrap();
/// assert_eq!(t.when(), lp.time() + Duration::from_secs(2));
/// lp.run_forever().unwrap();
/// assert!(lp.time() >= t.when());
/// ```
#[derive(Clone)]
pub struct TimerHandle {
    handle: Handle,
    when: Instant,
}

impl TimerHandle {
    #[track_caller]
    pub(crate) fn new<F: FnOnce(&EventLoop) + 'static>(
        when: Instant,
        counter: CancelCounter,
        f: F,
        debug: bool,
    ) -> TimerHandle {
        let cell = TimerOnce { once: Once::new(f), when, in_heap: Cell::new(Some(counter)) };
        TimerHandle { handle: Handle { inner: boxed(cell, debug, Location::caller()) }, when }
    }

    /// The absolute time the callback is scheduled for, on the loop's clock
    /// ([`EventLoop::time`]).
    pub fn when(&self) -> Instant {
        self.when
    }

    /// Cancels the timer; it will never run. O(1): the heap entry is removed
    /// lazily, and the heap is compacted once cancelled entries are more than
    /// half of it.
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Whether the timer was cancelled before it ran.
    pub fn cancelled(&self) -> bool {
        self.handle.cancelled()
    }

    /// The plain [`Handle`] view of this timer (asyncio's `TimerHandle` is a
    /// subclass of `Handle`).
    pub fn as_handle(&self) -> &Handle {
        &self.handle
    }
}

impl fmt::Debug for TimerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.handle.fmt(f)
    }
}

/// The handle returned by `call_soon_threadsafe`: `Send + Sync`, so the
/// scheduling thread can cancel it.
#[derive(Clone, Debug)]
pub struct ThreadsafeHandle {
    pub(crate) state: Arc<AtomicU8>,
}

impl ThreadsafeHandle {
    pub(crate) fn new() -> ThreadsafeHandle {
        ThreadsafeHandle { state: Arc::new(AtomicU8::new(PENDING)) }
    }

    /// Marks the callback as started; false if it was cancelled first.
    pub(crate) fn start(&self) -> bool {
        self.state.compare_exchange(PENDING, DONE, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Cancels the callback if it has not started yet. Has no effect if it
    /// already ran or was cancelled.
    pub fn cancel(&self) {
        let _ = self.state.compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Whether it was cancelled before it ran.
    pub fn cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) == CANCELLED
    }
}
