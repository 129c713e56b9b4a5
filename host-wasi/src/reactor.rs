//! The reactor: what the loop waits for, and who hears about it.
//!
//! Every registration is a [`Source`] (an fd and a direction on wasip1, a
//! `pollable` on wasip2) and a [`Handle::repeating`] to queue when the
//! source is ready. Registrations can be switched off without being
//! dropped (a paused reader, a writer with nothing to write), so a
//! transport keeps its pollables for its whole life instead of creating
//! one per iteration.
//!
//! WASI readiness is level-triggered: each wait subscribes to every active
//! source afresh, and the runtime reports those ready *now*. That is
//! asyncio's `add_reader` semantics as they are, with no re-arming.
//!
//! [`Reactor::wait`] runs inside `Host::wait`: it only queues handles, so
//! I/O callbacks run in the loop's batch, in asyncio's order.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use anyloop_core::{Error, ErrorKind, EventLoop, ExceptionContext, Handle};

pub(crate) use crate::sys::Source;

/// A registration's index in the reactor.
pub(crate) type Token = usize;

struct Entry {
    source: Source,
    handle: Handle,
    active: bool,
}

/// The registrations of one loop.
#[derive(Default)]
pub(crate) struct Reactor {
    entries: RefCell<Vec<Option<Entry>>>,
    free: RefCell<Vec<Token>>,
    polls: Cell<u64>,
    /// `add_reader` / `add_writer` registrations: (fd, is_reader) → token.
    #[cfg(target_env = "p1")]
    watchers: RefCell<std::collections::HashMap<(anyloop_core::RawFd, bool), Token>>,
}

impl Reactor {
    pub(crate) fn new() -> Reactor {
        Reactor::default()
    }

    /// Registers `source`; `handle` is queued whenever it is ready while
    /// active.
    pub(crate) fn register(&self, source: Source, handle: Handle, active: bool) -> Token {
        let entry = Some(Entry { source, handle, active });
        let mut entries = self.entries.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(t) => {
                entries[t] = entry;
                t
            }
            None => {
                entries.push(entry);
                entries.len() - 1
            }
        }
    }

    /// Switches a registration on or off.
    pub(crate) fn set_active(&self, token: Token, active: bool) {
        if let Some(Some(e)) = self.entries.borrow_mut().get_mut(token) {
            e.active = active;
        }
    }

    /// Replaces the handle of a registration (`add_reader` on a watched fd).
    #[cfg(target_env = "p1")]
    pub(crate) fn replace_handle(&self, token: Token, handle: Handle) -> Option<Handle> {
        match self.entries.borrow_mut().get_mut(token) {
            Some(Some(e)) => {
                e.active = true;
                Some(std::mem::replace(&mut e.handle, handle))
            }
            _ => None,
        }
    }

    /// Drops a registration: its source (pollable) now, its handle
    /// cancelled so what it captured is released.
    pub(crate) fn deregister(&self, token: Token) {
        let entry = self.entries.borrow_mut().get_mut(token).and_then(Option::take);
        if let Some(e) = entry {
            self.free.borrow_mut().push(token);
            let Entry { source, handle, .. } = e;
            release(source);
            handle.cancel();
            drop(handle);
        }
    }

    /// The watcher of `fd` in one direction, registered or replaced.
    #[cfg(target_env = "p1")]
    pub(crate) fn set_watcher(&self, fd: anyloop_core::RawFd, read: bool, handle: Handle) {
        let existing = self.watchers.borrow().get(&(fd, read)).copied();
        if let Some(t) = existing
            && let Some(old) = self.replace_handle(t, handle.clone())
        {
            old.cancel();
            return;
        }
        let source = if read { Source::Read(fd) } else { Source::Write(fd) };
        let t = self.register(source, handle, true);
        self.watchers.borrow_mut().insert((fd, read), t);
    }

    /// Removes the watcher of `fd` in one direction; whether there was one.
    #[cfg(target_env = "p1")]
    pub(crate) fn remove_watcher(&self, fd: anyloop_core::RawFd, read: bool) -> bool {
        let t = self.watchers.borrow_mut().remove(&(fd, read));
        if let Some(t) = t {
            self.deregister(t);
        }
        t.is_some()
    }

    /// How many blocking polls the loop made.
    pub(crate) fn polls(&self) -> u64 {
        self.polls.get()
    }

    /// One wait: poll every active source and a clock for `timeout`, then
    /// queue the handles of the ready sources.
    pub(crate) fn wait(&self, lp: &EventLoop, timeout: Option<Duration>) -> Result<(), Error> {
        let (tokens, outcome) = {
            let entries = self.entries.borrow();
            let mut tokens = Vec::new();
            let mut sources = Vec::new();
            for (t, e) in entries.iter().enumerate() {
                if let Some(e) = e
                    && e.active
                {
                    tokens.push(t);
                    sources.push(&e.source);
                }
            }
            if sources.is_empty() && timeout == Some(Duration::ZERO) {
                // Nothing to watch and no time to wait: no host call at all.
                return Ok(());
            }
            if sources.is_empty() && timeout.is_none() {
                return Err(Error::new(
                    ErrorKind::InvalidState,
                    "the loop would wait forever: no timer, no watched descriptor, no connection, and nothing \
                     else can wake a WASI module",
                ));
            }
            self.polls.set(self.polls.get() + 1);
            (tokens, crate::sys::poll(&sources, timeout))
        };
        let outcome = outcome?;
        let mut ready = Vec::with_capacity(outcome.ready.len() + outcome.broken.len());
        {
            let mut entries = self.entries.borrow_mut();
            for i in outcome.ready.iter().chain(outcome.broken.iter()) {
                if let Some(t) = tokens.get(*i)
                    && let Some(Some(e)) = entries.get_mut(*t)
                {
                    ready.push(e.handle.clone());
                }
            }
            // A source the runtime rejected (a closed fd) would fail every
            // later wait: switch it off, wake its owner once to find out.
            for i in &outcome.broken {
                if let Some(t) = tokens.get(*i)
                    && let Some(Some(e)) = entries.get_mut(*t)
                {
                    e.active = false;
                }
            }
        }
        for h in &ready {
            let _ = lp.schedule_handle(h);
        }
        if !outcome.broken.is_empty() {
            let n = outcome.broken.len();
            let _ = lp.call_soon(move |lp| {
                let ctx = ExceptionContext::new(format!(
                    "{n} watched descriptor(s) cannot be waited for (closed, or not watchable in that direction); \
                     their watchers were switched off"
                ));
                lp.call_exception_handler(&ctx);
            });
        }
        Ok(())
    }

    /// Drops every registration (the loop is closing). Sources go first,
    /// then handles: a handle may own the stream a pollable belongs to,
    /// and a WASI resource must outlive its children.
    pub(crate) fn clear(&self) {
        let entries = std::mem::take(&mut *self.entries.borrow_mut());
        self.free.borrow_mut().clear();
        #[cfg(target_env = "p1")]
        self.watchers.borrow_mut().clear();
        let mut handles = Vec::with_capacity(entries.len());
        for e in entries.into_iter().flatten() {
            let Entry { source, handle, .. } = e;
            release(source);
            handles.push(handle);
        }
        for h in &handles {
            h.cancel();
        }
        drop(handles);
    }
}

/// Drops a source now (on wasip2 a pollable, which must go before the
/// resource it belongs to; on wasip1 plain data).
#[allow(clippy::drop_non_drop)]
fn release(source: Source) {
    drop(source);
}

/// What one poll found, as indices into the sources it was given.
pub(crate) struct Outcome {
    /// Ready sources.
    pub(crate) ready: Vec<usize>,
    /// Sources the runtime rejected (bad descriptors).
    pub(crate) broken: Vec<usize>,
}
