//! The reactor: which OS sources are registered with the selector, and who
//! hears about their readiness.
//!
//! Two kinds of registration share one token space:
//!
//! * **Watchers** (`add_reader` / `add_writer` on a raw fd): asyncio's
//!   semantics are level-triggered — the callback runs in every iteration
//!   while the fd stays readable — but mio is edge-triggered. The reactor
//!   bridges that by re-arming (`reregister`) every watcher that fired, at
//!   the start of the *next* wait: by then its callback has run, so the
//!   kernel reports the fd again only if it is still ready. One
//!   `epoll_ctl` per fired watcher per iteration; no spurious calls.
//! * **Sources** (transports, servers, pipes, signals): they implement
//!   [`Dispatch`] and get the raw edge-triggered readiness, which they turn
//!   into scheduled handles. They read until `WouldBlock`, so they never
//!   need re-arming.
//!
//! `Dispatch::ready` runs inside [`Host::wait`](anyloop_core::Host::wait):
//! it must only record readiness and schedule handles, never call user
//! code, so I/O callbacks run in the loop's batch in asyncio's order.

// Raw-fd watchers are Unix-only; on Windows their bookkeeping is unused.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

use anyloop_core::{Error, ErrorKind, EventLoop, Handle, RawFd};
use mio::event::{Event, Source};
use mio::{Interest, Registry, Token};

/// What a readiness event says, independent of the OS.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Readable (or a read-side EOF/error is pending).
    pub readable: bool,
    /// Writable.
    pub writable: bool,
    /// The peer closed its write side (EOF pending).
    pub read_closed: bool,
    /// The write side is closed (peer gone).
    pub write_closed: bool,
    /// An error is pending on the source.
    pub error: bool,
}

impl Readiness {
    fn from_event(e: &Event) -> Readiness {
        Readiness {
            readable: e.is_readable(),
            writable: e.is_writable(),
            read_closed: e.is_read_closed(),
            write_closed: e.is_write_closed(),
            error: e.is_error(),
        }
    }
}

/// A registered source's receiver of readiness (transports, servers…).
pub trait Dispatch {
    /// The source became ready. Record it and schedule handles; do not run
    /// user code here.
    fn ready(&self, lp: &EventLoop, readiness: Readiness);

    /// The loop is closing with the source still registered: release the
    /// descriptor and any reference cycles, without calling user code.
    fn loop_closed(&self) {}
}

struct Watcher {
    fd: RawFd,
    reader: Option<Handle>,
    writer: Option<Handle>,
}

impl Watcher {
    fn interest(&self) -> Option<Interest> {
        match (self.reader.is_some(), self.writer.is_some()) {
            (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }
}

enum Entry {
    Watcher(Watcher),
    Source(Rc<dyn Dispatch>),
}

#[derive(Default)]
struct Table {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    watchers: HashMap<RawFd, usize>,
    /// Watchers that fired in the last wait, to re-arm before the next.
    fired: Vec<usize>,
}

impl Table {
    fn insert(&mut self, e: Entry) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(e);
                i
            }
            None => {
                self.entries.push(Some(e));
                self.entries.len() - 1
            }
        }
    }
    fn remove(&mut self, i: usize) -> Option<Entry> {
        let e = self.entries.get_mut(i)?.take();
        if e.is_some() {
            self.free.push(i);
        }
        e
    }
}

/// The registrations of one loop's selector.
pub struct Reactor {
    registry: Registry,
    table: RefCell<Table>,
}

fn err(e: io::Error, what: &str) -> Error {
    Error::from(e).context(what)
}

impl Reactor {
    pub(crate) fn new(registry: Registry) -> Reactor {
        Reactor { registry, table: RefCell::new(Table::default()) }
    }

    /// Registers `source` for `interest`; readiness goes to `target`.
    pub fn register(
        &self,
        source: &mut impl Source,
        interest: Interest,
        target: Rc<dyn Dispatch>,
    ) -> io::Result<Token> {
        let token = self.table.borrow_mut().insert(Entry::Source(target));
        if let Err(e) = self.registry.register(source, Token(token), interest) {
            let removed = self.table.borrow_mut().remove(token);
            drop(removed);
            return Err(e);
        }
        Ok(Token(token))
    }

    /// Changes the interest of a registered source.
    pub fn reregister(&self, source: &mut impl Source, token: Token, interest: Interest) -> io::Result<()> {
        self.registry.reregister(source, token, interest)
    }

    /// Unregisters a source; its `Dispatch` hears nothing more.
    pub fn deregister(&self, source: &mut impl Source, token: Token) -> io::Result<()> {
        let removed = self.table.borrow_mut().remove(token.0);
        drop(removed);
        self.registry.deregister(source)
    }

    /// Re-arms the watchers that fired (called before each wait).
    pub(crate) fn rearm(&self) {
        let mut table = self.table.borrow_mut();
        if table.fired.is_empty() {
            return;
        }
        let fired = std::mem::take(&mut table.fired);
        for i in fired.iter().copied() {
            if let Some(Some(Entry::Watcher(w))) = table.entries.get(i)
                && let Some(interest) = w.interest()
            {
                #[cfg(unix)]
                let _ = self.registry.reregister(&mut mio::unix::SourceFd(&w.fd), Token(i), interest);
                #[cfg(not(unix))]
                let _ = interest;
            }
        }
        table.fired = fired;
        table.fired.clear();
    }

    /// Routes one event (called from inside the wait).
    pub(crate) fn dispatch(&self, lp: &EventLoop, event: &Event) {
        let i = event.token().0;
        let r = Readiness::from_event(event);
        let target = {
            let mut table = self.table.borrow_mut();
            match table.entries.get(i) {
                Some(Some(Entry::Source(d))) => Some(d.clone()),
                Some(Some(Entry::Watcher(w))) => {
                    // Errors and hang-ups wake both sides, as select() does.
                    let wake_all = r.error || r.read_closed || r.write_closed;
                    let reader = if r.readable || wake_all { w.reader.clone() } else { None };
                    let writer = if r.writable || wake_all { w.writer.clone() } else { None };
                    table.fired.push(i);
                    drop(table);
                    for h in [reader, writer].into_iter().flatten() {
                        let _ = lp.schedule_handle(&h);
                    }
                    None
                }
                _ => None,
            }
        };
        if let Some(d) = target {
            d.ready(lp, r);
        }
    }

    fn set_watcher(&self, fd: RawFd, handle: Option<Handle>, read: bool) -> Result<bool, Error> {
        #[cfg(unix)]
        {
            if fd < 0 {
                return Err(Error::new(ErrorKind::InvalidInput, format!("invalid file descriptor: {fd}")));
            }
            let mut table = self.table.borrow_mut();
            let existing = table.watchers.get(&fd).copied();
            let Some(i) = existing else {
                let Some(handle) = handle else { return Ok(false) };
                let w = if read {
                    Watcher { fd, reader: Some(handle), writer: None }
                } else {
                    Watcher { fd, reader: None, writer: Some(handle) }
                };
                let interest = if read { Interest::READABLE } else { Interest::WRITABLE };
                let i = table.insert(Entry::Watcher(w));
                if let Err(e) = self.registry.register(&mut mio::unix::SourceFd(&fd), Token(i), interest) {
                    let removed = table.remove(i);
                    drop(table);
                    drop(removed);
                    let what = if e.raw_os_error() == Some(libc::EBADF) {
                        format!("invalid file descriptor: {fd}")
                    } else {
                        format!("cannot watch fd {fd}")
                    };
                    return Err(err(e, &what));
                }
                table.watchers.insert(fd, i);
                return Ok(false);
            };
            let Some(Some(Entry::Watcher(w))) = table.entries.get_mut(i) else {
                return Err(Error::new(ErrorKind::InvalidState, "watcher table out of sync"));
            };
            let slot = if read { &mut w.reader } else { &mut w.writer };
            let old = std::mem::replace(slot, handle);
            let had = old.is_some();
            if let Some(old) = &old {
                old.cancel();
            }
            match w.interest() {
                Some(interest) => {
                    self.registry
                        .reregister(&mut mio::unix::SourceFd(&fd), Token(i), interest)
                        .map_err(|e| err(e, &format!("cannot watch fd {fd}")))?;
                }
                None => {
                    table.watchers.remove(&fd);
                    let removed = table.remove(i);
                    drop(table);
                    drop(removed);
                    // The fd may already be closed; then the kernel dropped it.
                    let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
                }
            }
            drop(old);
            Ok(had)
        }
        #[cfg(not(unix))]
        {
            let _ = (fd, handle, read);
            Err(Error::unsupported("add_reader/add_writer", "watching raw descriptors needs a Unix selector"))
        }
    }

    /// `add_reader`.
    pub(crate) fn add_reader(&self, fd: RawFd, handle: Handle) -> Result<(), Error> {
        self.set_watcher(fd, Some(handle), true).map(|_| ())
    }

    /// `remove_reader`.
    pub(crate) fn remove_reader(&self, fd: RawFd) -> Result<bool, Error> {
        self.set_watcher(fd, None, true)
    }

    /// `add_writer`.
    pub(crate) fn add_writer(&self, fd: RawFd, handle: Handle) -> Result<(), Error> {
        self.set_watcher(fd, Some(handle), false).map(|_| ())
    }

    /// `remove_writer`.
    pub(crate) fn remove_writer(&self, fd: RawFd) -> Result<bool, Error> {
        self.set_watcher(fd, None, false)
    }

    /// Drops every registration (loop closing). Sources are responsible
    /// for closing their own descriptors.
    pub(crate) fn clear(&self) {
        let entries = {
            let mut table = self.table.borrow_mut();
            #[cfg(unix)]
            for (&fd, _) in table.watchers.iter() {
                let _ = self.registry.deregister(&mut mio::unix::SourceFd(&fd));
            }
            std::mem::take(&mut *table)
        };
        // Outside the borrow: sources deregister themselves while closing.
        for entry in entries.entries.iter().flatten() {
            if let Entry::Source(d) = entry {
                d.loop_closed();
            }
        }
        drop(entries);
    }
}
