//! Protocols: the callback interfaces of asyncio-protocol.rst.
//!
//! A protocol is written once and runs over any host's transports: native
//! TCP, Unix sockets and pipes, WASI sockets, browser WebSockets, TLS.
//! Callbacks take `&mut self`; the transport is handed over in
//! `connection_made` as an `Rc<dyn …Transport>` for the protocol to keep.
//!
//! Order, as the spec states it: `connection_made` once; then
//! `data_received` any number of times; then at most one `eof_received`;
//! then `connection_lost` once. `pause_writing` / `resume_writing` come in
//! strict alternation, starting with `pause_writing`.
//!
//! One difference from asyncio, forced by `&mut self`: when a protocol's
//! own `write` crosses the high-water mark inside one of its callbacks,
//! `pause_writing` is delivered right after that callback returns rather
//! than from inside `write` (see [`ProtocolSlot`]).

use alloc::rc::Rc;
use core::cell::RefCell;
use core::net::SocketAddr;

use crate::Error;
use crate::transport::{DatagramTransport, SubprocessTransport, Transport};

/// Callbacks every protocol has (asyncio's `BaseProtocol`).
pub trait BaseProtocol {
    /// The connection is lost or closed. `None`: a regular EOF or close;
    /// `Some(error)`: it was aborted by an error. Called exactly once.
    fn connection_lost(&mut self, exc: Option<Error>) {
        let _ = exc;
    }

    /// The transport's write buffer went over its high-water mark: stop
    /// writing until [`resume_writing`](Self::resume_writing).
    fn pause_writing(&mut self) {}

    /// The transport's write buffer drained to (or below) its low-water mark.
    fn resume_writing(&mut self) {}
}

/// A streaming protocol (TCP, Unix sockets, pipes, WebSockets, TLS):
/// asyncio's `Protocol`.
///
/// ```
/// use anyloop_core::{BaseProtocol, Error, Protocol, Transport};
/// use std::rc::Rc;
///
/// /// Echoes everything back, like the spec's TCP echo server.
/// #[derive(Default)]
/// struct Echo {
///     transport: Option<Rc<dyn Transport>>,
/// }
/// impl BaseProtocol for Echo {}
/// impl Protocol for Echo {
///     fn connection_made(&mut self, transport: Rc<dyn Transport>) {
///         self.transport = Some(transport);
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         if let Some(t) = &self.transport {
///             let _ = t.write(data);
///         }
///     }
/// }
/// ```
pub trait Protocol: BaseProtocol {
    /// The connection is made; keep `transport` to write and close.
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let _ = transport;
    }

    /// Some bytes arrived. Stream boundaries mean nothing: one `write` on
    /// the other side may arrive in pieces, several in one.
    fn data_received(&mut self, data: &[u8]);

    /// The other end will send no more (half-close). Return `true` to keep
    /// the transport open for writing; `false` (default) closes it.
    fn eof_received(&mut self) -> bool {
        false
    }
}

/// A streaming protocol that receives into its own buffer, without a copy
/// (asyncio's `BufferedProtocol`).
pub trait BufferedProtocol: BaseProtocol {
    /// The connection is made.
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let _ = transport;
    }

    /// A buffer to receive into; `sizehint` is the recommended minimum size
    /// (it may be ignored, but the buffer must not be empty).
    fn get_buffer(&mut self, sizehint: usize) -> &mut [u8];

    /// `nbytes` bytes were written at the start of the last buffer returned
    /// by [`get_buffer`](Self::get_buffer).
    fn buffer_updated(&mut self, nbytes: usize);

    /// As [`Protocol::eof_received`].
    fn eof_received(&mut self) -> bool {
        false
    }
}

/// A datagram (UDP) protocol: asyncio's `DatagramProtocol`.
pub trait DatagramProtocol: BaseProtocol {
    /// The endpoint is ready.
    fn connection_made(&mut self, transport: Rc<dyn DatagramTransport>) {
        let _ = transport;
    }

    /// A datagram arrived from `addr`.
    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr);

    /// A send or receive failed (e.g. ICMP port unreachable, reported as
    /// `ConnectionRefused`); the endpoint stays open.
    fn error_received(&mut self, exc: Error) {
        let _ = exc;
    }
}

/// The protocol of a child process: asyncio's `SubprocessProtocol`.
pub trait SubprocessProtocol: BaseProtocol {
    /// The process started.
    fn connection_made(&mut self, transport: Rc<dyn SubprocessTransport>) {
        let _ = transport;
    }

    /// The child wrote `data` to its stdout (`fd` 1) or stderr (`fd` 2).
    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        let _ = (fd, data);
    }

    /// One of the child's pipes closed (`fd` 0, 1 or 2).
    fn pipe_connection_lost(&mut self, fd: i32, exc: Option<Error>) {
        let _ = (fd, exc);
    }

    /// The child exited; comes after every pipe was closed.
    fn process_exited(&mut self) {}
}

/// A shared, type-erased stream protocol, as transports hold it: plain or
/// buffered (asyncio's transports check `isinstance(p, BufferedProtocol)`).
#[derive(Clone)]
pub enum StreamProtocol {
    /// A [`Protocol`].
    Plain(Rc<RefCell<dyn Protocol>>),
    /// A [`BufferedProtocol`].
    Buffered(Rc<RefCell<dyn BufferedProtocol>>),
}

impl StreamProtocol {
    /// Wraps a [`Protocol`], returning it shared so the caller keeps access.
    pub fn plain<P: Protocol + 'static>(p: P) -> (StreamProtocol, Rc<RefCell<P>>) {
        let rc = Rc::new(RefCell::new(p));
        (StreamProtocol::Plain(rc.clone()), rc)
    }

    /// Wraps a [`BufferedProtocol`].
    pub fn buffered<P: BufferedProtocol + 'static>(p: P) -> (StreamProtocol, Rc<RefCell<P>>) {
        let rc = Rc::new(RefCell::new(p));
        (StreamProtocol::Buffered(rc.clone()), rc)
    }

    /// Whether both name the same protocol object.
    pub fn ptr_eq(&self, other: &StreamProtocol) -> bool {
        match (self, other) {
            (StreamProtocol::Plain(a), StreamProtocol::Plain(b)) => core::ptr::addr_eq(Rc::as_ptr(a), Rc::as_ptr(b)),
            (StreamProtocol::Buffered(a), StreamProtocol::Buffered(b)) => {
                core::ptr::addr_eq(Rc::as_ptr(a), Rc::as_ptr(b))
            }
            _ => false,
        }
    }
}

impl<P: Protocol + 'static> From<Rc<RefCell<P>>> for StreamProtocol {
    fn from(p: Rc<RefCell<P>>) -> Self {
        StreamProtocol::Plain(p)
    }
}

impl core::fmt::Debug for StreamProtocol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StreamProtocol::Plain(_) => f.write_str("StreamProtocol::Plain"),
            StreamProtocol::Buffered(_) => f.write_str("StreamProtocol::Buffered"),
        }
    }
}

pub use crate::protocol_slot::ProtocolSlot;
