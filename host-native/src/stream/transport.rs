//! [`StreamTransport`]: asyncio's socket transport over a [`StreamIo`].
//!
//! Life cycle, as asyncio's `_SelectorSocketTransport`:
//!
//! 1. [`StreamTransport::new`] registers the descriptor (readable and
//!    writable, edge-triggered); [`start`](StreamTransport::start) schedules
//!    `connection_made` for the next iteration. Readiness that arrives before
//!    it is only remembered.
//! 2. Readable events read (see the [module docs](super) for how much);
//!    writable events flush the write buffer and are ignored when it is
//!    empty.
//! 3. `close()` stops reading and, once the buffer is flushed, schedules
//!    `connection_lost(None)`; `abort()` and fatal errors drop the buffer and
//!    schedule `connection_lost(exc)` at once. The descriptor is closed right
//!    after `connection_lost` returns, and the protocol is released then so
//!    the protocol ⇄ transport reference cycle is broken.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::{Rc, Weak};
use std::task::Waker;

use anyloop_core::{
    BaseTransport, Error, ErrorKind, EventLoop, ExceptionContext, ExtraInfo, Handle, ProtocolSlot, ReadTransport,
    StreamProtocol, Transport, WaterMarks, WeakLoop, WriteBuffer,
};
use mio::{Interest, Token};

use super::{Direction, READ_SIZE_MAX, READ_SIZE_MIN, StreamIo};

mod handover;
mod write;

use crate::reactor::{Dispatch, Reactor, Readiness};
use handover::{HandedOver, handed_over_error};

// Transport state bits.
const CONNECTED: u16 = 1 << 0; // connection_made was called (so connection_lost will be)
const STARTED: u16 = 1 << 1; // connection_made returned: reading may begin
const PAUSED: u16 = 1 << 2; // pause_reading()
const READ_EOF: u16 = 1 << 3; // the peer's EOF was delivered
const MAYBE_READABLE: u16 = 1 << 4; // the kernel may hold data we have not read
const CLOSING: u16 = 1 << 5; // close(), abort() or a fatal error
const EOF_REQUESTED: u16 = 1 << 6; // write_eof()
const EOF_SENT: u16 = 1 << 7;
const LOST: u16 = 1 << 8; // connection_lost is scheduled
const SENDFILE: u16 = 1 << 9; // loop.sendfile() owns the socket's write side
const RELEASED: u16 = 1 << 10; // descriptor closed, protocol released
const HUP: u16 = 1 << 11; // the peer's EOF or an error is pending: read until it shows
const HANDED_OVER: u16 = 1 << 12; // start_tls took it: only the HandedOver handle drives it

// Pending event bits.
const EV_READ: u8 = 1;
const EV_WRITE: u8 = 2;

/// Full reads done in one callback before yielding to other callbacks.
const READS_PER_CALLBACK: usize = 4;
/// Buffers handed to one vectored write.
const MAX_IOV: usize = 64;

/// On Unix a short read means the socket was drained (a later arrival raises
/// a new edge). mio's Windows emulation makes no such promise.
const SHORT_READ_DRAINS: bool = cfg!(unix);

thread_local! {
    /// The read buffer every plain-protocol transport of this thread shares:
    /// data is handed to the protocol before the next read starts.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn with_scratch<R>(size: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut v) => {
            if v.len() < size {
                v.resize(size, 0);
            }
            f(&mut v[..size])
        }
        // Only if a protocol callback somehow reads another transport
        // synchronously: fall back to a private buffer.
        Err(_) => f(&mut vec![0u8; size]),
    })
}

#[derive(Default)]
struct Waiters {
    /// Woken when the write buffer is empty (sendfile waits for this).
    drained: Vec<Waker>,
    /// Woken on the next writable event (sendfile's own sends).
    writable: Option<Waker>,
}

/// A stream transport (asyncio's `Transport`) over the descriptor `S`.
///
/// Handed to protocols as `Rc<dyn Transport>`. The reactor holds it while
/// the descriptor is registered, so it lives until `connection_lost` (or the
/// loop's close), whoever else keeps it.
pub struct StreamTransport<S: StreamIo> {
    me: Weak<StreamTransport<S>>,
    io: RefCell<Option<S>>,
    token: Cell<Option<Token>>,
    reactor: Rc<Reactor>,
    lp: WeakLoop,
    slot: ProtocolSlot,
    handle: RefCell<Option<Handle>>,
    events: Cell<u8>,
    scheduled: Cell<bool>,
    state: Cell<u16>,
    wbuf: RefCell<WriteBuffer>,
    /// Whether the registration includes WRITABLE right now.
    write_interest: Cell<bool>,
    marks: RefCell<WaterMarks>,
    read_size: Cell<usize>,
    extra: Vec<(&'static str, ExtraInfo)>,
    direction: Direction,
    can_eof: bool,
    on_lost: RefCell<Option<Box<dyn FnOnce()>>>,
    waiters: RefCell<Waiters>,
    /// Calls made through the [`HandedOver`] handle, in progress.
    bypass: Cell<u32>,
}

fn closing_error() -> Error {
    Error::new(ErrorKind::InvalidState, "the transport is closing or closed")
}

impl<S: StreamIo> StreamTransport<S> {
    /// Wraps `io` (non-blocking, owned from now on) and registers it with the
    /// loop's reactor. Nothing reaches `protocol` until [`start`](Self::start).
    pub fn new(lp: &EventLoop, reactor: Rc<Reactor>, io: S, protocol: StreamProtocol) -> Result<Rc<Self>, Error> {
        let direction = io.direction();
        let t = Rc::new_cyclic(|me: &Weak<Self>| {
            let weak = me.clone();
            let handle = Handle::repeating(move |_| {
                if let Some(t) = weak.upgrade() {
                    t.on_events();
                }
            });
            StreamTransport {
                me: me.clone(),
                extra: io.extra_info(),
                can_eof: io.can_write_eof(),
                io: RefCell::new(Some(io)),
                token: Cell::new(None),
                reactor,
                lp: lp.downgrade(),
                slot: ProtocolSlot::new(lp, protocol),
                handle: RefCell::new(Some(handle)),
                events: Cell::new(0),
                scheduled: Cell::new(false),
                state: Cell::new(0),
                wbuf: RefCell::new(WriteBuffer::new()),
                write_interest: Cell::new(false),
                marks: RefCell::new(WaterMarks::default()),
                read_size: Cell::new(READ_SIZE_MIN),
                direction,
                on_lost: RefCell::new(None),
                waiters: RefCell::new(Waiters::default()),
                bypass: Cell::new(0),
            }
        });
        // Writability is watched only while something waits to be written
        // (see `set_write_interest`); a write-only pipe still watches
        // readability, which is how its reader's departure shows.
        let interest = Interest::READABLE;
        let target: Rc<dyn Dispatch> = t.clone();
        let token = {
            let mut io = t.io.borrow_mut();
            let Some(io) = io.as_mut() else { return Err(closing_error()) };
            t.reactor.register(io, interest, target).map_err(|e| Error::from(e).context("cannot register socket"))?
        };
        t.token.set(Some(token));
        Ok(t)
    }

    /// Schedules `connection_made` for the next iteration; then reading
    /// starts and `waiter` (if any) gets its result, as asyncio's transports
    /// do in their constructor.
    pub fn start(&self, waiter: Option<anyloop_core::LoopFuture<()>>) {
        let (Some(me), Some(lp)) = (self.me.upgrade(), self.lp.upgrade()) else { return };
        let scheduled = lp.call_soon(move |lp| {
            if me.has(LOST) {
                if let Some(w) = waiter {
                    let _ =
                        w.set_exception(Error::new(ErrorKind::ConnectionAborted, "connection lost before it was made"));
                }
                return;
            }
            me.set(CONNECTED);
            let t: Rc<dyn Transport> = me.clone();
            if let Err(e) = me.slot.connection_made(t) {
                me.fatal_error(lp, e.clone(), "Fatal error: protocol.connection_made() call failed.");
                if let Some(w) = waiter {
                    let _ = w.set_exception(e);
                }
                return;
            }
            me.set(STARTED);
            if me.has(MAYBE_READABLE) {
                me.schedule(lp, EV_READ);
            }
            if let Some(w) = waiter {
                let _ = w.set_result(());
            }
        });
        if scheduled.is_err() {
            self.release();
        }
    }

    /// Runs `f` when the connection is lost (servers count their clients).
    pub fn set_on_lost(&self, f: Box<dyn FnOnce()>) {
        *self.on_lost.borrow_mut() = Some(f);
    }

    /// Runs `f` on the descriptor, unless it is already closed.
    pub fn with_io<R>(&self, f: impl FnOnce(&S) -> R) -> Option<R> {
        self.io.borrow().as_ref().map(f)
    }

    #[inline]
    fn has(&self, bits: u16) -> bool {
        self.state.get() & bits != 0
    }
    #[inline]
    fn set(&self, bits: u16) {
        self.state.set(self.state.get() | bits);
    }
    #[inline]
    fn clear(&self, bits: u16) {
        self.state.set(self.state.get() & !bits);
    }

    #[inline]
    fn reading_now(&self) -> bool {
        self.state.get() & (STARTED | PAUSED | READ_EOF | CLOSING | LOST) == STARTED
    }

    /// Adds or drops WRITABLE from the registration. Edge-triggered epoll
    /// reports an ACK that frees send space as a writable event, so a
    /// socket registered for writing all the time wakes the loop for
    /// nothing after most sends; this one is registered for writing only
    /// from the moment data is buffered until the buffer is flushed.
    /// Adding it re-evaluates readiness, so no edge is lost in between.
    pub(super) fn set_write_interest(&self, on: bool) {
        if self.write_interest.get() == on || self.direction == Direction::ReadOnly {
            return;
        }
        let Some(token) = self.token.get() else { return };
        let interest = if on { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        // The descriptor is only borrowed around system calls, never across
        // user code, so this borrow does not fail.
        let Ok(mut io) = self.io.try_borrow_mut() else { return };
        let Some(io) = io.as_mut() else { return };
        if self.reactor.reregister(io, token, interest).is_ok() {
            self.write_interest.set(on);
        }
    }

    fn wants_writable(&self) -> bool {
        !self.wbuf.borrow().is_empty() || self.waiters.borrow().writable.is_some()
    }

    fn schedule(&self, lp: &EventLoop, bits: u8) {
        self.events.set(self.events.get() | bits);
        if !self.scheduled.replace(true)
            && let Some(h) = self.handle.borrow().as_ref()
            && lp.schedule_handle(h).is_err()
        {
            self.scheduled.set(false);
        }
    }

    /// The repeating handle: act on the events gathered since it was queued.
    fn on_events(&self) {
        self.scheduled.set(false);
        let ev = self.events.replace(0);
        let Some(lp) = self.lp.upgrade() else { return };
        if ev & EV_WRITE != 0 {
            self.on_writable(&lp);
        }
        if ev & EV_READ != 0 {
            self.on_readable(&lp);
        }
    }

    fn read_io(&self, buf: &mut [u8]) -> io::Result<usize> {
        let io = self.io.borrow();
        let Some(io) = io.as_ref() else { return Ok(0) };
        loop {
            match io.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn on_readable(&self, lp: &EventLoop) {
        if self.direction == Direction::WriteOnly {
            // The write end of a pipe turned readable: the reader is gone.
            if self.has(LOST) {
                return;
            }
            let exc = (!self.wbuf.borrow().is_empty()).then(|| Error::from_kind(ErrorKind::BrokenPipe));
            self.force_close(lp, exc);
            return;
        }
        for _ in 0..READS_PER_CALLBACK {
            if !self.reading_now() {
                return; // MAYBE_READABLE is still set: resume_reading picks it up
            }
            let size = self.read_size.get();
            let mut filled = 0;
            let r = with_scratch(size, |scratch| {
                self.slot.receive(size, scratch, |buf| {
                    filled = buf.len();
                    self.read_io(buf)
                })
            });
            match r {
                Err(e) => return self.fatal_error(lp, e, "Fatal error: protocol.data_received() call failed."),
                Ok(Ok(0)) => return self.on_eof(lp),
                Ok(Ok(n)) if n < filled => {
                    // A short read drained the data, but an EOF or error that
                    // came with the same edge is still to be read.
                    if SHORT_READ_DRAINS && !self.has(HUP) {
                        self.clear(MAYBE_READABLE);
                        return;
                    }
                }
                Ok(Ok(_)) => {
                    if size < READ_SIZE_MAX {
                        self.read_size.set(size * 2);
                    }
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.clear(MAYBE_READABLE);
                    return;
                }
                Ok(Err(e)) => return self.fatal_error(lp, Error::from(e), "Fatal read error on socket transport"),
            }
        }
        // Still data after several full reads: continue next iteration.
        self.set(MAYBE_READABLE);
        self.schedule(lp, EV_READ);
    }

    fn on_eof(&self, lp: &EventLoop) {
        self.set(READ_EOF);
        self.clear(MAYBE_READABLE);
        match self.slot.eof_received() {
            Err(e) => self.fatal_error(lp, e, "Fatal error: protocol.eof_received() call failed."),
            Ok(true) => {} // keep open for writing; reading is over
            Ok(false) => self.close(),
        }
    }

    /// asyncio's `_fatal_error`: protocol failures go to the exception
    /// handler (OS errors only to the debug log), then the connection is
    /// aborted with `exc`.
    fn fatal_error(&self, lp: &EventLoop, exc: Error, message: &str) {
        if exc.raw_os_error().is_none() {
            let mut ctx = ExceptionContext::new(message);
            ctx.exception = Some(exc.clone());
            ctx.transport = Some(self.describe());
            lp.call_exception_handler(&ctx);
        } else if lp.get_debug() {
            log::debug!(target: "anyloop", "{}: {message}: {exc}", self.describe());
        }
        self.force_close(lp, Some(exc));
    }

    fn describe(&self) -> String {
        let peer = self.extra.iter().find(|(k, _)| *k == "peername").map(|(_, v)| format!(" peer={v:?}"));
        format!("<StreamTransport{}>", peer.unwrap_or_default())
    }

    /// asyncio's `_force_close`: drop the buffer, schedule connection_lost.
    fn force_close(&self, lp: &EventLoop, exc: Option<Error>) {
        if self.has(LOST) {
            return;
        }
        self.wbuf.borrow_mut().clear();
        self.set(CLOSING | LOST);
        self.schedule_connection_lost(lp, exc);
    }

    fn schedule_connection_lost(&self, lp: &EventLoop, exc: Option<Error>) {
        let Some(me) = self.me.upgrade() else { return };
        if lp.call_soon(move |lp| me.call_connection_lost(lp, exc)).is_err() {
            self.release();
        }
    }

    fn call_connection_lost(&self, lp: &EventLoop, exc: Option<Error>) {
        if self.has(RELEASED) {
            return;
        }
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        if self.has(CONNECTED)
            && let Err(e) = self.slot.connection_lost(exc)
        {
            report(lp, "Exception in protocol.connection_lost()", e);
        }
        self.release();
        for w in waiters.drained.into_iter().chain(waiters.writable) {
            w.wake();
        }
        let on_lost = self.on_lost.borrow_mut().take();
        if let Some(f) = on_lost {
            f();
        }
    }

    /// Closes the descriptor and lets go of the protocol. No callbacks.
    fn release(&self) {
        if self.has(RELEASED) {
            return;
        }
        self.set(RELEASED | CLOSING | LOST);
        let io = self.io.borrow_mut().take();
        if let (Some(mut io), Some(token)) = (io, self.token.take()) {
            // The descriptor is closed right after; a failure changes nothing.
            let _ = self.reactor.deregister(&mut io, token);
        }
        if let Some(h) = self.handle.borrow_mut().take() {
            h.cancel();
        }
        self.slot.release();
        self.wbuf.borrow_mut().clear();
    }
}

fn report(lp: &EventLoop, message: &str, e: Error) {
    let mut ctx = ExceptionContext::new(message);
    ctx.exception = Some(e);
    lp.call_exception_handler(&ctx);
}

impl<S: StreamIo> Dispatch for StreamTransport<S> {
    fn ready(&self, lp: &EventLoop, r: Readiness) {
        let mut bits = 0;
        if r.read_closed || r.error {
            self.set(HUP);
        }
        if r.readable || r.read_closed || r.error {
            self.set(MAYBE_READABLE);
            if self.reading_now() || (self.direction == Direction::WriteOnly && !self.has(LOST)) {
                bits |= EV_READ;
            }
        }
        // A writable edge with nothing to send costs nothing.
        if (r.writable || r.write_closed || r.error) && self.wants_writable() {
            bits |= EV_WRITE;
        }
        if bits != 0 {
            self.schedule(lp, bits);
        }
    }

    fn loop_closed(&self) {
        self.release();
    }
}

impl<S: StreamIo> BaseTransport for StreamTransport<S> {
    fn close(&self) {
        if self.has(CLOSING | LOST) {
            return;
        }
        self.set(CLOSING);
        if self.wbuf.borrow().is_empty()
            && !self.has(SENDFILE)
            && let Some(lp) = self.lp.upgrade()
        {
            self.set(LOST);
            self.schedule_connection_lost(&lp, None);
        }
    }

    fn is_closing(&self) -> bool {
        self.has(CLOSING | LOST)
    }

    fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.extra.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl<S: StreamIo> ReadTransport for StreamTransport<S> {
    fn is_reading(&self) -> bool {
        !self.has(PAUSED | CLOSING | LOST)
    }

    fn pause_reading(&self) {
        if self.is_reading() && !self.refused() {
            self.set(PAUSED);
        }
    }

    fn resume_reading(&self) {
        if self.has(CLOSING | LOST) || !self.has(PAUSED) || self.refused() {
            return;
        }
        self.clear(PAUSED);
        // Edge-triggered: an edge that came while paused will not come again.
        if self.has(MAYBE_READABLE)
            && self.has(STARTED)
            && let Some(lp) = self.lp.upgrade()
        {
            self.schedule(&lp, EV_READ);
        }
    }
}

impl<S: StreamIo> Transport for StreamTransport<S> {
    fn set_protocol(&self, protocol: StreamProtocol) {
        if self.refused() {
            return;
        }
        self.slot.set(protocol);
    }

    fn get_protocol(&self) -> StreamProtocol {
        self.slot.get()
    }

    fn hand_over(&self) -> Option<Rc<dyn Transport>> {
        let me = self.me.upgrade()?;
        self.set(HANDED_OVER);
        Some(Rc::new(HandedOver(me)))
    }
}
