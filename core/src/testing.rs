//! A deterministic host for tests: [`VirtualClock`].
//!
//! Its clock only moves when the loop waits: a wait with a timeout jumps
//! the clock forward by exactly that timeout (like tokio's paused time), so
//! an hour of timers runs in microseconds and every run is identical. It
//! has no I/O. A wait without timeout — nothing ready, no timer — would
//! block forever; it returns an error instead, which `run_forever` reports.
//!
//! It is for scheduling tests; it never replaces a test on a real host.

use alloc::sync::Arc;
use core::any::Any;
use core::cell::Cell;
use core::time::Duration;

use crate::{Error, ErrorKind, EventLoop, Host, HostWaker, Instant, NoopWaker};

/// A host with a virtual clock that jumps to each deadline.
///
/// ```
/// use anyloop_core::{EventLoop, testing::VirtualClock};
/// use core::time::Duration;
///
/// let lp = EventLoop::new(VirtualClock::new());
/// lp.call_later(Duration::from_secs(3600), |lp| lp.stop()).unwrap();
/// lp.run_forever().unwrap(); // returns at once, an hour later
/// assert_eq!(lp.host::<VirtualClock>().unwrap().waits(), 1);
/// ```
#[derive(Debug, Default)]
pub struct VirtualClock {
    now: Cell<Instant>,
    waits: Cell<u64>,
}

impl VirtualClock {
    /// A clock at [`Instant::ZERO`].
    pub fn new() -> VirtualClock {
        VirtualClock::default()
    }

    /// Moves the clock forward by `d` (as if time passed outside the loop).
    pub fn advance(&self, d: Duration) {
        self.now.set(self.now.get() + d);
    }

    /// How many times the loop waited with a non-zero timeout.
    pub fn waits(&self) -> u64 {
        self.waits.get()
    }
}

impl Host for VirtualClock {
    fn now(&self) -> Instant {
        self.now.get()
    }

    fn wait(&self, _lp: &EventLoop, timeout: Option<Duration>) -> Result<(), Error> {
        match timeout {
            Some(Duration::ZERO) => Ok(()),
            Some(t) => {
                self.waits.set(self.waits.get() + 1);
                self.advance(t);
                Ok(())
            }
            None => Err(Error::new(
                ErrorKind::Other,
                "virtual clock: nothing is scheduled and nothing can wake the loop (it would block forever)",
            )),
        }
    }

    fn remote_waker(&self) -> Result<Arc<dyn HostWaker>, Error> {
        Ok(Arc::new(NoopWaker))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
