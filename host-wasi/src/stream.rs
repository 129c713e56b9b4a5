//! [`StreamTransport`]: the one stream transport of the WASI host — pipes
//! on stdio (wasip1 fds, wasip2 `wasi:cli` streams) and TCP connections
//! (wasip2 `wasi:sockets`), with asyncio's semantics and flow control.
//!
//! It follows `_SelectorSocketTransport` / the Unix pipe transports:
//!
//! * `connection_made` is called from the loop (`call_soon`), and reading
//!   starts after it;
//! * the reader reads once per readiness; data goes through
//!   [`ProtocolSlot`], EOF calls `eof_received` (a pipe then closes; a TCP
//!   connection closes unless the protocol asks to keep it open);
//! * `write` never blocks: what the stream does not take at once is kept
//!   in a [`WriteBuffer`] and sent on write readiness, with
//!   `pause_writing` / `resume_writing` at the [`WaterMarks`];
//! * `close` stops reading, flushes the buffer, then calls
//!   `connection_lost(None)` from a later iteration; `abort` drops the
//!   buffer; an I/O error aborts with `connection_lost(Some(error))`.
//!
//! Host differences are behind [`Reader`] and [`Writer`]. On wasip1 a
//! write happens only after `fd_write` readiness (wasmtime's stdio writes
//! block); on wasip2 `check-write` says what the stream takes now, so the
//! first write goes out at once, as in asyncio, and a final flush is
//! awaited before the stream is dropped.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use anyloop_core::{
    BaseTransport, Error, ErrorKind, EventLoop, ExceptionContext, ExtraInfo, Handle, ProtocolSlot, ReadTransport,
    StreamProtocol, Transport, WaterMarks, WeakLoop, WriteBuffer, WriteTransport,
};

use crate::reactor::{Reactor, Source, Token};

/// How much one read asks for.
const READ_SIZE: usize = 64 * 1024;

/// The read side of a stream.
pub(crate) trait Reader {
    /// Reads once: `Ok(0)` is EOF, a `WouldBlock` error means "nothing now".
    fn read(&self, buf: &mut [u8]) -> Result<usize, Error>;
    /// A source that is ready when `read` has something to say.
    fn subscribe(&self) -> Source;
}

/// The write side of a stream.
pub(crate) trait Writer {
    /// Writes what the stream takes now, without waiting; `ready` says
    /// write readiness was just reported. Returns the bytes taken.
    fn write(&self, data: &[u8], ready: bool) -> Result<usize, Error>;
    /// A source that is ready when `write` can take more.
    fn subscribe(&self) -> Source;
    /// Whether written data is only handed over at the next readiness
    /// (wasip2 streams flush in the background).
    fn flushes_later(&self) -> bool;
    /// Half-closes the stream (`write_eof`), once the buffer is flushed.
    fn shutdown(&self) -> Result<(), Error>;
}

/// What kind of stream, for the EOF and `write_eof` rules.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A pipe: EOF closes the transport; `write_eof` is `close`.
    Pipe,
    /// A TCP connection: EOF closes unless `eof_received` returns true;
    /// `write_eof` shuts the sending side down.
    Tcp,
}

/// A stream transport over a [`Reader`] and/or a [`Writer`].
pub(crate) struct StreamTransport {
    me: Weak<StreamTransport>,
    lp: WeakLoop,
    reactor: Rc<Reactor>,
    slot: ProtocolSlot,
    kind: Kind,
    name: String,
    reader: RefCell<Option<Box<dyn Reader>>>,
    writer: RefCell<Option<Box<dyn Writer>>>,
    /// Dropped after the streams (the socket the streams belong to).
    owner: RefCell<Option<Box<dyn Any>>>,
    read_token: Cell<Option<Token>>,
    write_token: Cell<Option<Token>>,
    started: Cell<bool>,
    reading: Cell<bool>,
    closing: Cell<bool>,
    eof_requested: Cell<bool>,
    eof_sent: Cell<bool>,
    lost: Cell<bool>,
    gone: Cell<bool>,
    unflushed: Cell<bool>,
    buffer: RefCell<WriteBuffer>,
    marks: RefCell<WaterMarks>,
    scratch: RefCell<Vec<u8>>,
    extra: Vec<(&'static str, ExtraInfo)>,
    on_lost: RefCell<Option<Box<dyn FnOnce()>>>,
}

/// How a transport is built.
pub(crate) struct Parts {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) reader: Option<Box<dyn Reader>>,
    pub(crate) writer: Option<Box<dyn Writer>>,
    pub(crate) owner: Option<Box<dyn Any>>,
    pub(crate) extra: Vec<(&'static str, ExtraInfo)>,
    /// Called once the connection is lost (servers count their clients).
    pub(crate) on_lost: Option<Box<dyn FnOnce()>>,
}

impl StreamTransport {
    /// Builds the transport, registers its sources (switched off), and
    /// schedules `connection_made`; `made` runs right after it (to resolve
    /// the caller's waiter).
    pub(crate) fn start(
        lp: &EventLoop,
        reactor: &Rc<Reactor>,
        protocol: StreamProtocol,
        parts: Parts,
        made: impl FnOnce(&EventLoop, Result<Rc<StreamTransport>, Error>) + 'static,
    ) -> Result<Rc<StreamTransport>, Error> {
        let t = Rc::new_cyclic(|me: &Weak<StreamTransport>| StreamTransport {
            me: me.clone(),
            lp: lp.downgrade(),
            reactor: reactor.clone(),
            slot: ProtocolSlot::new(lp, protocol),
            kind: parts.kind,
            name: parts.name,
            reader: RefCell::new(parts.reader),
            writer: RefCell::new(parts.writer),
            owner: RefCell::new(parts.owner),
            read_token: Cell::new(None),
            write_token: Cell::new(None),
            started: Cell::new(false),
            reading: Cell::new(true),
            closing: Cell::new(false),
            eof_requested: Cell::new(false),
            eof_sent: Cell::new(false),
            lost: Cell::new(false),
            gone: Cell::new(false),
            unflushed: Cell::new(false),
            buffer: RefCell::new(WriteBuffer::new()),
            marks: RefCell::new(WaterMarks::default()),
            scratch: RefCell::new(Vec::new()),
            extra: parts.extra,
            on_lost: RefCell::new(parts.on_lost),
        });
        t.register();
        let t2 = t.clone();
        lp.call_soon(move |lp| {
            let me: Rc<dyn Transport> = t2.clone();
            match t2.slot.connection_made(me) {
                Ok(()) => {
                    t2.started.set(true);
                    if t2.reading.get() && !t2.closing.get() {
                        t2.set_reading(true);
                    }
                    made(lp, Ok(t2));
                }
                Err(e) => {
                    t2.fatal(lp, e.clone(), "protocol.connection_made() failed");
                    made(lp, Err(e));
                }
            }
        })
        .inspect_err(|_| t.teardown())?;
        Ok(t)
    }

    fn register(&self) {
        let reader_source = self.reader.borrow().as_ref().map(|r| r.subscribe());
        if let Some(src) = reader_source {
            // The registration holds the transport (as asyncio's selector
            // holds a transport's callbacks) until teardown deregisters it.
            let Some(me) = self.me.upgrade() else { return };
            let h = Handle::repeating(move |lp| me.on_readable(lp));
            self.read_token.set(Some(self.reactor.register(src, h, false)));
        }
        let writer_source = self.writer.borrow().as_ref().map(|w| w.subscribe());
        if let Some(src) = writer_source {
            let Some(me) = self.me.upgrade() else { return };
            let h = Handle::repeating(move |lp| me.on_writable(lp));
            self.write_token.set(Some(self.reactor.register(src, h, false)));
        }
    }

    fn set_reading(&self, on: bool) {
        if let Some(t) = self.read_token.get() {
            self.reactor.set_active(t, on && self.started.get());
        }
    }

    fn set_writing(&self, on: bool) {
        if let Some(t) = self.write_token.get() {
            self.reactor.set_active(t, on);
        }
    }

    fn on_readable(&self, lp: &EventLoop) {
        if self.lost.get() || self.closing.get() || !self.reading.get() {
            return;
        }
        let result = {
            let reader = self.reader.borrow();
            let Some(reader) = reader.as_ref() else { return };
            let mut scratch = self.scratch.borrow_mut();
            if scratch.len() < READ_SIZE {
                scratch.resize(READ_SIZE, 0);
            }
            self.slot.receive(READ_SIZE, &mut scratch, |buf| reader.read(buf))
        };
        match result {
            Ok(Ok(0)) => self.on_eof(lp),
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Ok(Err(e)) => self.fatal(lp, e, "Fatal read error on transport"),
            Err(e) => self.fatal(lp, e, "Fatal error: protocol.data_received() call failed."),
        }
    }

    fn on_eof(&self, lp: &EventLoop) {
        if let Some(t) = self.read_token.take() {
            self.reactor.deregister(t);
        }
        match self.slot.eof_received() {
            Err(e) => self.fatal(lp, e, "Fatal error: protocol.eof_received() call failed."),
            Ok(keep_open) if keep_open && self.kind == Kind::Tcp => {}
            Ok(_) if self.kind == Kind::Pipe => self.force_close(None),
            Ok(_) => self.close(),
        }
    }

    fn on_writable(&self, lp: &EventLoop) {
        if self.lost.get() {
            return;
        }
        let had_data = !self.buffer.borrow().is_empty();
        if had_data {
            let written = {
                let writer = self.writer.borrow();
                let Some(w) = writer.as_ref() else { return };
                let buf = self.buffer.borrow();
                w.write(buf.front(), true).map(|n| (n, w.flushes_later()))
            };
            let handed_over = match written {
                Ok((n, later)) => {
                    self.buffer.borrow_mut().consume(n);
                    n > 0 && later
                }
                Err(e) => return self.fatal(lp, e, "Fatal write error on transport"),
            };
            if handed_over {
                self.unflushed.set(true);
            }
            self.maybe_resume(lp);
            // More to write, or a background flush to wait for: the next
            // readiness carries on.
            if !self.buffer.borrow().is_empty() || handed_over {
                return;
            }
        } else {
            // Readiness after a write: the stream has flushed it.
            self.unflushed.set(false);
        }
        self.set_writing(false);
        self.drained(lp);
    }

    /// The buffer is empty and flushed: finish a pending close or EOF.
    fn drained(&self, lp: &EventLoop) {
        if self.closing.get() {
            self.schedule_lost(lp, None);
        } else if self.eof_requested.get() && !self.eof_sent.get() {
            self.eof_sent.set(true);
            if self.kind == Kind::Pipe {
                self.close();
                return;
            }
            let r = self.writer.borrow().as_ref().map(|w| w.shutdown());
            if let Some(Err(e)) = r {
                self.fatal(lp, e, "Fatal error on transport: write_eof() failed");
            }
        }
    }

    fn maybe_pause(&self) {
        let len = self.buffer.borrow().len();
        if self.marks.borrow_mut().should_pause(len)
            && let Err(e) = self.slot.pause_writing()
            && let Some(lp) = self.lp.upgrade()
        {
            self.fatal(&lp, e, "protocol.pause_writing() failed");
        }
    }

    fn maybe_resume(&self, lp: &EventLoop) {
        let len = self.buffer.borrow().len();
        if self.marks.borrow_mut().should_resume(len)
            && let Err(e) = self.slot.resume_writing()
        {
            self.fatal(lp, e, "protocol.resume_writing() failed");
        }
    }

    /// asyncio's `_fatal_error`: protocol failures go to the exception
    /// handler; I/O errors only to `connection_lost`.
    fn fatal(&self, lp: &EventLoop, e: Error, message: &str) {
        let io_error = matches!(
            e.kind(),
            ErrorKind::BrokenPipe
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::ConnectionRefused
                | ErrorKind::NotConnected
                | ErrorKind::TimedOut
        );
        if !io_error {
            let mut ctx = ExceptionContext::new(message);
            ctx.exception = Some(e.clone());
            ctx.transport = Some(self.name.clone());
            lp.call_exception_handler(&ctx);
        }
        self.force_close(Some(e));
    }

    /// asyncio's `_force_close`: drop the buffer, stop both directions,
    /// `connection_lost(exc)` from a later iteration.
    fn force_close(&self, exc: Option<Error>) {
        if self.lost.get() {
            return;
        }
        self.buffer.borrow_mut().clear();
        self.closing.set(true);
        self.set_reading(false);
        self.set_writing(false);
        if let Some(lp) = self.lp.upgrade() {
            self.schedule_lost(&lp, exc);
        } else {
            self.teardown();
        }
    }

    fn schedule_lost(&self, lp: &EventLoop, exc: Option<Error>) {
        if self.lost.replace(true) {
            return;
        }
        self.set_reading(false);
        self.set_writing(false);
        let Some(me) = self.me.upgrade() else { return };
        let scheduled = lp.call_soon(move |lp| me.call_connection_lost(lp, exc));
        if scheduled.is_err() {
            self.teardown();
        }
    }

    fn call_connection_lost(&self, lp: &EventLoop, exc: Option<Error>) {
        let r = self.slot.connection_lost(exc);
        self.teardown();
        self.slot.release();
        if let Err(e) = r {
            let mut ctx = ExceptionContext::new("Fatal error: protocol.connection_lost() call failed.");
            ctx.exception = Some(e);
            ctx.transport = Some(self.name.clone());
            lp.call_exception_handler(&ctx);
        }
    }

    /// Releases everything, children before parents: registrations
    /// (pollables), then streams, then the socket.
    fn teardown(&self) {
        self.lost.set(true);
        self.gone.set(true);
        if let Some(t) = self.read_token.take() {
            self.reactor.deregister(t);
        }
        if let Some(t) = self.write_token.take() {
            self.reactor.deregister(t);
        }
        drop(self.reader.borrow_mut().take());
        drop(self.writer.borrow_mut().take());
        drop(self.owner.borrow_mut().take());
        self.buffer.borrow_mut().clear();
        if let Some(f) = self.on_lost.borrow_mut().take() {
            f();
        }
    }

    /// Whether the connection is lost and its resources released.
    #[cfg(target_env = "p2")]
    pub(crate) fn is_gone(&self) -> bool {
        self.gone.get()
    }

    fn closed_error(&self, what: &str) -> Error {
        Error::new(ErrorKind::InvalidState, format!("{what}: the transport is closing or closed"))
    }
}

impl BaseTransport for StreamTransport {
    fn close(&self) {
        if self.closing.replace(true) || self.lost.get() {
            return;
        }
        self.set_reading(false);
        if self.buffer.borrow().is_empty() && !self.unflushed.get() {
            if let Some(lp) = self.lp.upgrade() {
                self.schedule_lost(&lp, None);
            } else {
                self.teardown();
            }
        } else {
            self.set_writing(true);
        }
    }

    fn is_closing(&self) -> bool {
        self.closing.get() || self.lost.get()
    }

    fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.extra.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    }
}

impl ReadTransport for StreamTransport {
    fn is_reading(&self) -> bool {
        self.reader.borrow().is_some() && self.reading.get() && !self.closing.get() && !self.lost.get()
    }

    fn pause_reading(&self) {
        if self.closing.get() || !self.reading.replace(false) {
            return;
        }
        self.set_reading(false);
    }

    fn resume_reading(&self) {
        if self.closing.get() || self.reading.replace(true) {
            return;
        }
        self.set_reading(true);
    }
}

impl WriteTransport for StreamTransport {
    fn write(&self, data: &[u8]) -> Result<(), Error> {
        if self.writer.borrow().is_none() && !self.lost.get() {
            return Err(Error::new(ErrorKind::InvalidState, "this transport is read-only (a read pipe)"));
        }
        if self.eof_requested.get() {
            return Err(Error::new(ErrorKind::InvalidState, "Cannot call write() after write_eof()"));
        }
        if self.closing.get() || self.lost.get() {
            return Err(self.closed_error("write"));
        }
        if data.is_empty() {
            return Ok(());
        }
        let mut rest = data;
        if self.buffer.borrow().is_empty() && !self.unflushed.get() {
            let r = self.writer.borrow().as_ref().map(|w| w.write(data, false).map(|n| (n, w.flushes_later())));
            match r {
                Some(Ok((n, later))) => {
                    rest = &data[n.min(data.len())..];
                    if n > 0 && later {
                        self.unflushed.set(true);
                        self.set_writing(true);
                    }
                }
                Some(Err(e)) => {
                    if let Some(lp) = self.lp.upgrade() {
                        self.fatal(&lp, e, "Fatal write error on transport");
                    }
                    return Ok(());
                }
                None => {}
            }
        }
        if !rest.is_empty() {
            self.buffer.borrow_mut().push(rest);
            self.set_writing(true);
            self.maybe_pause();
        }
        Ok(())
    }

    fn can_write_eof(&self) -> bool {
        true
    }

    fn write_eof(&self) -> Result<(), Error> {
        if self.closing.get() || self.lost.get() || self.eof_requested.replace(true) {
            return Ok(());
        }
        if self.buffer.borrow().is_empty() && !self.unflushed.get() {
            if let Some(lp) = self.lp.upgrade() {
                self.drained(&lp);
            }
        } else {
            self.set_writing(true);
        }
        Ok(())
    }

    fn abort(&self) {
        self.force_close(None);
    }

    fn get_write_buffer_size(&self) -> usize {
        self.buffer.borrow().len()
    }

    fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.marks.borrow().limits()
    }

    fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) -> Result<(), Error> {
        self.marks.borrow_mut().set_limits(high, low)?;
        self.maybe_pause();
        Ok(())
    }
}

impl Transport for StreamTransport {
    fn set_protocol(&self, protocol: StreamProtocol) {
        self.slot.set(protocol);
    }

    fn get_protocol(&self) -> StreamProtocol {
        self.slot.get()
    }
}
