//! The [`Host`] trait: everything the loop needs from the platform.
//!
//! The core owns scheduling; a host owns the clock, the waiting, and the
//! I/O. The contract, in full:
//!
//! * [`Host::now`] is a monotonic clock. It never goes backwards.
//! * [`Host::wait`] (blocking hosts) waits until an I/O event, a
//!   [`HostWaker::wake`], or the timeout. The timeout is *rounded up* to the
//!   host's granularity, never down: a host with millisecond timers waits 1 ms
//!   for a 1 µs timeout, so timers never fire early and the loop never spins.
//!   `None` means "until something happens". A spurious early return is
//!   allowed (the loop just iterates again), a busy loop is not. I/O that
//!   became ready is delivered by scheduling the watcher's handle with
//!   [`EventLoop::schedule_handle`]; the loop runs those handles in the same
//!   iteration, after the callbacks that were already ready (asyncio's
//!   `_process_events`).
//! * [`Host::remote_waker`] gives the `Send + Sync` wake-up used by
//!   `call_soon_threadsafe` and by task wakers on other threads. A host that
//!   cannot be reached from another thread (the browser without atomics)
//!   returns an `Unsupported` error, and `call_soon_threadsafe` reports it.
//! * [`Host::mode`] says whether the host blocks. A [`HostMode::Driven`] host
//!   (the browser) cannot block: [`EventLoop::run_forever`] only marks the
//!   loop running and calls [`Host::notify`]; from then on the host calls
//!   [`EventLoop::step`] from its own callbacks (a macrotask, a timer) and
//!   re-arms itself from the [`Step`] it gets back. Whenever work is added
//!   while no step is in progress, the loop calls [`Host::notify`] so the
//!   host can arrange the next step.
//!
//! [`EventLoop::schedule_handle`]: crate::EventLoop::schedule_handle
//! [`EventLoop::run_forever`]: crate::EventLoop::run_forever
//! [`EventLoop::step`]: crate::EventLoop::step

use alloc::sync::Arc;
use core::any::Any;
use core::time::Duration;

use crate::{Error, EventLoop, Instant};

/// How a host runs the loop.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HostMode {
    /// The host can block in [`Host::wait`]: `run_forever` runs the loop on
    /// the caller's stack until `stop` (native, WASI).
    Blocking,
    /// The host cannot block; it calls [`EventLoop::step`](crate::EventLoop::step)
    /// from its own event sources (the browser).
    Driven,
}

/// What a [`EventLoop::step`](crate::EventLoop::step) left behind, so a
/// driven host knows when to call it again.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Callbacks are ready: step again as soon as the host may (after
    /// yielding to the platform if it has run for long enough).
    Ready,
    /// Nothing is ready. Step again at the given deadline (the earliest
    /// timer), or on [`Host::notify`]; `None`: only on notify.
    Idle(Option<Instant>),
    /// The loop stopped (`stop()` was called); it is no longer running.
    Stopped,
}

/// Wakes a host blocked in [`Host::wait`] from any thread.
pub trait HostWaker: Send + Sync + 'static {
    /// Makes the current or next [`Host::wait`] return promptly.
    fn wake(&self);
}

/// A waker for hosts that are single-threaded by nature (WASI): no other
/// thread exists that could wake them, so there is nothing to do.
#[derive(Debug, Default)]
pub struct NoopWaker;

impl HostWaker for NoopWaker {
    fn wake(&self) {}
}

/// The platform below an [`EventLoop`]: clock, waiting, waking.
///
/// See the [module documentation](self) for the contract. Host-specific
/// operations (sockets, pipes, signals…) are methods of the host type itself,
/// reached from the loop with [`EventLoop::host`](crate::EventLoop::host).
///
/// ```
/// use anyloop_core::{Error, EventLoop, Host, HostWaker, Instant, NoopWaker};
/// use core::{any::Any, cell::Cell, time::Duration};
/// use std::sync::Arc;
///
/// /// A host whose clock jumps to each deadline (like `testing::VirtualClock`).
/// struct Jumpy(Cell<Instant>);
/// impl Host for Jumpy {
///     fn now(&self) -> Instant { self.0.get() }
///     fn wait(&self, _: &EventLoop, timeout: Option<Duration>) -> Result<(), Error> {
///         let t = timeout.ok_or_else(|| Error::new(anyloop_core::ErrorKind::Other, "would block forever"))?;
///         self.0.set(self.0.get() + t);
///         Ok(())
///     }
///     fn remote_waker(&self) -> Result<Arc<dyn HostWaker>, Error> { Ok(Arc::new(NoopWaker)) }
///     fn as_any(&self) -> &dyn Any { self }
/// }
///
/// let lp = EventLoop::new(Jumpy(Cell::new(Instant::ZERO)));
/// lp.call_later(Duration::from_secs(60), |lp| lp.stop()).unwrap();
/// lp.run_forever().unwrap();
/// assert_eq!(lp.time(), Instant::ZERO + Duration::from_secs(60));
/// ```
pub trait Host: 'static {
    /// The current time on the host's monotonic clock.
    fn now(&self) -> Instant;

    /// Blocks until I/O is ready, the host is woken, or `timeout` passes
    /// (rounded up; `None`: no timeout). Only called for
    /// [`HostMode::Blocking`] hosts, and only by the loop.
    fn wait(&self, lp: &EventLoop, timeout: Option<Duration>) -> Result<(), Error>;

    /// The thread-safe wake-up for this host, or `Unsupported` if no other
    /// thread can ever reach it.
    fn remote_waker(&self) -> Result<Arc<dyn HostWaker>, Error>;

    /// Whether the host blocks or is driven. Default: blocking.
    fn mode(&self) -> HostMode {
        HostMode::Blocking
    }

    /// Work was added while no iteration was running (driven hosts: arrange
    /// a step). Called on the loop's thread. Default: nothing.
    fn notify(&self, lp: &EventLoop) {
        let _ = lp;
    }

    /// The I/O operations this host offers (sockets, pipes, signals, an
    /// executor…). Called once, when the loop is created. Default: none, so
    /// every I/O method of the loop returns `Unsupported`.
    fn backends(&self) -> crate::backend::Backends {
        crate::backend::Backends { why: "this host has no I/O", ..Default::default() }
    }

    /// The loop is closing: release OS resources. Called once.
    fn close(&self, lp: &EventLoop) {
        let _ = lp;
    }

    /// The host as `Any`, for [`EventLoop::host`](crate::EventLoop::host).
    fn as_any(&self) -> &dyn Any;
}
