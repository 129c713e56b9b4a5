//! [`LoopFuture`]: asyncio's `Future`, a result slot bound to a loop.
//!
//! One side sets a result, an error, or cancels; any number of tasks await
//! it; done callbacks run through `call_soon` once it completes, in the
//! order they were added — as in asyncio. Awaiting moves the result out
//! (Rust values are not shared implicitly); [`LoopFuture::result`] clones it
//! for `T: Clone`.

use alloc::boxed::Box;
use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use crate::event_loop::Inner;
use crate::{Error, ErrorKind, EventLoop, ExceptionContext};

type DoneCallback<T> = Box<dyn FnOnce(&EventLoop, &LoopFuture<T>)>;

enum Slot<T> {
    Pending,
    Done(Result<T, Error>),
    Taken,
}

struct State<T> {
    slot: Slot<T>,
    waiters: Vec<Waker>,
    callbacks: Vec<(u64, DoneCallback<T>)>,
    next_id: u64,
    error_retrieved: bool,
}

struct Shared<T> {
    lp: Weak<Inner>,
    state: RefCell<State<T>>,
}

/// A future bound to a loop (asyncio's `Future`), created with
/// [`EventLoop::create_future`]. Clones share the same slot.
///
/// ```
/// # use anyloop_core::{EventLoop, testing::VirtualClock};
/// # use core::time::Duration;
/// let lp = EventLoop::new(VirtualClock::new());
/// let fut = lp.create_future::<&str>();
/// let setter = fut.clone();
/// lp.call_later(Duration::from_secs(1), move |_| setter.set_result("done").unwrap()).unwrap();
/// assert_eq!(lp.run_until_complete(fut).unwrap().unwrap(), "done");
/// ```
pub struct LoopFuture<T> {
    shared: Rc<Shared<T>>,
}

impl<T> Clone for LoopFuture<T> {
    fn clone(&self) -> Self {
        LoopFuture { shared: self.shared.clone() }
    }
}

impl<T: 'static> LoopFuture<T> {
    pub(crate) fn new(lp: &EventLoop) -> LoopFuture<T> {
        LoopFuture {
            shared: Rc::new(Shared {
                lp: Rc::downgrade(&lp.inner),
                state: RefCell::new(State {
                    slot: Slot::Pending,
                    waiters: Vec::new(),
                    callbacks: Vec::new(),
                    next_id: 0,
                    error_retrieved: false,
                }),
            }),
        }
    }

    /// The loop this future belongs to, unless it was dropped.
    pub fn get_loop(&self) -> Option<EventLoop> {
        self.shared.lp.upgrade().map(|inner| EventLoop { inner })
    }

    fn complete(&self, outcome: Result<T, Error>) -> Result<(), Error> {
        let (waiters, callbacks) = {
            let mut st = self.shared.state.borrow_mut();
            if !matches!(st.slot, Slot::Pending) {
                return Err(Error::new(ErrorKind::InvalidState, "invalid state: the future is already done"));
            }
            st.slot = Slot::Done(outcome);
            (core::mem::take(&mut st.waiters), core::mem::take(&mut st.callbacks))
        };
        for w in waiters {
            w.wake();
        }
        if !callbacks.is_empty()
            && let Some(lp) = self.get_loop()
        {
            for (_, cb) in callbacks {
                let me = self.clone();
                let _ = lp.call_soon(move |lp| cb(lp, &me));
            }
        }
        Ok(())
    }

    /// Marks the future done with `value`. `InvalidState` if already done.
    pub fn set_result(&self, value: T) -> Result<(), Error> {
        self.complete(Ok(value))
    }

    /// Marks the future done with an error (asyncio's `set_exception`).
    /// `InvalidState` if already done.
    pub fn set_exception(&self, error: Error) -> Result<(), Error> {
        self.complete(Err(error))
    }

    /// Cancels the future; returns false if it was already done.
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        self.complete(Err(Error::cancelled(msg))).is_ok()
    }

    /// Whether the future completed in any way.
    pub fn done(&self) -> bool {
        !matches!(self.shared.state.borrow().slot, Slot::Pending)
    }

    /// Whether the future was cancelled.
    pub fn cancelled(&self) -> bool {
        matches!(&self.shared.state.borrow().slot, Slot::Done(Err(e)) if e.is_cancelled())
    }

    /// The error the future completed with (`None` for a result); an error
    /// if it is not done, or `Cancelled` if it was cancelled (as asyncio).
    pub fn exception(&self) -> Result<Option<Error>, Error> {
        let mut st = self.shared.state.borrow_mut();
        match &st.slot {
            Slot::Pending => Err(Error::new(ErrorKind::InvalidState, "Exception is not set.")),
            Slot::Done(Err(e)) if e.is_cancelled() => Err(e.clone()),
            Slot::Done(Err(e)) => {
                let e = e.clone();
                st.error_retrieved = true;
                Ok(Some(e))
            }
            Slot::Done(Ok(_)) | Slot::Taken => Ok(None),
        }
    }

    /// Adds a callback run (via `call_soon`) when the future completes — at
    /// once if it already has. Returns an id for
    /// [`remove_done_callback`](Self::remove_done_callback).
    pub fn add_done_callback(&self, f: impl FnOnce(&EventLoop, &LoopFuture<T>) + 'static) -> u64 {
        let mut st = self.shared.state.borrow_mut();
        let id = st.next_id;
        st.next_id += 1;
        if matches!(st.slot, Slot::Pending) {
            st.callbacks.push((id, Box::new(f)));
        } else {
            drop(st);
            if let Some(lp) = self.get_loop() {
                let me = self.clone();
                let _ = lp.call_soon(move |lp| f(lp, &me));
            }
        }
        id
    }

    /// Removes a done callback; returns how many were removed (0 or 1).
    pub fn remove_done_callback(&self, id: u64) -> usize {
        let mut st = self.shared.state.borrow_mut();
        let before = st.callbacks.len();
        st.callbacks.retain(|(i, _)| *i != id);
        before - st.callbacks.len()
    }

    /// Moves the outcome out: the first caller gets it, later ones get
    /// `InvalidState`. `None` while pending.
    fn take(&self) -> Option<Result<T, Error>> {
        let mut st = self.shared.state.borrow_mut();
        match core::mem::replace(&mut st.slot, Slot::Taken) {
            Slot::Pending => {
                st.slot = Slot::Pending;
                None
            }
            Slot::Done(Ok(v)) => Some(Ok(v)),
            Slot::Done(Err(e)) => {
                // Errors stay visible to `exception()` and to other awaiters.
                st.error_retrieved = true;
                st.slot = Slot::Done(Err(e.clone()));
                Some(Err(e))
            }
            Slot::Taken => Some(Err(Error::new(ErrorKind::InvalidState, "the future's result was already taken"))),
        }
    }
}

impl<T: Clone + 'static> LoopFuture<T> {
    /// The result (cloned), the error it completed with, or `InvalidState`
    /// if it is not done (asyncio's `Future.result`).
    pub fn result(&self) -> Result<T, Error> {
        let mut st = self.shared.state.borrow_mut();
        match &st.slot {
            Slot::Pending => Err(Error::new(ErrorKind::InvalidState, "Result is not set.")),
            Slot::Done(Ok(v)) => Ok(v.clone()),
            Slot::Done(Err(e)) => {
                let e = e.clone();
                st.error_retrieved = true;
                Err(e)
            }
            Slot::Taken => Err(Error::new(ErrorKind::InvalidState, "the future's result was already taken")),
        }
    }
}

impl<T: 'static> Future for LoopFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(r) = self.take() {
            return Poll::Ready(r);
        }
        let mut st = self.shared.state.borrow_mut();
        if !st.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            st.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if let Slot::Done(Err(e)) = &st.slot
            && !st.error_retrieved
            && !e.is_cancelled()
            && let Some(inner) = self.lp.upgrade()
        {
            let lp = EventLoop { inner };
            let mut ctx = ExceptionContext::new("Future exception was never retrieved");
            ctx.exception = Some(e.clone());
            lp.call_exception_handler(&ctx);
        }
    }
}

impl<T> fmt::Debug for LoopFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.shared.state.borrow().slot {
            Slot::Pending => "pending",
            Slot::Done(Ok(_)) | Slot::Taken => "finished",
            Slot::Done(Err(e)) if e.is_cancelled() => "cancelled",
            Slot::Done(Err(_)) => "finished with error",
        };
        write!(f, "<LoopFuture {state}>")
    }
}
