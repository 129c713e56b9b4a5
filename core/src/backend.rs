//! The I/O half of the loop API, as hosts provide it.
//!
//! Every asyncio loop method is an inherent method of [`EventLoop`], on
//! every host, so one program compiles for every target. The I/O methods
//! delegate to *backends* the host offers through [`Host::backends`]:
//! a host that has no backend for something (signals under WASI, servers in
//! the browser) makes the method return an `Unsupported` error naming the
//! reason — never a panic, never a missing method.
//!
//! Backends are object-safe traits; asynchronous operations return boxed
//! futures ([`IoFuture`]). The types in their signatures are the portable
//! ones defined here and in [`crate::net`]: raw descriptors are [`RawFd`]
//! numbers, addresses are `core::net::SocketAddr` or [`Addr`].
//!
//! [`EventLoop`]: crate::EventLoop
//! [`Host::backends`]: crate::Host::backends
//! [`Addr`]: crate::net::Addr

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::future::Future;
use core::net::SocketAddr;
use core::pin::Pin;

use crate::net::{
    AddrInfo, AddrInfoHints, ConnectOptions, DatagramOptions, Server, ServerOptions, SockAddr, SubprocessOptions,
};
use crate::{
    DatagramProtocol, DatagramTransport, Error, EventLoop, Handle, StreamProtocol, SubprocessProtocol,
    SubprocessTransport, Transport,
};

/// A raw OS descriptor: a Unix file descriptor, or a WASI descriptor.
/// The loop never takes ownership of one it is given, unless a method says
/// so (`connect_accepted_socket`, the `sock` options).
pub type RawFd = i32;

/// A boxed, non-`Send` future returned by backends.
pub type IoFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + 'a>>;

/// An [`IoFuture`] that fails at once with `e`: what a backend returns for
/// an operation it refuses before starting (`Unsupported` on this platform,
/// a closed server…).
///
/// ```
/// use anyloop_core::backend::{IoFuture, failed};
/// use anyloop_core::Error;
///
/// fn sendfile() -> IoFuture<'static, u64> {
///     failed(Error::unsupported("sendfile", "this host has no files"))
/// }
/// # let _ = sendfile();
/// ```
pub fn failed<T: 'static>(e: Error) -> IoFuture<'static, T> {
    Box::pin(core::future::ready(Err(e)))
}

/// Makes a stream protocol for each new connection (servers).
pub type StreamProtocolFactory = Rc<dyn Fn() -> StreamProtocol>;

/// Makes the protocol of a subprocess.
pub type SubprocessProtocolFactory = Box<dyn FnOnce() -> Rc<core::cell::RefCell<dyn SubprocessProtocol>>>;

/// The backends a host offers; `None` means `Unsupported`, with
/// [`Backends::why`] as the reason.
#[derive(Default, Clone)]
pub struct Backends {
    /// Fd watchers and the `sock_*` operations.
    pub io: Option<Rc<dyn IoBackend>>,
    /// Connections, servers, datagrams, DNS, sendfile.
    pub net: Option<Rc<dyn NetBackend>>,
    /// Pipes and subprocesses.
    pub process: Option<Rc<dyn ProcessBackend>>,
    /// Unix signals.
    pub signals: Option<Rc<dyn SignalBackend>>,
    /// The default executor for `run_in_executor`.
    pub executor: Option<Arc<dyn Executor>>,
    /// Why the missing backends are missing (e.g. "the browser has no
    /// sockets"), used in `Unsupported` errors.
    pub why: &'static str,
}

/// Watching descriptors and operating on raw sockets.
pub trait IoBackend {
    /// Calls `handle` (a [`Handle::repeating`]) whenever `fd` is readable,
    /// level-triggered like asyncio, replacing an earlier reader of `fd`.
    fn add_reader(&self, lp: &EventLoop, fd: RawFd, handle: Handle) -> Result<(), Error>;
    /// Stops watching `fd` for reading; whether a reader was registered.
    fn remove_reader(&self, lp: &EventLoop, fd: RawFd) -> Result<bool, Error>;
    /// As `add_reader`, for writability.
    fn add_writer(&self, lp: &EventLoop, fd: RawFd, handle: Handle) -> Result<(), Error>;
    /// As `remove_reader`, for writability.
    fn remove_writer(&self, lp: &EventLoop, fd: RawFd) -> Result<bool, Error>;

    /// Receives up to `buf.len()` bytes.
    fn sock_recv_into<'a>(&'a self, lp: &EventLoop, fd: RawFd, buf: &'a mut [u8]) -> IoFuture<'a, usize>;
    /// Receives a datagram into `buf`.
    fn sock_recvfrom_into<'a>(
        &'a self,
        lp: &EventLoop,
        fd: RawFd,
        buf: &'a mut [u8],
    ) -> IoFuture<'a, (usize, SocketAddr)>;
    /// Sends all of `data`.
    fn sock_sendall<'a>(&'a self, lp: &EventLoop, fd: RawFd, data: &'a [u8]) -> IoFuture<'a, ()>;
    /// Sends one datagram to `addr`.
    fn sock_sendto<'a>(&'a self, lp: &EventLoop, fd: RawFd, data: &'a [u8], addr: SocketAddr) -> IoFuture<'a, usize>;
    /// Connects a non-blocking socket, resolving names if needed.
    fn sock_connect<'a>(&'a self, lp: &EventLoop, fd: RawFd, addr: SockAddr) -> IoFuture<'a, ()>;
    /// Accepts a connection: the new descriptor (owned by the caller, set
    /// non-blocking) and the peer's address.
    fn sock_accept<'a>(&'a self, lp: &EventLoop, fd: RawFd) -> IoFuture<'a, (RawFd, crate::net::Addr)>;
    /// Sends `count` bytes (all, with `None`) of `file` from `offset`;
    /// returns the bytes sent.
    fn sock_sendfile<'a>(
        &'a self,
        lp: &EventLoop,
        fd: RawFd,
        file: RawFd,
        offset: u64,
        count: Option<u64>,
        fallback: bool,
    ) -> IoFuture<'a, u64>;
}

/// Connections, servers, datagram endpoints, DNS and file transfer.
pub trait NetBackend {
    /// `create_connection`: connects to `host:port` (or `opts.sock`).
    fn create_connection(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        host: Option<String>,
        port: Option<u16>,
        opts: ConnectOptions,
    ) -> IoFuture<'static, Rc<dyn Transport>>;
    /// `create_server`.
    fn create_server(
        &self,
        lp: &EventLoop,
        factory: StreamProtocolFactory,
        hosts: Vec<String>,
        port: Option<u16>,
        opts: ServerOptions,
    ) -> IoFuture<'static, Server>;
    /// `create_unix_connection`.
    fn create_unix_connection(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        path: Option<String>,
        opts: ConnectOptions,
    ) -> IoFuture<'static, Rc<dyn Transport>>;
    /// `create_unix_server`.
    fn create_unix_server(
        &self,
        lp: &EventLoop,
        factory: StreamProtocolFactory,
        path: Option<String>,
        opts: ServerOptions,
    ) -> IoFuture<'static, Server>;
    /// `connect_accepted_socket`: wraps a connected socket (takes ownership).
    fn connect_accepted_socket(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        fd: RawFd,
        opts: ConnectOptions,
    ) -> IoFuture<'static, Rc<dyn Transport>>;
    /// `create_datagram_endpoint`.
    fn create_datagram_endpoint(
        &self,
        lp: &EventLoop,
        protocol: Rc<core::cell::RefCell<dyn DatagramProtocol>>,
        opts: DatagramOptions,
    ) -> IoFuture<'static, Rc<dyn DatagramTransport>>;
    /// `getaddrinfo`, without blocking the loop.
    fn getaddrinfo(
        &self,
        lp: &EventLoop,
        host: Option<String>,
        port: Option<String>,
        hints: AddrInfoHints,
    ) -> IoFuture<'static, Vec<AddrInfo>>;
    /// `getnameinfo`, without blocking the loop.
    fn getnameinfo(&self, lp: &EventLoop, addr: SocketAddr, flags: i32) -> IoFuture<'static, (String, String)>;
    /// `sendfile(transport, file, offset, count, fallback)`.
    fn sendfile(
        &self,
        lp: &EventLoop,
        transport: Rc<dyn Transport>,
        file: RawFd,
        offset: u64,
        count: Option<u64>,
        fallback: bool,
    ) -> IoFuture<'static, u64>;
}

/// Pipes and child processes.
pub trait ProcessBackend {
    /// `connect_read_pipe`: wraps the read end of a pipe-like fd (takes
    /// ownership and sets it non-blocking).
    fn connect_read_pipe(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        fd: RawFd,
    ) -> IoFuture<'static, Rc<dyn Transport>>;
    /// `connect_write_pipe`: wraps the write end of a pipe-like fd.
    fn connect_write_pipe(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        fd: RawFd,
    ) -> IoFuture<'static, Rc<dyn Transport>>;
    /// `subprocess_exec` (`program` and `args`) or `subprocess_shell` (`args`
    /// empty, `program` the command line, `shell` true).
    fn subprocess(
        &self,
        lp: &EventLoop,
        protocol: Rc<core::cell::RefCell<dyn SubprocessProtocol>>,
        program: String,
        args: Vec<String>,
        shell: bool,
        opts: SubprocessOptions,
    ) -> IoFuture<'static, Rc<dyn SubprocessTransport>>;
}

/// Unix signals.
pub trait SignalBackend {
    /// Calls `handle` (repeating) on the loop whenever `signum` arrives,
    /// replacing an earlier handler of this loop for it.
    fn add_signal_handler(&self, lp: &EventLoop, signum: i32, handle: Handle) -> Result<(), Error>;
    /// Removes this loop's handler; whether there was one. The default
    /// disposition is restored when no loop handles `signum` any more.
    fn remove_signal_handler(&self, lp: &EventLoop, signum: i32) -> Result<bool, Error>;
}

/// Runs blocking jobs off the loop's thread (asyncio's executors).
pub trait Executor: Send + Sync + 'static {
    /// Runs `job` on some other thread; `Closed` after shutdown.
    fn execute(&self, job: Box<dyn FnOnce() + Send>) -> Result<(), Error>;
    /// Stops accepting jobs; calls `done` (from any thread) once the jobs
    /// already accepted have finished. Never blocks.
    fn shutdown(&self, done: Box<dyn FnOnce() + Send>);
}
