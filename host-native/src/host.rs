//! [`NativeHost`]: the loop's clock, its wait in the OS selector, and its
//! cross-thread wake-up.

use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use std::rc::Rc;

use anyloop_core::backend::Backends;
use anyloop_core::{Error, EventLoop, Host, HostWaker, Instant};
use mio::{Events, Poll, Token, Waker};

use crate::executor::ThreadPool;
use crate::io::NativeIo;
use crate::net::NativeNet;
use crate::process::{ChildWatcher, NativeProcess};
use crate::reactor::Reactor;
use crate::signals::NativeSignals;

/// The token of the cross-thread waker; I/O sources use the others.
const WAKER: Token = Token(usize::MAX);

/// How many readiness events one wait collects at most; more stay queued
/// in the kernel for the next iteration.
const EVENTS_CAPACITY: usize = 1024;

/// The native host: `mio::Poll` + `mio::Waker`, and the monotonic clock of
/// `std::time::Instant`.
///
/// Create loops with [`new_event_loop`](crate::new_event_loop), or
/// `EventLoop::new(NativeHost::new()?)`.
pub struct NativeHost {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    waker: Arc<MioWaker>,
    reactor: Rc<Reactor>,
    #[cfg(unix)]
    signals: Rc<crate::signals::LoopSignals>,
    #[cfg(unix)]
    reaper: Rc<crate::process::reaper::Reaper>,
}

struct MioWaker(Waker);

impl HostWaker for MioWaker {
    fn wake(&self) {
        // Only fails if the eventfd/pipe is gone, i.e. the loop is closed;
        // then there is nobody left to wake.
        let _ = self.0.wake();
    }
}

impl NativeHost {
    /// A host with a fresh OS selector.
    pub fn new() -> Result<NativeHost, Error> {
        let poll = Poll::new().map_err(|e| Error::from(e).context("cannot create the OS selector"))?;
        let waker =
            Waker::new(poll.registry(), WAKER).map_err(|e| Error::from(e).context("cannot create the waker"))?;
        let registry = poll.registry().try_clone().map_err(|e| Error::from(e).context("cannot clone the registry"))?;
        let reactor = Rc::new(Reactor::new(registry));
        #[cfg(unix)]
        let signals = crate::signals::LoopSignals::new(reactor.clone());
        Ok(NativeHost {
            #[cfg(unix)]
            reaper: crate::process::reaper::Reaper::new(reactor.clone(), signals.clone()),
            #[cfg(unix)]
            signals,
            reactor,
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(EVENTS_CAPACITY)),
            waker: Arc::new(MioWaker(waker)),
        })
    }

    /// Chooses how the loop learns that its child processes exited (before
    /// the loop is created): pidfd where available ([`ChildWatcher::Auto`],
    /// the default), or always SIGCHLD. `ANYLOOP_FORCE_SIGCHLD=1` in the
    /// environment forces SIGCHLD.
    pub fn with_child_watcher(self, watcher: ChildWatcher) -> NativeHost {
        #[cfg(unix)]
        self.reaper.set_mode(watcher);
        #[cfg(not(unix))]
        let _ = watcher;
        self
    }
}

impl NativeHost {
    /// The reactor of this host's selector.
    pub(crate) fn reactor(&self) -> &Rc<Reactor> {
        &self.reactor
    }
}

impl Host for NativeHost {
    fn now(&self) -> Instant {
        Instant::now_std()
    }

    fn wait(&self, lp: &EventLoop, timeout: Option<Duration>) -> Result<(), Error> {
        self.reactor.rearm();
        let mut poll = self.poll.borrow_mut();
        let mut events = self.events.borrow_mut();
        // mio rounds a timeout up to the selector's granularity (whole
        // milliseconds for epoll), so the loop never wakes before a timer.
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            // A signal interrupted the wait: the loop simply iterates again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(Error::from(e).context("waiting for I/O failed")),
        }
        for event in events.iter() {
            // The waker's event only interrupts the wait; the loop drains
            // its cross-thread queue right after.
            if event.token() != WAKER {
                self.reactor.dispatch(lp, event);
            }
        }
        Ok(())
    }

    fn remote_waker(&self) -> Result<Arc<dyn HostWaker>, Error> {
        Ok(self.waker.clone())
    }

    fn backends(&self) -> Backends {
        Backends {
            io: Some(Rc::new(NativeIo { reactor: self.reactor.clone() })),
            #[cfg(unix)]
            signals: Some(Rc::new(NativeSignals { signals: self.signals.clone() })),
            #[cfg(not(unix))]
            signals: Some(Rc::new(NativeSignals)),
            #[cfg(unix)]
            process: Some(Rc::new(NativeProcess { reactor: self.reactor.clone(), reaper: self.reaper.clone() })),
            #[cfg(not(unix))]
            process: Some(Rc::new(NativeProcess)),
            net: Some(Rc::new(NativeNet { reactor: self.reactor.clone() })),
            executor: Some(Arc::new(ThreadPool::default())),
            why: "not available on this platform",
        }
    }

    fn close(&self, _lp: &EventLoop) {
        #[cfg(unix)]
        {
            self.reaper.close();
            self.signals.close();
        }
        self.reactor.clear();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
