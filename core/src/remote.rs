//! The thread-safe side of a loop: `call_soon_threadsafe` and wake-ups of
//! tasks from other threads.
//!
//! Everything else in a loop is single-threaded (`Rc`, `Cell`); this module
//! is the one door in. Other threads push onto a mutex-protected queue, set
//! `pending`, and wake the host only if the loop may be blocked in
//! [`Host::wait`](crate::Host::wait) (`sleeping`). The loop drains the queue
//! into its ready queue before it waits and right after.
//!
//! The `sleeping`/`pending` pair is a Dekker-style handshake (both sides
//! store their own flag, then read the other's, all `SeqCst`): either the
//! loop sees `pending` before it blocks and does not block, or the pusher
//! sees `sleeping` and wakes the host. A wake-up is never lost, and a busy
//! loop pays no system call per `call_soon_threadsafe`.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::handle::ThreadsafeHandle;
use crate::sync::Mutex;
use crate::task::TaskId;
use crate::{Error, ErrorKind, EventLoop, HostWaker};

pub(crate) type RemoteCallback = Box<dyn FnOnce(&EventLoop) + Send + 'static>;

pub(crate) enum Remote {
    Call(RemoteCallback, ThreadsafeHandle),
    Wake(TaskId),
}

pub(crate) struct Shared {
    queue: Mutex<Vec<Remote>>,
    pending: AtomicBool,
    sleeping: AtomicBool,
    closed: AtomicBool,
    waker: Result<Arc<dyn HostWaker>, Error>,
}

impl Shared {
    pub(crate) fn new(waker: Result<Arc<dyn HostWaker>, Error>) -> Shared {
        Shared {
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            waker,
        }
    }

    pub(crate) fn push(&self, item: Remote) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::from_kind(ErrorKind::Closed));
        }
        self.queue.lock().push(item);
        self.pending.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst)
            && let Ok(w) = &self.waker
        {
            w.wake();
        }
        Ok(())
    }

    /// Takes everything queued so far (in push order), if anything.
    #[inline]
    pub(crate) fn take(&self) -> Option<Vec<Remote>> {
        if !self.pending.load(Ordering::Acquire) {
            return None;
        }
        self.pending.store(false, Ordering::SeqCst);
        Some(core::mem::take(&mut *self.queue.lock()))
    }

    /// The loop is about to block: returns false if work arrived meanwhile,
    /// in which case it must not block.
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        !self.pending.load(Ordering::SeqCst)
    }

    pub(crate) fn end_sleep(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    pub(crate) fn close(&self) -> Vec<Remote> {
        self.closed.store(true, Ordering::Release);
        core::mem::take(&mut *self.queue.lock())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn check_threadsafe(&self) -> Result<(), Error> {
        match &self.waker {
            Ok(_) => Ok(()),
            Err(e) => Err(e.clone()),
        }
    }
}

/// A `Send + Sync` reference to an [`EventLoop`], for other threads.
///
/// Get one with [`EventLoop::handle`]. It keeps no loop state alive; once the
/// loop is closed, [`LoopHandle::call_soon_threadsafe`] returns a `Closed`
/// error (asyncio raises `RuntimeError`).
///
/// ```
/// # use anyloop_core::{EventLoop, testing::VirtualClock};
/// let lp = EventLoop::new(VirtualClock::new());
/// let remote = lp.handle().unwrap();
/// std::thread::spawn(move || {
///     remote.call_soon_threadsafe(|lp| lp.stop()).unwrap();
/// })
/// .join()
/// .unwrap();
/// lp.run_forever().unwrap(); // runs the callback, which stops the loop
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    pub(crate) shared: Arc<Shared>,
}

impl LoopHandle {
    /// Schedules `f` on the loop from any thread, waking the loop if it is
    /// blocked (asyncio's `call_soon_threadsafe`). Callbacks from one thread
    /// run in the order they were scheduled.
    pub fn call_soon_threadsafe<F>(&self, f: F) -> Result<ThreadsafeHandle, Error>
    where
        F: FnOnce(&EventLoop) + Send + 'static,
    {
        self.shared.check_threadsafe()?;
        let handle = ThreadsafeHandle::new();
        self.shared.push(Remote::Call(Box::new(f), handle.clone()))?;
        Ok(handle)
    }

    /// Whether the loop has been closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").field("closed", &self.is_closed()).finish()
    }
}
