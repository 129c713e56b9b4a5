//! Stream transports over any non-blocking descriptor.
//!
//! [`StreamTransport`] is asyncio's `_SelectorSocketTransport`, written once
//! and generic over a [`StreamIo`]: a TCP or Unix socket here, a pipe in the
//! subprocess code. The descriptor type only knows how to read, write,
//! half-close and describe itself; everything asyncio specifies — write
//! buffering, water marks, `pause_reading`, `write_eof`, `close` after the
//! buffer drained, `connection_lost` from a later iteration, buffered
//! protocols — lives in the transport.
//!
//! Why the transport looks the way it does (each point was measured with
//! the echo benchmark, `just bench-echo`):
//!
//! * **Edge-triggered, acted on by kind.** The descriptor is registered once
//!   for reading *and* writing. A writable edge with nothing buffered — the
//!   common case: every ACK that frees send space raises one — is dropped in
//!   [`Dispatch::ready`](crate::reactor::Dispatch::ready) without scheduling
//!   anything; a readable edge while reading is paused is only remembered.
//! * **A short read drains the socket.** On Unix a `read` that returns less
//!   than the buffer means the kernel queue was empty at that moment, and any
//!   data arriving later raises a new edge, so the transport does not spend a
//!   system call on the `EAGAIN` that would confirm it (tokio does the same).
//!   Full reads continue, a few per callback, then in the next iteration so
//!   one busy connection cannot starve the others.
//! * **Adaptive read size.** Reads start at 64 KiB into a scratch buffer
//!   shared by every transport of the thread (data is delivered to the
//!   protocol before the next read, so one buffer suffices) and double, up to
//!   256 KiB, whenever a read fills the buffer: a 100 KiB message then
//!   arrives in one `read` instead of two.
//! * **Writes go out at once.** `write()` on an empty buffer calls the OS
//!   immediately, as asyncio does; only what the kernel refuses is buffered,
//!   and buffered chunks (and `writelines`) leave in one vectored write.

mod io;
mod transport;

pub use io::{Direction, StreamIo};
#[cfg(unix)]
pub(crate) use io::{SEND_FLAGS, unix_addr_string};
pub use transport::StreamTransport;

/// The first read size of a transport.
pub const READ_SIZE_MIN: usize = 64 * 1024;
/// The largest read size a transport grows to.
pub const READ_SIZE_MAX: usize = 256 * 1024;
