//! Portable types of the I/O API: addresses, options, servers.
//!
//! asyncio's keyword arguments become fields of option structs with
//! asyncio's defaults (`ConnectOptions::default()` has `TCP_NODELAY` on,
//! `ServerOptions::default()` a backlog of 100…), so a call reads like the
//! Python one: `ServerOptions { reuse_port: true, ..Default::default() }`.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use crate::backend::{IoFuture, RawFd};
use crate::tls::TlsContext;
use crate::{Error, EventLoop, WeakLoop};

/// An address of any socket family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// IPv4 or IPv6.
    Ip(SocketAddr),
    /// A Unix socket path; an abstract (Linux) name starts with `'\0'`.
    Unix(String),
    /// An unnamed socket (e.g. the client end of a Unix connection).
    Unnamed,
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Ip(a) => write!(f, "{a}"),
            Addr::Unix(p) if p.starts_with('\0') => write!(f, "@{}", &p[1..]),
            Addr::Unix(p) => f.write_str(p),
            Addr::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

/// Where `sock_connect` connects: an address, or a name to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    /// A resolved IP address.
    Ip(SocketAddr),
    /// A host name (or address literal) and port, resolved first.
    Host(String, u16),
    /// A Unix socket path (abstract names start with `'\0'`).
    Unix(String),
}

/// An address family (asyncio's `family=`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Family {
    /// Any (`AF_UNSPEC`).
    #[default]
    Unspec,
    /// IPv4 (`AF_INET`).
    Inet,
    /// IPv6 (`AF_INET6`).
    Inet6,
    /// Unix domain (`AF_UNIX`).
    Unix,
}

/// Options of `create_connection`, `create_unix_connection` and
/// `connect_accepted_socket`.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Connect an existing socket instead (the loop takes ownership).
    pub sock: Option<RawFd>,
    /// Bind to this local address first.
    pub local_addr: Option<SocketAddr>,
    /// Restrict name resolution to one family.
    pub family: Family,
    /// Set `TCP_NODELAY` (asyncio's default: on).
    pub nodelay: bool,
    /// RFC 8305 Happy Eyeballs: start the next attempt after this delay
    /// (asyncio recommends 250 ms); `None`: try addresses one by one.
    pub happy_eyeballs_delay: Option<Duration>,
    /// Reorder resolved addresses by family, taking this many of the first
    /// family first (`None`: 1 with Happy Eyeballs, else no reordering).
    pub interleave: Option<usize>,
    /// With several addresses failing, report all errors (`true`) or one.
    pub all_errors: bool,
    /// Run TLS over the connection with this configuration (asyncio's
    /// `ssl=`); see [`crate::tls`]. `connect_accepted_socket` plays the
    /// server side, as asyncio does.
    pub ssl: Option<Rc<dyn TlsContext>>,
    /// The name the server's certificate must match, instead of `host`
    /// (required without a host: Unix sockets, `sock`). `""` turns the name
    /// check off (asyncio's documented, dangerous behaviour).
    pub server_hostname: Option<String>,
    /// Abort the TLS handshake after this long (asyncio: 60 s).
    pub ssl_handshake_timeout: Option<Duration>,
    /// Abort the TLS closing handshake after this long (asyncio: 30 s).
    pub ssl_shutdown_timeout: Option<Duration>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            sock: None,
            local_addr: None,
            family: Family::Unspec,
            nodelay: true,
            happy_eyeballs_delay: None,
            interleave: None,
            all_errors: false,
            ssl: None,
            server_hostname: None,
            ssl_handshake_timeout: None,
            ssl_shutdown_timeout: None,
        }
    }
}

/// Options of `create_server` and `create_unix_server`.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Serve on an existing listening socket (the loop takes ownership).
    pub sock: Option<RawFd>,
    /// Restrict to one family.
    pub family: Family,
    /// The listen backlog (asyncio: 100).
    pub backlog: u32,
    /// `SO_REUSEADDR` (asyncio: on, on Unix).
    pub reuse_address: bool,
    /// `SO_REUSEPORT`.
    pub reuse_port: bool,
    /// `SO_KEEPALIVE` on accepted connections.
    pub keep_alive: bool,
    /// Start accepting at once (asyncio: yes).
    pub start_serving: bool,
    /// Unix servers: remove the socket file on close (asyncio: yes).
    pub cleanup_socket: bool,
    /// Serve TLS with this (server) configuration (asyncio's `ssl=`); see
    /// [`crate::tls`].
    pub ssl: Option<Rc<dyn TlsContext>>,
    /// Abort a connection whose TLS handshake takes longer (asyncio: 60 s).
    pub ssl_handshake_timeout: Option<Duration>,
    /// Abort a TLS closing handshake that takes longer (asyncio: 30 s).
    pub ssl_shutdown_timeout: Option<Duration>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            sock: None,
            family: Family::Unspec,
            backlog: 100,
            reuse_address: cfg!(unix) || cfg!(target_os = "wasi"),
            reuse_port: false,
            keep_alive: false,
            start_serving: true,
            cleanup_socket: true,
            ssl: None,
            ssl_handshake_timeout: None,
            ssl_shutdown_timeout: None,
        }
    }
}

/// Options of `create_datagram_endpoint`.
#[derive(Clone, Debug, Default)]
pub struct DatagramOptions {
    /// Bind to this address.
    pub local_addr: Option<SockAddr>,
    /// Connect to this address (then `sendto(data, None)` sends there).
    pub remote_addr: Option<SockAddr>,
    /// Restrict to one family.
    pub family: Family,
    /// `SO_REUSEPORT`.
    pub reuse_port: bool,
    /// `SO_BROADCAST`.
    pub allow_broadcast: bool,
    /// Use an existing socket (the loop takes ownership).
    pub sock: Option<RawFd>,
}

/// Hints for `getaddrinfo`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct AddrInfoHints {
    /// Address family.
    pub family: Family,
    /// `SOCK_STREAM` (1), `SOCK_DGRAM` (2)… 0: any.
    pub socktype: i32,
    /// Protocol number; 0: any.
    pub proto: i32,
    /// `AI_*` flags.
    pub flags: i32,
}

/// One result of `getaddrinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddrInfo {
    /// Address family.
    pub family: Family,
    /// Socket type.
    pub socktype: i32,
    /// Protocol.
    pub proto: i32,
    /// Canonical name, if asked for (`AI_CANONNAME`).
    pub canonname: Option<String>,
    /// The address.
    pub addr: SocketAddr,
}

/// How a child's stdin, stdout or stderr is connected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Stdio {
    /// A pipe to the parent, with a pipe transport (asyncio's `PIPE`).
    #[default]
    Pipe,
    /// The parent's own stream (`None` in asyncio).
    Inherit,
    /// `/dev/null` (`DEVNULL`).
    DevNull,
    /// An existing descriptor (duplicated for the child).
    Fd(RawFd),
    /// stderr only: the same pipe as stdout (`STDOUT`).
    Stdout,
}

/// Options of `subprocess_exec` / `subprocess_shell`.
#[derive(Clone, Debug, Default)]
pub struct SubprocessOptions {
    /// The child's stdin.
    pub stdin: Stdio,
    /// The child's stdout.
    pub stdout: Stdio,
    /// The child's stderr.
    pub stderr: Stdio,
    /// Working directory.
    pub cwd: Option<String>,
    /// Start from an empty environment instead of the parent's.
    pub env_clear: bool,
    /// Variables to set (after `env_clear`).
    pub env: Vec<(String, String)>,
    /// Variables to remove.
    pub env_remove: Vec<String>,
    /// argv\[0\] to show instead of the program.
    pub arg0: Option<String>,
    /// Unix: run the child in a new process group (`process_group=0`).
    pub new_process_group: bool,
}

/// What a host's server implements; users see [`Server`].
pub trait ServerBackend {
    /// Stops listening; connections already accepted stay open.
    fn close(&self);
    /// Whether it is accepting connections.
    fn is_serving(&self) -> bool;
    /// Starts accepting (idempotent).
    fn start_serving(&self) -> Result<(), Error>;
    /// The listening sockets' addresses.
    fn sockets(&self) -> Vec<Addr>;
    /// The listening sockets' descriptors.
    fn fds(&self) -> Vec<RawFd> {
        Vec::new()
    }
    /// Resolves once the server is closed and its connections are gone.
    fn wait_closed(&self) -> IoFuture<'static, ()>;
    /// Closes every connection the server accepted (asyncio 3.13).
    fn close_clients(&self) {}
    /// Aborts every connection the server accepted (asyncio 3.13).
    fn abort_clients(&self) {}
}

/// A listening server (asyncio's `Server`), returned by `create_server`.
///
/// Where Python uses `async with server:`, Rust uses scope: dropping the
/// future of [`serve_forever`](Server::serve_forever) closes the server.
#[derive(Clone)]
pub struct Server {
    backend: Rc<dyn ServerBackend>,
    lp: WeakLoop,
}

impl Server {
    /// Wraps a host's server.
    pub fn new(lp: &EventLoop, backend: Rc<dyn ServerBackend>) -> Server {
        Server { backend, lp: lp.downgrade() }
    }

    /// The loop the server runs on.
    pub fn get_loop(&self) -> Option<EventLoop> {
        self.lp.upgrade()
    }

    /// Stops listening; accepted connections stay open.
    pub fn close(&self) {
        self.backend.close()
    }

    /// Closes every connection the server accepted.
    pub fn close_clients(&self) {
        self.backend.close_clients()
    }

    /// Aborts every connection the server accepted.
    pub fn abort_clients(&self) {
        self.backend.abort_clients()
    }

    /// Whether it accepts connections.
    pub fn is_serving(&self) -> bool {
        self.backend.is_serving()
    }

    /// Starts accepting connections (idempotent).
    pub fn start_serving(&self) -> Result<(), Error> {
        self.backend.start_serving()
    }

    /// Addresses the server listens on.
    pub fn sockets(&self) -> Vec<Addr> {
        self.backend.sockets()
    }

    /// Raw descriptors of the listening sockets.
    pub fn fds(&self) -> Vec<RawFd> {
        self.backend.fds()
    }

    /// Waits until the server is closed and its connections are done.
    pub async fn wait_closed(&self) -> Result<(), Error> {
        self.backend.wait_closed().await
    }

    /// Starts serving and waits until the server is closed. If the future
    /// is dropped (its task cancelled) first, the server is closed — as
    /// asyncio's `serve_forever` does on cancellation.
    pub async fn serve_forever(&self) -> Result<(), Error> {
        self.start_serving()?;
        let mut guard = CloseOnDrop(Some(self.backend.clone()));
        let r = self.backend.wait_closed().await;
        guard.0 = None;
        r
    }
}

struct CloseOnDrop(Option<Rc<dyn ServerBackend>>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if let Some(b) = self.0.take() {
            b.close();
        }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("sockets", &self.sockets()).field("serving", &self.is_serving()).finish()
    }
}
