//! [`ProtocolSlot`]: how every transport calls its protocol.
//!
//! Transports on every host share this so protocols see the same rules
//! everywhere:
//!
//! * **Panics are contained.** A panicking callback returns an error to the
//!   transport, which treats it as asyncio treats an exception from a
//!   protocol callback: a fatal error that aborts the connection.
//! * **Re-entrancy is safe.** A protocol's `data_received` may call
//!   `transport.write`, which may cross the high-water mark, which must call
//!   the same protocol's `pause_writing` — impossible with `&mut self`. The
//!   slot notices that the protocol is busy and delivers `pause_writing` /
//!   `resume_writing` as soon as it is free: right after the running
//!   callback returns or, if user code holds the protocol borrowed, in the
//!   loop's next iteration. The alternation pause → resume → pause… is kept.
//! * **`set_protocol` takes effect between callbacks**, never inside one.
//! * **Released after `connection_lost`.** A protocol usually holds its
//!   transport and the transport its protocol: [`ProtocolSlot::release`]
//!   breaks that cycle once the connection is gone, keeping only a weak
//!   reference so `get_protocol` still answers while the caller holds it.

use alloc::rc::{Rc, Weak};
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use crate::protocol::StreamProtocol;
use crate::transport::Transport;
use crate::{BaseProtocol, BufferedProtocol, Error, ErrorKind, EventLoop, Protocol, WeakLoop};

/// A [`StreamProtocol`] held weakly.
enum WeakProtocol {
    Plain(Weak<RefCell<dyn Protocol>>),
    Buffered(Weak<RefCell<dyn BufferedProtocol>>),
}

impl WeakProtocol {
    fn new(p: &StreamProtocol) -> WeakProtocol {
        match p {
            StreamProtocol::Plain(p) => WeakProtocol::Plain(Rc::downgrade(p)),
            StreamProtocol::Buffered(p) => WeakProtocol::Buffered(Rc::downgrade(p)),
        }
    }

    fn upgrade(&self) -> Option<StreamProtocol> {
        match self {
            WeakProtocol::Plain(p) => p.upgrade().map(StreamProtocol::Plain),
            WeakProtocol::Buffered(p) => p.upgrade().map(StreamProtocol::Buffered),
        }
    }
}

/// What a released slot calls: nobody.
struct Detached;
impl BaseProtocol for Detached {}
impl Protocol for Detached {
    fn data_received(&mut self, _data: &[u8]) {}
}

struct Inner {
    protocol: RefCell<StreamProtocol>,
    /// Set by `release`: the protocol, weakly.
    released: RefCell<Option<WeakProtocol>>,
    replacement: RefCell<Option<StreamProtocol>>,
    /// Deferred flow-control calls: `true` = pause_writing.
    deferred: RefCell<Vec<bool>>,
    depth: Cell<u32>,
    flush_scheduled: Cell<bool>,
    lp: WeakLoop,
}

/// The protocol of a stream transport, with asyncio's calling rules:
/// panics in callbacks are contained and returned as errors (fatal for the
/// transport); `pause_writing` / `resume_writing` asked for while the
/// protocol is busy are delivered as soon as it is free, in order;
/// `set` takes effect between callbacks. Cheap to clone.
#[derive(Clone)]
pub struct ProtocolSlot(Rc<Inner>);

fn busy() -> Error {
    Error::new(ErrorKind::InvalidState, "the protocol is borrowed elsewhere while the transport needs to call it")
}

impl ProtocolSlot {
    /// A slot for `protocol` on loop `lp`.
    pub fn new(lp: &EventLoop, protocol: StreamProtocol) -> ProtocolSlot {
        ProtocolSlot(Rc::new(Inner {
            protocol: RefCell::new(protocol),
            released: RefCell::new(None),
            replacement: RefCell::new(None),
            deferred: RefCell::new(Vec::new()),
            depth: Cell::new(0),
            flush_scheduled: Cell::new(false),
            lp: lp.downgrade(),
        }))
    }

    /// The current protocol (`get_protocol`); a pending replacement counts.
    /// After [`release`](Self::release): the released protocol while
    /// someone else still holds it.
    pub fn get(&self) -> StreamProtocol {
        if let Some(p) = self.0.released.borrow().as_ref().and_then(WeakProtocol::upgrade) {
            return p;
        }
        if let Some(p) = self.0.replacement.borrow().as_ref() {
            return p.clone();
        }
        self.0.protocol.borrow().clone()
    }

    /// Replaces the protocol (`set_protocol`); inside a callback, the new
    /// protocol takes over when the callback returns. After
    /// [`release`](Self::release) the new protocol is only remembered
    /// weakly: it will never be called.
    pub fn set(&self, protocol: StreamProtocol) {
        if self.0.released.borrow().is_some() {
            *self.0.released.borrow_mut() = Some(WeakProtocol::new(&protocol));
            return;
        }
        if self.0.depth.get() > 0 {
            *self.0.replacement.borrow_mut() = Some(protocol);
        } else {
            *self.0.protocol.borrow_mut() = protocol;
        }
    }

    /// Runs `f` on the protocol with panics caught, then installs a pending
    /// replacement and delivers deferred flow-control calls.
    fn call<R>(&self, f: impl FnOnce(&StreamProtocol) -> Result<R, Error>) -> Result<R, Error> {
        let p = self.0.protocol.borrow().clone();
        self.0.depth.set(self.0.depth.get() + 1);
        let r = crate::panic::catch(|| f(&p)).and_then(|r| r);
        self.0.depth.set(self.0.depth.get() - 1);
        if self.0.depth.get() == 0 {
            if let Some(new) = self.0.replacement.borrow_mut().take() {
                *self.0.protocol.borrow_mut() = new;
            }
            if r.is_ok() {
                self.flush()?;
            }
        }
        r
    }

    /// `connection_made(transport)`.
    pub fn connection_made(&self, transport: Rc<dyn Transport>) -> Result<(), Error> {
        self.call(|p| {
            match p {
                StreamProtocol::Plain(p) => p.try_borrow_mut().map_err(|_| busy())?.connection_made(transport),
                StreamProtocol::Buffered(p) => p.try_borrow_mut().map_err(|_| busy())?.connection_made(transport),
            }
            Ok(())
        })
    }

    /// Receives data: `read` fills a buffer and returns the byte count.
    /// For a plain protocol it reads into `scratch` and calls
    /// `data_received`; for a buffered one it reads straight into the
    /// protocol's `get_buffer(sizehint)` and calls `buffer_updated`.
    /// The outer `Result` is a protocol failure (fatal for the transport);
    /// the inner one is `read`'s own result, returned untouched. Nothing is
    /// delivered when `read` fails or returns 0 (EOF).
    pub fn receive<E>(
        &self,
        sizehint: usize,
        scratch: &mut [u8],
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<Result<usize, E>, Error> {
        self.call(|p| match p {
            StreamProtocol::Plain(p) => match read(scratch) {
                Ok(n) if n > 0 => {
                    p.try_borrow_mut().map_err(|_| busy())?.data_received(&scratch[..n]);
                    Ok(Ok(n))
                }
                other => Ok(other),
            },
            StreamProtocol::Buffered(p) => {
                let mut p = p.try_borrow_mut().map_err(|_| busy())?;
                let buf = p.get_buffer(sizehint);
                if buf.is_empty() {
                    return Err(Error::new(ErrorKind::InvalidState, "get_buffer() returned an empty buffer"));
                }
                match read(buf) {
                    Ok(n) if n > 0 => {
                        p.buffer_updated(n);
                        Ok(Ok(n))
                    }
                    other => Ok(other),
                }
            }
        })
    }

    /// `data_received(data)` for data the transport already holds (TLS
    /// plaintext, WebSocket messages); buffered protocols get it copied into
    /// their buffers.
    pub fn data_received(&self, mut data: &[u8]) -> Result<(), Error> {
        self.call(|p| match p {
            StreamProtocol::Plain(p) => {
                p.try_borrow_mut().map_err(|_| busy())?.data_received(data);
                Ok(())
            }
            StreamProtocol::Buffered(p) => {
                let mut p = p.try_borrow_mut().map_err(|_| busy())?;
                while !data.is_empty() {
                    let buf = p.get_buffer(data.len());
                    if buf.is_empty() {
                        return Err(Error::new(ErrorKind::InvalidState, "get_buffer() returned an empty buffer"));
                    }
                    let n = buf.len().min(data.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    p.buffer_updated(n);
                    data = &data[n..];
                }
                Ok(())
            }
        })
    }

    /// `eof_received()`: whether the protocol wants the transport kept open.
    pub fn eof_received(&self) -> Result<bool, Error> {
        self.call(|p| {
            Ok(match p {
                StreamProtocol::Plain(p) => p.try_borrow_mut().map_err(|_| busy())?.eof_received(),
                StreamProtocol::Buffered(p) => p.try_borrow_mut().map_err(|_| busy())?.eof_received(),
            })
        })
    }

    /// `connection_lost(exc)`. Deferred flow-control calls still pending are
    /// dropped: after this the protocol hears nothing more.
    pub fn connection_lost(&self, exc: Option<Error>) -> Result<(), Error> {
        self.0.deferred.borrow_mut().clear();
        self.call(|p| {
            match p {
                StreamProtocol::Plain(p) => p.try_borrow_mut().map_err(|_| busy())?.connection_lost(exc),
                StreamProtocol::Buffered(p) => p.try_borrow_mut().map_err(|_| busy())?.connection_lost(exc),
            }
            Ok(())
        })
    }

    /// Lets go of the protocol once the connection is gone (call it after
    /// `connection_lost`): the slot keeps it only weakly, for
    /// [`get`](Self::get), so the protocol ⇄ transport reference cycle is
    /// broken; from now on no callback reaches it. Idempotent.
    pub fn release(&self) {
        if self.0.released.borrow().is_some() {
            return;
        }
        let p = self.get();
        *self.0.released.borrow_mut() = Some(WeakProtocol::new(&p));
        self.0.deferred.borrow_mut().clear();
        self.0.replacement.borrow_mut().take();
        let old = core::mem::replace(&mut *self.0.protocol.borrow_mut(), StreamProtocol::plain(Detached).0);
        drop((p, old));
    }

    /// Whether [`release`](Self::release) was called.
    pub fn is_released(&self) -> bool {
        self.0.released.borrow().is_some()
    }

    /// `pause_writing()`, now or as soon as the protocol is free.
    pub fn pause_writing(&self) -> Result<(), Error> {
        self.flow(true)
    }

    /// `resume_writing()`, now or as soon as the protocol is free.
    pub fn resume_writing(&self) -> Result<(), Error> {
        self.flow(false)
    }

    fn flow(&self, pause: bool) -> Result<(), Error> {
        self.0.deferred.borrow_mut().push(pause);
        if self.0.depth.get() > 0 {
            return Ok(()); // delivered when the running callback returns
        }
        self.flush()
    }

    /// Delivers deferred flow-control calls if the protocol is free; if
    /// user code holds it borrowed, retries in the loop's next iteration.
    fn flush(&self) -> Result<(), Error> {
        loop {
            let Some(pause) = self.0.deferred.borrow().first().copied() else { return Ok(()) };
            let p = self.0.protocol.borrow().clone();
            let delivered = crate::panic::catch(|| match &p {
                StreamProtocol::Plain(p) => {
                    p.try_borrow_mut().map(|mut p| if pause { p.pause_writing() } else { p.resume_writing() })
                }
                StreamProtocol::Buffered(p) => {
                    p.try_borrow_mut().map(|mut p| if pause { p.pause_writing() } else { p.resume_writing() })
                }
            })?;
            if delivered.is_err() {
                self.schedule_flush();
                return Ok(());
            }
            self.0.deferred.borrow_mut().remove(0);
        }
    }

    fn schedule_flush(&self) {
        if self.0.flush_scheduled.replace(true) {
            return;
        }
        if let Some(lp) = self.0.lp.upgrade() {
            let me = self.clone();
            let scheduled = lp.call_soon(move |lp| {
                me.0.flush_scheduled.set(false);
                if let Err(e) = me.flush() {
                    let mut ctx = crate::ExceptionContext::new("protocol.pause_writing() / resume_writing() failed");
                    ctx.exception = Some(e);
                    lp.call_exception_handler(&ctx);
                }
            });
            if scheduled.is_err() {
                self.0.flush_scheduled.set(false);
            }
        }
    }
}

impl core::fmt::Debug for ProtocolSlot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProtocolSlot").field("protocol", &*self.0.protocol.borrow()).finish()
    }
}
