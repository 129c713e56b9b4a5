//! Transports: the interfaces of asyncio-protocol.rst, implemented by each
//! host (TCP, Unix, pipes, UDP, WebSockets, TLS, subprocesses).
//!
//! Methods take `&self`: a transport is shared between the loop (which
//! delivers I/O to it) and its protocol (which writes to it from inside
//! callbacks), so implementations keep their state in cells. Operations
//! that asyncio lets fail by raising return `Result`; writing to a closing
//! transport is an `InvalidState` error here instead of a silent drop.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::Error;
use crate::protocol::StreamProtocol;

/// A value of [`BaseTransport::get_extra_info`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtraInfo {
    /// An IP socket address (`peername`, `sockname`).
    Addr(SocketAddr),
    /// A Unix socket path or abstract name, or a pipe's description.
    Path(String),
    /// A raw OS handle (`socket`, `pipe`: the fd number).
    Fd(i64),
    /// Text (`cipher`, `ssl_version`, `alpn_protocol`…).
    Text(String),
    /// Bytes (a DER certificate…).
    Bytes(Vec<u8>),
    /// Several values (`peercert` chain…).
    List(Vec<ExtraInfo>),
    /// A number (WebSocket close code, pid…).
    Int(i64),
}

/// Methods every transport has (asyncio's `BaseTransport`).
pub trait BaseTransport {
    /// Closes the transport: buffered data is flushed first, then the
    /// protocol's `connection_lost(None)` is called (from a later loop
    /// iteration). Idempotent.
    fn close(&self);

    /// Whether the transport is closing or closed.
    fn is_closing(&self) -> bool;

    /// Optional information about the transport: `"peername"`,
    /// `"sockname"`, `"socket"`, `"pipe"`, TLS details… `None` if unknown.
    fn get_extra_info(&self, name: &str) -> Option<ExtraInfo>;

    /// The transport as `Any`, so a host can recognise its own transports
    /// (asyncio's `sendfile` checks the transport's type to pick the
    /// zero-copy path). `None` for transports that do not opt in.
    fn as_any(&self) -> Option<&dyn core::any::Any> {
        None
    }

    /// `get_extra_info("peername")` as an address.
    fn peername(&self) -> Option<SocketAddr> {
        match self.get_extra_info("peername") {
            Some(ExtraInfo::Addr(a)) => Some(a),
            _ => None,
        }
    }

    /// `get_extra_info("sockname")` as an address.
    fn sockname(&self) -> Option<SocketAddr> {
        match self.get_extra_info("sockname") {
            Some(ExtraInfo::Addr(a)) => Some(a),
            _ => None,
        }
    }
}

/// A transport that receives (asyncio's `ReadTransport`).
pub trait ReadTransport: BaseTransport {
    /// Whether the transport is receiving.
    fn is_reading(&self) -> bool;
    /// Stops receiving: no `data_received` until `resume_reading`; data
    /// stays in the OS buffer (so the peer is slowed down). Idempotent.
    fn pause_reading(&self);
    /// Starts receiving again. Idempotent.
    fn resume_reading(&self);
}

/// A transport that sends (asyncio's `WriteTransport`).
pub trait WriteTransport: BaseTransport {
    /// Queues `data` to be sent; never blocks. What the OS does not take at
    /// once is buffered and sent as the connection drains, calling the
    /// protocol's `pause_writing` when the buffer goes over the high-water
    /// mark. Errors: `InvalidState` after `close`, `abort`, `write_eof` or
    /// connection loss.
    fn write(&self, data: &[u8]) -> Result<(), Error>;

    /// Writes several buffers, as one vectored write where possible.
    fn writelines(&self, bufs: &[&[u8]]) -> Result<(), Error> {
        for b in bufs {
            self.write(b)?;
        }
        Ok(())
    }

    /// Whether [`write_eof`](Self::write_eof) is supported.
    fn can_write_eof(&self) -> bool;

    /// Closes the write end after the buffered data is sent (TCP
    /// half-close); reading continues.
    fn write_eof(&self) -> Result<(), Error>;

    /// Closes at once: buffered data is dropped and the protocol's
    /// `connection_lost(None)` follows.
    fn abort(&self);

    /// Bytes buffered and not yet sent.
    fn get_write_buffer_size(&self) -> usize;

    /// `(low, high)` water marks, as asyncio returns them.
    fn get_write_buffer_limits(&self) -> (usize, usize);

    /// Sets the water marks; `None` picks asyncio's defaults (high 64 KiB,
    /// or 4 × low; low = high / 4). `InvalidInput` unless high ≥ low.
    fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) -> Result<(), Error>;
}

/// A bidirectional stream transport (asyncio's `Transport`), handed to a
/// [`Protocol`](crate::Protocol) in `connection_made`.
pub trait Transport: ReadTransport + WriteTransport {
    /// Replaces the protocol; takes effect between callbacks.
    fn set_protocol(&self, protocol: StreamProtocol);
    /// The current protocol.
    fn get_protocol(&self) -> StreamProtocol;

    /// Hands the transport over to a layer stacked on it (TLS, by
    /// `start_tls`) and returns the handle that layer uses from now on.
    /// Afterwards, through every other handle, `write`, `writelines`,
    /// `write_eof` and `set_write_buffer_limits` fail with `InvalidState`
    /// and `pause_reading`, `resume_reading` and `set_protocol` do nothing,
    /// so the application cannot disturb the stream it no longer owns;
    /// `close` and `abort` still end the connection. `None` (the default):
    /// the transport cannot do this and is only documented as unusable.
    fn hand_over(&self) -> Option<Rc<dyn Transport>> {
        None
    }
}

/// A datagram transport (asyncio's `DatagramTransport`).
pub trait DatagramTransport: BaseTransport {
    /// Sends one datagram to `addr`, or to the connected peer with `None`.
    fn sendto(&self, data: &[u8], addr: Option<SocketAddr>) -> Result<(), Error>;
    /// Closes at once, dropping queued datagrams.
    fn abort(&self);
    /// Bytes queued and not yet sent.
    fn get_write_buffer_size(&self) -> usize;
}

/// Which standard stream of a child process.
pub type PipeFd = i32;

/// A child-process transport (asyncio's `SubprocessTransport`).
pub trait SubprocessTransport: BaseTransport {
    /// The child's process id.
    fn get_pid(&self) -> Option<u32>;
    /// The exit status once the child exited: the exit code, or minus the
    /// signal number that killed it (as asyncio).
    fn get_returncode(&self) -> Option<i32>;
    /// The transport of the child's stdin (0, a write transport), stdout (1)
    /// or stderr (2), if it is a pipe.
    fn get_pipe_transport(&self, fd: PipeFd) -> Option<Rc<dyn Transport>>;
    /// Sends `signal` to the child.
    fn send_signal(&self, signal: i32) -> Result<(), Error>;
    /// Asks the child to stop (SIGTERM on Unix).
    fn terminate(&self) -> Result<(), Error>;
    /// Kills the child (SIGKILL on Unix).
    fn kill(&self) -> Result<(), Error>;
}
