//! [`JsHost`]: the [`Host`] of a loop in a web page.
//!
//! It owns the [driver](crate::browser::driver) (the one timer and the
//! message channel that run the loop) and the registry of open WebSockets,
//! so that closing the loop releases every browser resource it holds.

use std::any::Any;
use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use anyloop_core::backend::Backends;
use anyloop_core::{Error, EventLoop, Host, HostMode, HostWaker, Instant};

use crate::browser::driver::Driver;
pub use crate::browser::driver::DriverStats;
use crate::browser::js;
use crate::browser::websocket::WsInner;

/// Why the browser has no backend for file descriptors, raw sockets,
/// servers, DNS, pipes, subprocesses, signals and executors.
const WHY: &str = "a web page has no file descriptors, raw sockets, servers, DNS, pipes, \
                   processes, signals or threads; use anyloop::host::create_websocket_connection for networking";

/// Why `call_soon_threadsafe` and `EventLoop::handle` are unsupported.
const NO_THREADS: &str =
    "sharing the loop with Web Workers needs wasm atomics, which stable Rust 1.95 cannot build for the browser";

/// The browser host: `performance.now()` for time, one `setTimeout` for the
/// earliest deadline, a `MessageChannel` macrotask to run ready callbacks.
/// See the [crate docs](crate) for how it differs from the blocking hosts.
///
/// Reach it from a loop with `lp.host::<JsHost>()`.
pub struct JsHost {
    driver: Rc<Driver>,
    sockets: RefCell<Vec<Weak<WsInner>>>,
}

impl JsHost {
    /// A new browser host. `Other` if the JS environment has no
    /// `MessageChannel` (every browser, and workers, have one).
    pub fn new() -> Result<JsHost, Error> {
        Ok(JsHost { driver: Driver::new()?, sockets: RefCell::new(Vec::new()) })
    }

    /// How long the loop runs callbacks before yielding to the browser.
    pub fn time_slice(&self) -> Duration {
        self.driver.time_slice()
    }

    /// Sets the time slice (default 5 ms). Longer slices raise throughput a
    /// little and make the page less responsive during bursts.
    pub fn set_time_slice(&self, slice: Duration) {
        self.driver.set_time_slice(slice);
    }

    /// What the driver has done so far (for tests and diagnostics).
    pub fn stats(&self) -> DriverStats {
        self.driver.stats()
    }

    /// Zeroes the counters of [`stats`](Self::stats).
    pub fn reset_stats(&self) {
        self.driver.reset_stats();
    }

    pub(crate) fn add_stop_waiter(&self, waker: &std::task::Waker) {
        self.driver.add_stop_waiter(waker);
    }

    /// Tracks an open WebSocket, so that closing the loop closes it.
    pub(crate) fn register_socket(&self, socket: Weak<WsInner>) {
        let mut sockets = self.sockets.borrow_mut();
        sockets.retain(|s| s.strong_count() > 0);
        sockets.push(socket);
    }
}

impl Host for JsHost {
    fn now(&self) -> Instant {
        js::now()
    }

    fn wait(&self, _lp: &EventLoop, _timeout: Option<Duration>) -> Result<(), Error> {
        Err(Error::unsupported("blocking in the event loop", "a web page must never block"))
    }

    fn remote_waker(&self) -> Result<Arc<dyn HostWaker>, Error> {
        Err(Error::unsupported("call_soon_threadsafe", NO_THREADS))
    }

    fn mode(&self) -> HostMode {
        HostMode::Driven
    }

    fn notify(&self, lp: &EventLoop) {
        self.driver.notify(lp);
    }

    fn backends(&self) -> Backends {
        Backends { why: WHY, ..Default::default() }
    }

    fn close(&self, _lp: &EventLoop) {
        self.driver.shutdown();
        let sockets = std::mem::take(&mut *self.sockets.borrow_mut());
        for s in sockets.iter().filter_map(Weak::upgrade) {
            s.shutdown();
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A new event loop on the browser host (asyncio's `new_event_loop`); the
/// facade's `anyloop::new_event_loop()` calls this in a browser build.
///
/// Start it with `lp.run_forever()` (returns at once; the page keeps the
/// loop going until `stop`) or await [`run_forever`](crate::run_forever) /
/// [`run_until_complete`](crate::run_until_complete).
pub fn new_event_loop() -> Result<EventLoop, Error> {
    Ok(EventLoop::new(JsHost::new()?))
}
