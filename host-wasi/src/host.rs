//! [`WasiHost`]: the loop's clock, its one blocking host call per
//! iteration, and the backends it offers.

use std::any::Any;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyloop_core::backend::Backends;
use anyloop_core::{Error, EventLoop, Host, HostWaker, Instant, NoopWaker};

use crate::reactor::Reactor;

/// Why the backends WASI lacks are missing (used in `Unsupported` errors).
pub(crate) const WHY: &str = "a WASI module has one thread and no signals or child processes";

/// The WASI host: `std::time::Instant` for the clock, `poll_oneoff`
/// (wasip1) or `wasi:io/poll` (wasip2) for the waiting.
///
/// Create loops with [`new_event_loop`](crate::new_event_loop), or
/// `EventLoop::new(WasiHost::new())`.
pub struct WasiHost {
    reactor: Rc<Reactor>,
}

impl WasiHost {
    /// A host with no registrations.
    pub fn new() -> WasiHost {
        WasiHost { reactor: Rc::new(Reactor::new()) }
    }

    /// How many times the loop has called the runtime's blocking poll
    /// (`poll_oneoff` / `wasi:io/poll.poll`) so far; a zero-timeout
    /// iteration with nothing to watch makes no call at all.
    pub fn polls(&self) -> u64 {
        self.reactor.polls()
    }
}

impl Default for WasiHost {
    fn default() -> Self {
        WasiHost::new()
    }
}

impl Host for WasiHost {
    fn now(&self) -> Instant {
        Instant::now_std()
    }

    fn wait(&self, lp: &EventLoop, timeout: Option<Duration>) -> Result<(), Error> {
        self.reactor.wait(lp, timeout)
    }

    fn remote_waker(&self) -> Result<Arc<dyn HostWaker>, Error> {
        // One thread: nothing else can run while the loop blocks, so there
        // is nobody to wake it. call_soon_threadsafe from the loop's own
        // thread needs no wake-up (the loop drains before it waits).
        Ok(Arc::new(NoopWaker))
    }

    fn backends(&self) -> Backends {
        Backends {
            io: Some(Rc::new(crate::io::WasiIo { reactor: self.reactor.clone() })),
            process: Some(Rc::new(crate::pipe::WasiPipes { reactor: self.reactor.clone() })),
            #[cfg(target_env = "p2")]
            net: Some(Rc::new(crate::p2::net::WasiNet { reactor: self.reactor.clone() })),
            why: WHY,
            ..Default::default()
        }
    }

    fn close(&self, _lp: &EventLoop) {
        self.reactor.clear();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
