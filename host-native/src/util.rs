//! Small async building blocks of the native host: waiting for a source's
//! readiness, waiting for a raw fd (through the level-triggered watchers),
//! sleeping on the loop's clock, and containing panics of user callbacks.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use anyloop_core::{Error, ErrorKind, EventLoop, LoopFuture, TimerHandle};
use mio::event::Source;
use mio::{Interest, Token};

use crate::reactor::{Dispatch, Reactor, Readiness};

/// A one-shot [`Dispatch`]: remembers that an event came and wakes a task.
#[derive(Default)]
struct ReadyWaiter {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Dispatch for ReadyWaiter {
    fn ready(&self, _lp: &EventLoop, _r: Readiness) {
        self.fired.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

struct Registration<'a, S: Source> {
    reactor: &'a Reactor,
    source: &'a mut S,
    token: Token,
}

impl<S: Source> Drop for Registration<'_, S> {
    fn drop(&mut self) {
        // Only fails if the descriptor is already gone.
        let _ = self.reactor.deregister(self.source, self.token);
    }
}

/// Registers `source` for `interest`, waits for its first event, and
/// deregisters it (also when the future is dropped). Connect and accept use
/// this before a socket gets its transport.
pub(crate) async fn wait_source<S: Source>(reactor: &Reactor, source: &mut S, interest: Interest) -> Result<(), Error> {
    let waiter = Rc::new(ReadyWaiter::default());
    let token = reactor
        .register(source, interest, waiter.clone())
        .map_err(|e| Error::from(e).context("cannot register socket"))?;
    let _registration = Registration { reactor, source, token };
    poll_fn(|cx| {
        if waiter.fired.get() {
            return Poll::Ready(());
        }
        *waiter.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
    Ok(())
}

/// Waits until the raw descriptor `fd` is readable (or writable), through the
/// loop's fd watchers — asyncio's `sock_*` methods do the same with
/// `add_reader` / `add_writer`, replacing any watcher of the fd meanwhile.
#[cfg(unix)]
pub(crate) async fn wait_fd(reactor: &Reactor, fd: anyloop_core::RawFd, write: bool) -> Result<(), Error> {
    struct Unwatch<'a>(&'a Reactor, anyloop_core::RawFd, bool);
    impl Drop for Unwatch<'_> {
        fn drop(&mut self) {
            let _ = if self.2 { self.0.remove_writer(self.1) } else { self.0.remove_reader(self.1) };
        }
    }
    let waiter = Rc::new(ReadyWaiter::default());
    let w = waiter.clone();
    let handle = anyloop_core::Handle::repeating(move |lp| w.ready(lp, Readiness::default()));
    if write {
        reactor.add_writer(fd, handle)?;
    } else {
        reactor.add_reader(fd, handle)?;
    }
    let _unwatch = Unwatch(reactor, fd, write);
    poll_fn(|cx| {
        if waiter.fired.get() {
            return Poll::Ready(());
        }
        *waiter.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
    Ok(())
}

/// A timer as a future; dropping it cancels the timer.
pub(crate) struct Sleep {
    fut: LoopFuture<()>,
    timer: Option<TimerHandle>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match Pin::new(&mut self.fut).poll(cx) {
            Poll::Ready(_) => {
                self.timer = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.cancel();
        }
    }
}

/// Sleeps `d` on the loop's clock. If the loop is closed it resolves at once.
pub(crate) fn sleep(lp: &EventLoop, d: Duration) -> Sleep {
    let fut = lp.create_future::<()>();
    let f2 = fut.clone();
    let timer = lp.call_later(d, move |_| {
        let _ = f2.set_result(());
    });
    if timer.is_err() {
        let _ = fut.set_result(());
    }
    Sleep { fut, timer: timer.ok() }
}

/// Runs a user callback with panics turned into `Panic` errors.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "Box<dyn Any>".to_string()
        };
        Error::new(ErrorKind::Panic, format!("panicked: {msg}"))
    })
}

/// Reports `e` to the loop's exception handler.
pub(crate) fn report(lp: &EventLoop, message: &str, e: Error) {
    let mut ctx = anyloop_core::ExceptionContext::new(message);
    ctx.exception = Some(e);
    lp.call_exception_handler(&ctx);
}
