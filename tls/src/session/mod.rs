//! [`Session`]: one TLS connection. It is two things at once:
//!
//! * the **protocol of the raw transport** (through [`RawSide`]): it takes
//!   the ciphertext the raw transport receives, its EOF and its loss, and
//!   its `pause_writing` / `resume_writing`;
//! * the **transport of the application's protocol**: plaintext in and out,
//!   through a [`ProtocolSlot`] like every other transport.
//!
//! Only `anyloop-core`'s traits are used, so any host's stream transport can
//! carry TLS.
//!
//! ## Flow control, end to end
//!
//! * Writing: plaintext is encrypted at once and the records go straight to
//!   the raw transport (one vectored write per [`FLUSH_EVERY`] bytes), so there is
//!   one send buffer — the raw transport's, in ciphertext — and the TLS
//!   transport's water marks *are* the raw transport's. The application is
//!   paused when that buffer goes over the high-water mark, so what is
//!   buffered stays ≤ high-water mark + the last write (one record for a
//!   writer that writes records' worth and respects `pause_writing`).
//! * Reading: `pause_reading` pauses the raw transport. Ciphertext that
//!   already arrived waits (undecrypted) until `resume_reading`; decrypted
//!   plaintext is only ever a record's worth.
//!
//! ## Closing
//!
//! `close()` sends close_notify after the buffered data and waits (at most
//! `ssl_shutdown_timeout`, then aborts with `TimedOut`) for the peer's
//! close_notify or its EOF before closing the raw transport, as asyncio
//! does. `write_eof()` sends close_notify and half-closes the raw
//! transport; reading goes on (TLS 1.3 half-close). The peer's close_notify
//! is the application's `eof_received`; a raw EOF *without* it is a
//! truncation and reaches `connection_lost` as an `UnexpectedEof` error.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::rc::{Rc, Weak};
use std::time::Duration;

use anyloop_core::tls::TlsParams;
use anyloop_core::{
    BaseTransport, Error, ErrorKind, EventLoop, ExceptionContext, ExtraInfo, LoopFuture, ProtocolSlot, StreamProtocol,
    TimerHandle, Transport, WeakLoop,
};

use crate::error::tls_error;

mod close;
mod raw;
mod transport;

pub(crate) use raw::Refused;
use raw::{RawSide, RawWriter};

// State bits.
const OPEN: u32 = 1 << 0; // the handshake completed
const CONNECTED: u32 = 1 << 1; // the application protocol is attached: it will get connection_lost
const APP_PAUSED: u32 = 1 << 2; // the application's pause_reading()
const HOLD: u32 = 1 << 3; // start_tls: no data until the caller took the new transport
const CLOSING: u32 = 1 << 4; // close(), abort() or a fatal error
const EOF_SENT: u32 = 1 << 5; // our close_notify is queued
const PEER_CLOSED: u32 = 1 << 6; // the peer's close_notify arrived
const RAW_EOF: u32 = 1 << 7; // the raw transport's EOF arrived
const EOF_FED: u32 = 1 << 8; // ... and rustls knows
const RAW_WRITE_PAUSED: u32 = 1 << 9; // the raw send buffer is over its high-water mark
const APP_WRITE_PAUSED: u32 = 1 << 10; // the application was told pause_writing
const FLUSHING: u32 = 1 << 11; // inside flush_tls
const FAILED: u32 = 1 << 12; // a fatal error: nothing more is processed
const LOST: u32 = 1 << 13; // the raw transport's connection_lost came
const BATCH: u32 = 1 << 14; // delivering input: the application's writes go out together at the end

/// The plaintext read handed to the application at once: what rustls
/// holds (a record's worth, usually), within these bounds.
const READ_MIN: usize = 16 * 1024;
const READ_MAX: usize = 256 * 1024;
/// Buffers handed to the raw transport's `writelines` at once.
const MAX_IOV: usize = 64;
/// Encrypted records leave for the raw transport at least every this many
/// bytes of plaintext (asyncio's default high-water mark), even within a
/// batch or one large `write`: the peer starts decrypting the first records
/// while the rest are still being encrypted. One send per 64 KiB keeps the
/// system calls few; flushing every 16 KiB record costs a busy server more
/// than the overlap gains (`just bench-tls`).
const FLUSH_EVERY: usize = 64 * 1024;

thread_local! {
    /// The plaintext buffer every session of the thread shares (data is
    /// handed to the protocol before the next read). Not the native
    /// transports' read buffer: a session fills this one while that one is
    /// still lent out, holding the ciphertext it is decrypting.
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
        Err(_) => f(&mut vec![0u8; size]),
    })
}

fn report(lp: &EventLoop, message: &str, e: Error) {
    let mut ctx = ExceptionContext::new(message);
    ctx.exception = Some(e);
    lp.call_exception_handler(&ctx);
}

fn closing_error() -> Error {
    Error::new(ErrorKind::InvalidState, "the TLS transport is closing or closed")
}

/// One TLS connection (see the [module docs](self)). The application sees
/// it as its `Rc<dyn Transport>`.
pub(crate) struct Session {
    me: Weak<Session>,
    lp: WeakLoop,
    conn: RefCell<rustls::Connection>,
    raw: RefCell<Option<Rc<dyn Transport>>>,
    app: ProtocolSlot,
    state: Cell<u32>,
    handshake_timeout: Duration,
    shutdown_timeout: Duration,
    call_connection_made: bool,
    server_hostname: Option<String>,
    initial: RefCell<Vec<u8>>,
    waiter: RefCell<Option<LoopFuture<Rc<dyn Transport>>>>,
    /// Ciphertext received but not yet given to rustls (reading paused).
    pending: RefCell<Vec<u8>>,
    timer: RefCell<Option<TimerHandle>>,
    /// What `connection_lost` will report.
    error: RefCell<Option<Error>>,
    extra: RefCell<Vec<(&'static str, ExtraInfo)>>,
    /// Decrypted bytes waiting in rustls, as of the last processing.
    plaintext: Cell<usize>,
    /// Plaintext encrypted since the last flush to the raw transport.
    unflushed: Cell<usize>,
}

impl Session {
    /// A session for `app` over `conn`; returns the raw transport's protocol.
    pub(crate) fn start(
        lp: &EventLoop,
        mut conn: rustls::Connection,
        app: StreamProtocol,
        params: TlsParams,
        waiter: Option<LoopFuture<Rc<dyn Transport>>>,
    ) -> StreamProtocol {
        // The raw transport's buffer is the one send buffer (module docs).
        conn.set_buffer_limit(None);
        let s = Rc::new_cyclic(|me| Session {
            me: me.clone(),
            lp: lp.downgrade(),
            conn: RefCell::new(conn),
            raw: RefCell::new(None),
            app: ProtocolSlot::new(lp, app),
            state: Cell::new(0),
            handshake_timeout: params.handshake_timeout,
            shutdown_timeout: params.shutdown_timeout,
            call_connection_made: params.call_connection_made,
            server_hostname: params.server_hostname.filter(|_| !params.server_side),
            initial: RefCell::new(params.initial_data),
            waiter: RefCell::new(waiter),
            pending: RefCell::new(Vec::new()),
            timer: RefCell::new(None),
            error: RefCell::new(None),
            extra: RefCell::new(Vec::new()),
            plaintext: Cell::new(0),
            unflushed: Cell::new(0),
        });
        StreamProtocol::plain(RawSide(s)).0
    }

    #[inline]
    fn has(&self, bits: u32) -> bool {
        self.state.get() & bits != 0
    }
    #[inline]
    fn set(&self, bits: u32) {
        self.state.set(self.state.get() | bits);
    }
    #[inline]
    fn clear(&self, bits: u32) {
        self.state.set(self.state.get() & !bits);
    }

    fn raw(&self) -> Option<Rc<dyn Transport>> {
        self.raw.borrow().clone()
    }

    fn cancel_timer(&self) {
        if let Some(t) = self.timer.borrow_mut().take() {
            t.cancel();
        }
    }

    fn set_timer(&self, lp: &EventLoop, after: Duration, f: fn(&Session, &EventLoop)) {
        self.cancel_timer();
        let weak = self.me.clone();
        if let Ok(h) = lp.call_later(after, move |lp| {
            if let Some(s) = weak.upgrade() {
                f(&s, lp);
            }
        }) {
            *self.timer.borrow_mut() = Some(h);
        }
    }

    // ----- The raw transport's protocol -----

    fn raw_made(&self, raw: Rc<dyn Transport>) {
        *self.raw.borrow_mut() = Some(raw);
        let Some(lp) = self.lp.upgrade() else { return };
        self.set_timer(&lp, self.handshake_timeout, Session::handshake_timed_out);
        self.flush_tls(); // a client's ClientHello
        let initial = std::mem::take(&mut *self.initial.borrow_mut());
        if !initial.is_empty() {
            self.on_ciphertext(&lp, &initial);
        }
    }

    /// Runs `f` with the application's writes batched: records encrypted
    /// meanwhile leave in one vectored write per [`FLUSH_EVERY`] bytes and
    /// when it returns, instead of one write per record the application
    /// answers (an echo answers each 16 KiB record as it is decrypted).
    fn batched(&self, f: impl FnOnce()) {
        if self.has(BATCH) {
            return f();
        }
        self.set(BATCH);
        f();
        self.clear(BATCH);
        self.flush_tls();
    }

    fn on_ciphertext(&self, lp: &EventLoop, data: &[u8]) {
        self.batched(|| self.take_ciphertext(lp, data));
    }

    fn take_ciphertext(&self, lp: &EventLoop, data: &[u8]) {
        if self.has(FAILED | LOST) {
            return;
        }
        if self.pending.borrow().is_empty() {
            let used = self.pump(lp, data);
            if used < data.len() && !self.has(FAILED | LOST) {
                self.pending.borrow_mut().extend_from_slice(&data[used..]);
            }
        } else {
            self.pending.borrow_mut().extend_from_slice(data);
            self.pump_pending(lp);
        }
        self.after_input(lp);
    }

    /// Gives the stashed ciphertext to rustls, as far as the application
    /// takes the plaintext.
    fn pump_pending(&self, lp: &EventLoop) {
        let buf = std::mem::take(&mut *self.pending.borrow_mut());
        let used = self.pump(lp, &buf);
        if used < buf.len() && !self.has(FAILED | LOST) {
            let mut p = self.pending.borrow_mut();
            let mut rest = buf[used..].to_vec();
            rest.extend_from_slice(&p);
            *p = rest;
        }
    }

    /// Stashed ciphertext means the application is not taking data: stop
    /// reading the raw transport meanwhile. A pending EOF is acted on once
    /// everything before it was delivered.
    fn after_input(&self, lp: &EventLoop) {
        if self.has(FAILED | LOST) {
            return;
        }
        if !self.pending.borrow().is_empty() {
            if let Some(raw) = self.raw() {
                raw.pause_reading();
            }
        } else if self.has(RAW_EOF) {
            self.check_raw_eof(lp);
        }
    }

    /// Feeds `input` to rustls record by record, delivering the plaintext
    /// as it comes; returns how much of `input` was used (less when the
    /// application stopped taking data).
    fn pump(&self, lp: &EventLoop, input: &[u8]) -> usize {
        let mut off = 0;
        loop {
            if self.has(FAILED | LOST) || !self.deliver(lp) {
                return if self.has(FAILED | LOST) { input.len() } else { off };
            }
            if self.has(PEER_CLOSED) || off >= input.len() {
                return if self.has(PEER_CLOSED) { input.len() } else { off };
            }
            let r = self.conn.borrow_mut().read_tls(&mut &input[off..]);
            match r {
                Ok(0) => return input.len(), // after close_notify rustls reads nothing more
                Ok(n) => off += n,
                Err(e) => {
                    self.fail(lp, Error::new(ErrorKind::Tls, format!("TLS record error: {e}")), false);
                    return input.len();
                }
            }
            let r = self.conn.borrow_mut().process_new_packets();
            match r {
                Ok(io) => self.plaintext.set(io.plaintext_bytes_to_read()),
                Err(e) => {
                    let what = if self.has(OPEN) { "TLS error" } else { "TLS handshake failed" };
                    self.flush_tls(); // the alert rustls queued
                    self.fail(lp, tls_error(e, what), false);
                    return input.len();
                }
            }
            if !self.has(BATCH) {
                self.flush_tls(); // else at the end of the batch
            }
            if !self.has(OPEN) && !self.conn.borrow().is_handshaking() {
                self.handshake_done(lp);
            }
        }
    }

    /// Hands decrypted plaintext to the application. False when it cannot
    /// take any now (paused) or the connection failed.
    fn deliver(&self, lp: &EventLoop) -> bool {
        loop {
            if self.has(FAILED | LOST) {
                return false;
            }
            if !self.has(OPEN) || self.has(PEER_CLOSED) {
                return true;
            }
            let discard = self.has(CLOSING);
            if !discard && self.has(APP_PAUSED | HOLD) {
                return false;
            }
            let hint = self.plaintext.get().clamp(READ_MIN, READ_MAX);
            let r = if discard {
                // After close() nothing reaches the application, but the
                // stream is read on, to the peer's close_notify.
                let mut sink = [0u8; 4096];
                let r = self.conn.borrow_mut().reader().read(&mut sink);
                Ok(r)
            } else {
                with_scratch(hint, |scratch| {
                    self.app.receive(hint, scratch, |buf| self.conn.borrow_mut().reader().read(buf))
                })
            };
            match r {
                Err(e) => {
                    report(lp, "Fatal error: protocol.data_received() call failed.", e.clone());
                    self.fail(lp, e, true);
                    return false;
                }
                Ok(Ok(0)) => {
                    self.on_close_notify(lp);
                    return !self.has(FAILED | LOST);
                }
                Ok(Ok(n)) => self.plaintext.set(self.plaintext.get().saturating_sub(n)),
                Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.plaintext.set(0);
                    return true;
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.truncated(lp);
                    return false;
                }
                Ok(Err(e)) => {
                    self.fail(lp, Error::from(e).context("TLS read failed"), true);
                    return false;
                }
            }
        }
    }

    fn handshake_done(&self, lp: &EventLoop) {
        self.set(OPEN | CONNECTED);
        self.cancel_timer();
        self.collect_extra();
        let Some(me) = self.me.upgrade() else { return };
        let t: Rc<dyn Transport> = me;
        if self.call_connection_made {
            if let Err(e) = self.app.connection_made(t.clone()) {
                report(lp, "Fatal error: protocol.connection_made() call failed.", e.clone());
                if let Some(w) = self.waiter.borrow_mut().take() {
                    let _ = w.set_exception(e.clone());
                }
                self.fail(lp, e, true);
                return;
            }
        } else {
            // start_tls: the caller switches its protocol to the new
            // transport when the waiter wakes it; data waits until then.
            self.set(HOLD);
        }
        if let Some(w) = self.waiter.borrow_mut().take() {
            let _ = w.set_result(t);
        }
        if self.has(HOLD) {
            let weak = self.me.clone();
            let scheduled = lp.call_soon(move |lp| {
                if let Some(s) = weak.upgrade() {
                    s.clear(HOLD);
                    s.resume_input(lp);
                }
            });
            if scheduled.is_err() {
                self.clear(HOLD);
            }
        }
        self.sync_write_flow();
    }

    fn collect_extra(&self) {
        let c = self.conn.borrow();
        let mut extra = Vec::new();
        if let Some(certs) = c.peer_certificates() {
            extra.push(("peercert", ExtraInfo::List(certs.iter().map(|c| ExtraInfo::Bytes(c.to_vec())).collect())));
        }
        if let Some(p) = c.alpn_protocol() {
            extra.push(("alpn_protocol", ExtraInfo::Text(String::from_utf8_lossy(p).into_owned())));
        }
        if let Some(s) = c.negotiated_cipher_suite() {
            let name = s.suite().as_str().map(String::from).unwrap_or_else(|| format!("{:?}", s.suite()));
            extra.push(("cipher", ExtraInfo::Text(name)));
        }
        if let Some(v) = c.protocol_version() {
            let name = match v {
                rustls::ProtocolVersion::TLSv1_2 => String::from("TLSv1.2"),
                rustls::ProtocolVersion::TLSv1_3 => String::from("TLSv1.3"),
                other => format!("{other:?}"),
            };
            extra.push(("ssl_version", ExtraInfo::Text(name)));
        }
        if let Some(name) = self.server_hostname.as_ref().filter(|n| !n.is_empty()) {
            extra.push(("server_hostname", ExtraInfo::Text(name.clone())));
        }
        *self.extra.borrow_mut() = extra;
    }

    /// The raw transport's send buffer crossed a water mark.
    fn on_raw_write_flow(&self, paused: bool) {
        if paused {
            self.set(RAW_WRITE_PAUSED);
        } else {
            self.clear(RAW_WRITE_PAUSED);
        }
        self.sync_write_flow();
    }

    /// Makes the application's writing state follow the raw transport's.
    fn sync_write_flow(&self) {
        if self.has(FLUSHING) {
            return; // flush_tls calls again when done
        }
        let want = self.has(RAW_WRITE_PAUSED) && self.has(CONNECTED) && !self.has(LOST);
        if want == self.has(APP_WRITE_PAUSED) {
            return;
        }
        let r = if want {
            self.set(APP_WRITE_PAUSED);
            self.app.pause_writing()
        } else {
            self.clear(APP_WRITE_PAUSED);
            self.app.resume_writing()
        };
        if let (Err(e), Some(lp)) = (r, self.lp.upgrade()) {
            report(&lp, "protocol.pause_writing() / resume_writing() failed", e);
        }
    }

    /// Moves every record rustls has queued to the raw transport.
    fn flush_tls(&self) {
        self.unflushed.set(0);
        let Some(raw) = self.raw() else { return };
        self.set(FLUSHING);
        loop {
            let mut c = self.conn.borrow_mut();
            if !c.wants_write() {
                break;
            }
            match c.write_tls(&mut RawWriter(&*raw)) {
                Ok(0) | Err(_) => break, // the raw transport is closing: its fate is the session's
                Ok(_) => {}
            }
        }
        self.clear(FLUSHING);
        self.sync_write_flow();
    }

    /// Reading may go on: deliver what waits, then read the raw transport.
    fn resume_input(&self, lp: &EventLoop) {
        self.batched(|| self.resume_input_now(lp));
    }

    fn resume_input_now(&self, lp: &EventLoop) {
        if self.has(FAILED | LOST) || (!self.has(CLOSING) && self.has(APP_PAUSED | HOLD)) {
            return;
        }
        if self.pending.borrow().is_empty() {
            self.pump(lp, &[]);
        } else {
            self.pump_pending(lp);
        }
        if self.has(FAILED | LOST) {
            return;
        }
        if self.pending.borrow().is_empty() {
            if let Some(raw) = self.raw() {
                raw.resume_reading();
            }
            if self.has(RAW_EOF) {
                self.check_raw_eof(lp);
            }
        }
    }

    fn schedule_resume_input(&self) {
        let (Some(lp), weak) = (self.lp.upgrade(), self.me.clone()) else { return };
        let _ = lp.call_soon(move |lp| {
            if let Some(s) = weak.upgrade() {
                s.resume_input(lp);
            }
        });
    }

    fn check_writable(&self) -> Result<(), Error> {
        if self.has(EOF_SENT) {
            return Err(Error::new(ErrorKind::InvalidState, "Cannot call write() after write_eof()"));
        }
        if self.has(CLOSING | LOST) {
            return Err(closing_error());
        }
        if !self.has(OPEN) {
            return Err(Error::new(ErrorKind::InvalidState, "the TLS handshake is not complete"));
        }
        Ok(())
    }
}
