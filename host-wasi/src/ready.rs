//! [`Readiness`]: awaiting one readiness of a source from async code
//! (a connect in progress, a name lookup, a datagram stream).
//!
//! The future owns the resource the source belongs to and gives it back
//! when the source is ready. Dropping the future drops the registration —
//! the pollable — *before* the resource, the order WASI requires of a
//! child and its parent.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use anyloop_core::Handle;

use crate::reactor::{Reactor, Source, Token};

#[derive(Default)]
struct State {
    fired: bool,
    waker: Option<Waker>,
}

/// Resolves to `owner` once `source` is ready.
pub(crate) struct Readiness<T> {
    reactor: Rc<Reactor>,
    token: Option<Token>,
    state: Rc<RefCell<State>>,
    owner: Option<T>,
}

/// Waits until the source `subscribe(&owner)` returns is ready, then
/// yields `owner` back.
pub(crate) fn readiness<T>(reactor: &Rc<Reactor>, owner: T, subscribe: impl FnOnce(&T) -> Source) -> Readiness<T> {
    let state = Rc::new(RefCell::new(State::default()));
    let s = state.clone();
    let handle = Handle::repeating(move |_| {
        let mut s = s.borrow_mut();
        s.fired = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    });
    let token = reactor.register(subscribe(&owner), handle, true);
    Readiness { reactor: reactor.clone(), token: Some(token), state, owner: Some(owner) }
}

impl<T> Readiness<T> {
    fn release(&mut self) {
        if let Some(t) = self.token.take() {
            self.reactor.deregister(t);
        }
    }
}

impl<T> Unpin for Readiness<T> {}

impl<T> Future for Readiness<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let fired = {
            let mut s = self.state.borrow_mut();
            if !s.fired {
                s.waker = Some(cx.waker().clone());
            }
            s.fired
        };
        if !fired {
            return Poll::Pending;
        }
        self.release();
        match self.owner.take() {
            Some(o) => Poll::Ready(o),
            // Polled again after completion: never resolves twice.
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for Readiness<T> {
    fn drop(&mut self) {
        self.release();
        drop(self.owner.take());
    }
}
