//! `create_server` and `create_unix_server`: resolving the hosts, binding
//! one socket per address, and handing them to a [`ServerCore`].

use std::net::SocketAddr;
use std::rc::Rc;

use anyloop_core::backend::StreamProtocolFactory;
use anyloop_core::net::{Addr, Server, ServerOptions};
use anyloop_core::{Error, ErrorKind, EventLoop};
use socket2::{Socket, Type};

use super::resolve::{AI_PASSIVE, SOCK_STREAM, resolve};
use super::server::{ListenSock, NativeServer, ServerCore};
use super::socket::{adopt, new_socket, to_addr, with_addr};
use crate::reactor::Reactor;

/// Binds one TCP socket with asyncio's options.
fn bind_tcp(addr: SocketAddr, opts: &ServerOptions) -> Result<Socket, Error> {
    let s = new_socket(&addr, Type::STREAM).map_err(Error::from)?;
    if opts.reuse_address {
        s.set_reuse_address(true).map_err(Error::from)?;
    }
    if opts.reuse_port {
        #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))))]
        s.set_reuse_port(true).map_err(Error::from)?;
        #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin")))))]
        return Err(Error::unsupported("reuse_port", "SO_REUSEPORT is not available on this platform"));
    }
    // Each family gets its own socket (asyncio sets IPV6_V6ONLY), so `::`
    // and `0.0.0.0` can both be bound on one port.
    if addr.is_ipv6() {
        s.set_only_v6(true).map_err(Error::from)?;
    }
    s.bind(&addr.into()).map_err(|e| with_addr(e, "error while attempting to bind on address", addr))?;
    Ok(s)
}

fn tcp_listener(s: Socket) -> Result<(ListenSock, Addr), Error> {
    let addr = s.local_addr().map(|a| to_addr(&a)).map_err(Error::from)?;
    Ok((ListenSock::Tcp(mio::net::TcpListener::from_std(std::net::TcpListener::from(s))), addr))
}

/// `create_server`.
pub(crate) async fn create_server(
    lp: EventLoop,
    reactor: Rc<Reactor>,
    factory: StreamProtocolFactory,
    hosts: Vec<String>,
    port: Option<u16>,
    opts: ServerOptions,
) -> Result<Server, Error> {
    let socks = if let Some(fd) = opts.sock {
        if !hosts.is_empty() || port.is_some_and(|p| p != 0) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "host/port and sock can not be specified at the same time",
            ));
        }
        let s = adopt(fd)?;
        if s.r#type().map_err(Error::from)? != Type::STREAM {
            return Err(Error::new(ErrorKind::InvalidInput, format!("A Stream Socket was expected, got fd {fd}")));
        }
        let local = s.local_addr().map_err(Error::from)?;
        if local.as_socket().is_some() {
            vec![tcp_listener(s)?]
        } else {
            #[cfg(unix)]
            {
                let addr = to_addr(&local);
                let l = std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(s));
                vec![(ListenSock::Unix(mio::net::UnixListener::from_std(l)), addr)]
            }
            #[cfg(not(unix))]
            return Err(Error::new(ErrorKind::InvalidInput, "not a TCP socket"));
        }
    } else {
        let port = port.unwrap_or(0);
        let hosts: Vec<Option<String>> =
            if hosts.is_empty() { vec![None] } else { hosts.into_iter().map(Some).collect() };
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for h in &hosts {
            for a in resolve(&lp, h.as_deref(), port, opts.family, SOCK_STREAM, AI_PASSIVE).await? {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
        // All or nothing: a bind failure closes the sockets bound so far.
        let mut socks = Vec::with_capacity(addrs.len());
        for a in addrs {
            socks.push(tcp_listener(bind_tcp(a, &opts)?)?);
        }
        socks
    };
    serve(&lp, ServerCore::new(&lp, reactor, factory, socks, opts.backlog, opts.keep_alive), &opts)
}

fn serve(lp: &EventLoop, core: Rc<ServerCore>, opts: &ServerOptions) -> Result<Server, Error> {
    let server = Server::new(lp, Rc::new(NativeServer(core)));
    if opts.start_serving {
        server.start_serving()?;
    }
    Ok(server)
}

/// `create_unix_server`: a path (a stale socket file there is replaced, as
/// asyncio does) or, on Linux, an abstract name starting with `'\0'`.
#[cfg(unix)]
pub(crate) fn create_unix_server(
    lp: &EventLoop,
    reactor: Rc<Reactor>,
    factory: StreamProtocolFactory,
    path: Option<String>,
    opts: ServerOptions,
) -> Result<Server, Error> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if let Some(fd) = opts.sock {
        if path.is_some() {
            return Err(Error::new(ErrorKind::InvalidInput, "path and sock can not be specified at the same time"));
        }
        let s = adopt(fd)?;
        let addr = to_addr(&s.local_addr().map_err(Error::from)?);
        let l = std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(s));
        let socks = vec![(ListenSock::Unix(mio::net::UnixListener::from_std(l)), addr)];
        return serve(lp, ServerCore::new(lp, reactor, factory, socks, opts.backlog, opts.keep_alive), &opts);
    }
    let Some(path) = path else {
        return Err(Error::new(ErrorKind::InvalidInput, "path was not specified, and no sock specified"));
    };
    let is_abstract = path.starts_with('\0');
    if is_abstract && !cfg!(any(target_os = "linux", target_os = "android")) {
        return Err(Error::unsupported("abstract Unix socket names", "they exist on Linux only"));
    }
    if !is_abstract
        && let Ok(m) = std::fs::metadata(&path)
        && m.file_type().is_socket()
    {
        let _ = std::fs::remove_file(&path);
    }
    let s = Socket::new(socket2::Domain::UNIX, Type::STREAM, None).map_err(Error::from)?;
    super::socket::prepare(&s).map_err(Error::from)?;
    let sa = socket2::SockAddr::unix(&path).map_err(Error::from)?;
    s.bind(&sa).map_err(|e| with_addr(e, "error while attempting to bind on address", Addr::Unix(path.clone())))?;
    let addr = Addr::Unix(path.clone());
    let l = std::os::unix::net::UnixListener::from(std::os::fd::OwnedFd::from(s));
    let socks = vec![(ListenSock::Unix(mio::net::UnixListener::from_std(l)), addr)];
    let core = ServerCore::new(lp, reactor, factory, socks, opts.backlog, opts.keep_alive);
    if !is_abstract
        && opts.cleanup_socket
        && let Ok(m) = std::fs::metadata(&path)
    {
        core.set_cleanup(super::server::UnixCleanup { path: path.into(), id: (m.dev(), m.ino()) });
    }
    serve(lp, core, &opts)
}
