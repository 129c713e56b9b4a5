//! The I/O methods of [`EventLoop`], on every host: connections, servers,
//! datagrams, DNS, fd watchers, raw sockets, pipes, subprocesses, signals.
//!
//! Each delegates to the host's backend (see [`crate::backend`]); without
//! one it returns `Unsupported` with the host's reason.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::net::SocketAddr;

use crate::backend::{IoBackend, NetBackend, ProcessBackend, RawFd, SignalBackend};
use crate::net::{
    Addr, AddrInfo, AddrInfoHints, ConnectOptions, DatagramOptions, Server, ServerOptions, SockAddr, SubprocessOptions,
};
use crate::{
    DatagramProtocol, DatagramTransport, Error, EventLoop, Handle, Protocol, StreamProtocol, SubprocessProtocol,
    SubprocessTransport, Transport,
};

/// A connected stream: the transport and the protocol (shared, so the
/// caller can reach its state), as asyncio's `(transport, protocol)`.
pub type Connection<P> = (Rc<dyn Transport>, Rc<RefCell<P>>);

impl EventLoop {
    fn unsupported(&self, what: &str) -> Error {
        Error::unsupported(what, self.inner.backends.why)
    }

    fn io(&self, what: &str) -> Result<Rc<dyn IoBackend>, Error> {
        self.inner.backends.io.clone().ok_or_else(|| self.unsupported(what))
    }

    fn net(&self, what: &str) -> Result<Rc<dyn NetBackend>, Error> {
        self.inner.backends.net.clone().ok_or_else(|| self.unsupported(what))
    }

    fn process(&self, what: &str) -> Result<Rc<dyn ProcessBackend>, Error> {
        self.inner.backends.process.clone().ok_or_else(|| self.unsupported(what))
    }

    fn signals(&self, what: &str) -> Result<Rc<dyn SignalBackend>, Error> {
        self.inner.backends.signals.clone().ok_or_else(|| self.unsupported(what))
    }

    fn open(&self) -> Result<(), Error> {
        if self.is_closed() { Err(crate::event_loop::closed_error()) } else { Ok(()) }
    }

    // ----- Watching file descriptors -----

    /// Calls `callback` whenever `fd` is readable (level-triggered, as in
    /// asyncio), replacing an earlier reader of `fd`.
    #[track_caller]
    pub fn add_reader(&self, fd: RawFd, callback: impl FnMut(&EventLoop) + 'static) -> Result<(), Error> {
        self.open()?;
        let handle = Handle::repeating(callback);
        self.io("add_reader")?.add_reader(self, fd, handle)
    }

    /// Stops watching `fd` for reading; returns whether it was watched.
    pub fn remove_reader(&self, fd: RawFd) -> Result<bool, Error> {
        self.open()?;
        self.io("remove_reader")?.remove_reader(self, fd)
    }

    /// Calls `callback` whenever `fd` is writable.
    #[track_caller]
    pub fn add_writer(&self, fd: RawFd, callback: impl FnMut(&EventLoop) + 'static) -> Result<(), Error> {
        self.open()?;
        let handle = Handle::repeating(callback);
        self.io("add_writer")?.add_writer(self, fd, handle)
    }

    /// Stops watching `fd` for writing; returns whether it was watched.
    pub fn remove_writer(&self, fd: RawFd) -> Result<bool, Error> {
        self.open()?;
        self.io("remove_writer")?.remove_writer(self, fd)
    }

    // ----- Working with socket objects directly -----

    /// Receives up to `nbytes` from a non-blocking socket.
    pub async fn sock_recv(&self, fd: RawFd, nbytes: usize) -> Result<Vec<u8>, Error> {
        let mut buf = alloc::vec![0u8; nbytes];
        let n = self.sock_recv_into(fd, &mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Receives into `buf`; returns the number of bytes (0 at EOF).
    pub async fn sock_recv_into(&self, fd: RawFd, buf: &mut [u8]) -> Result<usize, Error> {
        self.open()?;
        let io = self.io("sock_recv_into")?;
        io.sock_recv_into(self, fd, buf).await
    }

    /// Receives a datagram of up to `bufsize` bytes and its sender.
    pub async fn sock_recvfrom(&self, fd: RawFd, bufsize: usize) -> Result<(Vec<u8>, SocketAddr), Error> {
        let mut buf = alloc::vec![0u8; bufsize];
        let (n, addr) = self.sock_recvfrom_into(fd, &mut buf).await?;
        buf.truncate(n);
        Ok((buf, addr))
    }

    /// Receives a datagram into `buf`.
    pub async fn sock_recvfrom_into(&self, fd: RawFd, buf: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
        self.open()?;
        let io = self.io("sock_recvfrom_into")?;
        io.sock_recvfrom_into(self, fd, buf).await
    }

    /// Sends all of `data`.
    pub async fn sock_sendall(&self, fd: RawFd, data: &[u8]) -> Result<(), Error> {
        self.open()?;
        let io = self.io("sock_sendall")?;
        io.sock_sendall(self, fd, data).await
    }

    /// Sends a datagram to `addr`; returns the bytes sent.
    pub async fn sock_sendto(&self, fd: RawFd, data: &[u8], addr: SocketAddr) -> Result<usize, Error> {
        self.open()?;
        let io = self.io("sock_sendto")?;
        io.sock_sendto(self, fd, data, addr).await
    }

    /// Connects a non-blocking socket to `addr`, resolving names first.
    pub async fn sock_connect(&self, fd: RawFd, addr: SockAddr) -> Result<(), Error> {
        self.open()?;
        let io = self.io("sock_connect")?;
        io.sock_connect(self, fd, addr).await
    }

    /// Accepts a connection on a listening socket: the new (non-blocking)
    /// descriptor, owned by the caller, and the peer's address.
    pub async fn sock_accept(&self, fd: RawFd) -> Result<(RawFd, Addr), Error> {
        self.open()?;
        let io = self.io("sock_accept")?;
        io.sock_accept(self, fd).await
    }

    /// Sends `count` bytes (or all) of `file` from `offset` over a socket,
    /// with the OS's sendfile where possible, else (if `fallback`) by
    /// reading and sending.
    pub async fn sock_sendfile(
        &self,
        fd: RawFd,
        file: RawFd,
        offset: u64,
        count: Option<u64>,
        fallback: bool,
    ) -> Result<u64, Error> {
        self.open()?;
        let io = self.io("sock_sendfile")?;
        io.sock_sendfile(self, fd, file, offset, count, fallback).await
    }

    // ----- Opening network connections -----

    /// Opens a TCP connection to `host:port` (or `opts.sock`) and runs the
    /// protocol `factory()` makes over it (asyncio's `create_connection`).
    /// With `opts.ssl`, over TLS (see [`crate::tls`]).
    pub async fn create_connection<P: Protocol + 'static>(
        &self,
        factory: impl FnOnce() -> P,
        host: &str,
        port: u16,
        opts: ConnectOptions,
    ) -> Result<Connection<P>, Error> {
        self.open()?;
        let (sp, p) = StreamProtocol::plain(factory());
        let t = self.create_connection_with(sp, Some(host), Some(port), opts).await?;
        Ok((t, p))
    }

    /// [`create_connection`](Self::create_connection) with any stream
    /// protocol (e.g. a buffered one), and `host`/`port` optional for
    /// `opts.sock`.
    pub async fn create_connection_with(
        &self,
        protocol: StreamProtocol,
        host: Option<&str>,
        port: Option<u16>,
        mut opts: ConnectOptions,
    ) -> Result<Rc<dyn Transport>, Error> {
        self.open()?;
        let net = self.net("create_connection")?;
        let (host, port) = (host.map(String::from), port);
        match crate::tls::take_connect(&mut opts, host.as_deref(), false)? {
            None => net.create_connection(self, protocol, host, port, opts).await,
            Some((ssl, params)) => {
                let waiter = self.create_future();
                let raw_protocol = ssl.start(self, protocol, params, Some(waiter.clone()));
                let raw = net.create_connection(self, raw_protocol, host, port, opts).await?;
                crate::tls::handshake(raw, waiter).await
            }
        }
    }

    /// Opens a Unix socket connection to `path` (abstract names start with
    /// `'\0'`). With `opts.ssl`, over TLS (`opts.server_hostname` required).
    pub async fn create_unix_connection<P: Protocol + 'static>(
        &self,
        factory: impl FnOnce() -> P,
        path: &str,
        opts: ConnectOptions,
    ) -> Result<Connection<P>, Error> {
        self.open()?;
        let (sp, p) = StreamProtocol::plain(factory());
        let t = self.create_unix_connection_with(sp, path, opts).await?;
        Ok((t, p))
    }

    /// [`create_unix_connection`](Self::create_unix_connection) with any
    /// stream protocol.
    pub async fn create_unix_connection_with(
        &self,
        protocol: StreamProtocol,
        path: &str,
        mut opts: ConnectOptions,
    ) -> Result<Rc<dyn Transport>, Error> {
        self.open()?;
        let net = self.net("create_unix_connection")?;
        match crate::tls::take_connect(&mut opts, None, false)? {
            None => net.create_unix_connection(self, protocol, Some(String::from(path)), opts).await,
            Some((ssl, params)) => {
                let waiter = self.create_future();
                let raw_protocol = ssl.start(self, protocol, params, Some(waiter.clone()));
                let raw = net.create_unix_connection(self, raw_protocol, Some(String::from(path)), opts).await?;
                crate::tls::handshake(raw, waiter).await
            }
        }
    }

    /// Wraps an already connected socket (the loop takes ownership). With
    /// `opts.ssl`, runs the server side of TLS over it, as asyncio does.
    pub async fn connect_accepted_socket<P: Protocol + 'static>(
        &self,
        factory: impl FnOnce() -> P,
        fd: RawFd,
        opts: ConnectOptions,
    ) -> Result<Connection<P>, Error> {
        self.open()?;
        let (sp, p) = StreamProtocol::plain(factory());
        let t = self.connect_accepted_socket_with(sp, fd, opts).await?;
        Ok((t, p))
    }

    /// [`connect_accepted_socket`](Self::connect_accepted_socket) with any
    /// stream protocol.
    pub async fn connect_accepted_socket_with(
        &self,
        protocol: StreamProtocol,
        fd: RawFd,
        mut opts: ConnectOptions,
    ) -> Result<Rc<dyn Transport>, Error> {
        self.open()?;
        let net = self.net("connect_accepted_socket")?;
        match crate::tls::take_connect(&mut opts, None, true)? {
            None => net.connect_accepted_socket(self, protocol, fd, opts).await,
            Some((ssl, params)) => {
                let waiter = self.create_future();
                let raw_protocol = ssl.start(self, protocol, params, Some(waiter.clone()));
                let raw = net.connect_accepted_socket(self, raw_protocol, fd, opts).await?;
                crate::tls::handshake(raw, waiter).await
            }
        }
    }

    /// Opens a datagram endpoint (asyncio's `create_datagram_endpoint`).
    pub async fn create_datagram_endpoint<P: DatagramProtocol + 'static>(
        &self,
        factory: impl FnOnce() -> P,
        opts: DatagramOptions,
    ) -> Result<(Rc<dyn DatagramTransport>, Rc<RefCell<P>>), Error> {
        self.open()?;
        let net = self.net("create_datagram_endpoint")?;
        let p = Rc::new(RefCell::new(factory()));
        let t = net.create_datagram_endpoint(self, p.clone(), opts).await?;
        Ok((t, p))
    }

    // ----- Creating network servers -----

    /// Starts a TCP server on `host:port`; `factory` makes one protocol per
    /// connection. `host` `None` or `""` means all interfaces; port 0 picks
    /// a free port (see [`Server::sockets`]).
    pub async fn create_server<P: Protocol + 'static>(
        &self,
        factory: impl Fn() -> P + 'static,
        host: Option<&str>,
        port: u16,
        opts: ServerOptions,
    ) -> Result<Server, Error> {
        let hosts: Vec<String> = host.into_iter().filter(|h| !h.is_empty()).map(String::from).collect();
        self.create_server_with(Rc::new(move || StreamProtocol::plain(factory()).0), hosts, Some(port), opts).await
    }

    /// [`create_server`](Self::create_server) with several hosts and any
    /// stream protocol factory.
    pub async fn create_server_with(
        &self,
        factory: crate::backend::StreamProtocolFactory,
        hosts: Vec<String>,
        port: Option<u16>,
        mut opts: ServerOptions,
    ) -> Result<Server, Error> {
        self.open()?;
        let net = self.net("create_server")?;
        let factory = crate::tls::wrap_factory(self, factory, &mut opts)?;
        net.create_server(self, factory, hosts, port, opts).await
    }

    /// Starts a Unix socket server on `path`.
    pub async fn create_unix_server<P: Protocol + 'static>(
        &self,
        factory: impl Fn() -> P + 'static,
        path: &str,
        opts: ServerOptions,
    ) -> Result<Server, Error> {
        self.create_unix_server_with(Rc::new(move || StreamProtocol::plain(factory()).0), path, opts).await
    }

    /// [`create_unix_server`](Self::create_unix_server) with any stream
    /// protocol factory.
    pub async fn create_unix_server_with(
        &self,
        factory: crate::backend::StreamProtocolFactory,
        path: &str,
        mut opts: ServerOptions,
    ) -> Result<Server, Error> {
        self.open()?;
        let net = self.net("create_unix_server")?;
        let factory = crate::tls::wrap_factory(self, factory, &mut opts)?;
        net.create_unix_server(self, factory, Some(String::from(path)), opts).await
    }

    // ----- Transferring files -----

    /// Sends a file over a stream transport (asyncio's `loop.sendfile`).
    pub async fn sendfile(
        &self,
        transport: Rc<dyn Transport>,
        file: RawFd,
        offset: u64,
        count: Option<u64>,
        fallback: bool,
    ) -> Result<u64, Error> {
        self.open()?;
        let net = self.net("sendfile")?;
        net.sendfile(self, transport, file, offset, count, fallback).await
    }

    // ----- DNS -----

    /// Resolves `host` and `port` without blocking the loop.
    pub async fn getaddrinfo(
        &self,
        host: Option<&str>,
        port: Option<&str>,
        hints: AddrInfoHints,
    ) -> Result<Vec<AddrInfo>, Error> {
        self.open()?;
        let net = self.net("getaddrinfo")?;
        net.getaddrinfo(self, host.map(String::from), port.map(String::from), hints).await
    }

    /// Reverse-resolves `addr` to `(host, service)` without blocking.
    pub async fn getnameinfo(&self, addr: SocketAddr, flags: i32) -> Result<(String, String), Error> {
        self.open()?;
        let net = self.net("getnameinfo")?;
        net.getnameinfo(self, addr, flags).await
    }

    // ----- Working with pipes -----

    /// Wraps the read end of a pipe (the loop takes ownership of `fd`).
    pub async fn connect_read_pipe<P: Protocol + 'static>(
        &self,
        factory: impl FnOnce() -> P,
        fd: RawFd,
    ) -> Result<Connection<P>, Error> {
        self.open()?;
        let pb = self.process("connect_read_pipe")?;
        let (sp, p) = StreamProtocol::plain(factory());
        let t = pb.connect_read_pipe(self, sp, fd).await?;
        Ok((t, p))
    }

    /// Wraps the write end of a pipe (the loop takes ownership of `fd`).
    pub async fn connect_write_pipe<P: Protocol + 'static>(
        &self,
        factory: impl FnOnce() -> P,
        fd: RawFd,
    ) -> Result<Connection<P>, Error> {
        self.open()?;
        let pb = self.process("connect_write_pipe")?;
        let (sp, p) = StreamProtocol::plain(factory());
        let t = pb.connect_write_pipe(self, sp, fd).await?;
        Ok((t, p))
    }

    // ----- Running subprocesses -----

    /// Starts `program` with `args` (asyncio's `subprocess_exec`).
    pub async fn subprocess_exec<P: SubprocessProtocol + 'static>(
        &self,
        factory: impl FnOnce() -> P,
        program: &str,
        args: &[&str],
        opts: SubprocessOptions,
    ) -> Result<(Rc<dyn SubprocessTransport>, Rc<RefCell<P>>), Error> {
        self.open()?;
        let pb = self.process("subprocess_exec")?;
        let p = Rc::new(RefCell::new(factory()));
        let args = args.iter().map(|a| String::from(*a)).collect();
        let t = pb.subprocess(self, p.clone(), String::from(program), args, false, opts).await?;
        Ok((t, p))
    }

    /// Runs `cmd` through the shell (`/bin/sh -c`; asyncio's
    /// `subprocess_shell`).
    pub async fn subprocess_shell<P: SubprocessProtocol + 'static>(
        &self,
        factory: impl FnOnce() -> P,
        cmd: &str,
        opts: SubprocessOptions,
    ) -> Result<(Rc<dyn SubprocessTransport>, Rc<RefCell<P>>), Error> {
        self.open()?;
        let pb = self.process("subprocess_shell")?;
        let p = Rc::new(RefCell::new(factory()));
        let t = pb.subprocess(self, p.clone(), String::from(cmd), Vec::new(), true, opts).await?;
        Ok((t, p))
    }

    // ----- Unix signals -----

    /// Calls `callback` on the loop whenever signal `signum` arrives
    /// (replacing this loop's earlier handler for it). `InvalidInput` for
    /// signals that cannot be caught (SIGKILL, SIGSTOP) or do not exist.
    #[track_caller]
    pub fn add_signal_handler(&self, signum: i32, callback: impl FnMut(&EventLoop) + 'static) -> Result<(), Error> {
        self.open()?;
        let handle = Handle::repeating(callback);
        self.signals("add_signal_handler")?.add_signal_handler(self, signum, handle)
    }

    /// Removes the handler for `signum`; returns whether there was one.
    /// With no handler left, the signal's default disposition is restored.
    pub fn remove_signal_handler(&self, signum: i32) -> Result<bool, Error> {
        self.open()?;
        self.signals("remove_signal_handler")?.remove_signal_handler(self, signum)
    }
}
