//! The native [`NetBackend`]: TCP and Unix connections and servers,
//! datagram endpoints, DNS and `sendfile`, on mio and socket2.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use anyloop_core::backend::{IoFuture, NetBackend, RawFd, StreamProtocolFactory};
use anyloop_core::net::{AddrInfo, AddrInfoHints, ConnectOptions, DatagramOptions, Server, ServerOptions};
use anyloop_core::{DatagramProtocol, DatagramTransport, Error, ErrorKind, EventLoop, StreamProtocol, Transport};

use crate::reactor::Reactor;

pub mod connect;
mod listen;
pub(crate) mod resolve;
#[cfg(unix)]
pub(crate) mod sendfile;
mod server;
pub(crate) mod socket;
mod udp;

/// Connections, servers, datagrams, DNS and sendfile for one loop.
pub(crate) struct NativeNet {
    pub(crate) reactor: Rc<Reactor>,
}

impl NetBackend for NativeNet {
    fn create_connection(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        host: Option<String>,
        port: Option<u16>,
        opts: ConnectOptions,
    ) -> IoFuture<'static, Rc<dyn Transport>> {
        Box::pin(connect::create_connection(lp.clone(), self.reactor.clone(), protocol, host, port, opts))
    }

    fn create_server(
        &self,
        lp: &EventLoop,
        factory: StreamProtocolFactory,
        hosts: Vec<String>,
        port: Option<u16>,
        opts: ServerOptions,
    ) -> IoFuture<'static, Server> {
        Box::pin(listen::create_server(lp.clone(), self.reactor.clone(), factory, hosts, port, opts))
    }

    fn create_unix_connection(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        path: Option<String>,
        opts: ConnectOptions,
    ) -> IoFuture<'static, Rc<dyn Transport>> {
        #[cfg(unix)]
        return Box::pin(unix::create_unix_connection(lp.clone(), self.reactor.clone(), protocol, path, opts));
        #[cfg(not(unix))]
        {
            let _ = (lp, protocol, path, opts);
            anyloop_core::backend::failed(Error::unsupported(
                "create_unix_connection",
                "Unix sockets need a Unix system",
            ))
        }
    }

    fn create_unix_server(
        &self,
        lp: &EventLoop,
        factory: StreamProtocolFactory,
        path: Option<String>,
        opts: ServerOptions,
    ) -> IoFuture<'static, Server> {
        #[cfg(unix)]
        {
            let r = listen::create_unix_server(lp, self.reactor.clone(), factory, path, opts);
            Box::pin(async move { r })
        }
        #[cfg(not(unix))]
        {
            let _ = (lp, factory, path, opts);
            anyloop_core::backend::failed(Error::unsupported("create_unix_server", "Unix sockets need a Unix system"))
        }
    }

    fn connect_accepted_socket(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        fd: RawFd,
        opts: ConnectOptions,
    ) -> IoFuture<'static, Rc<dyn Transport>> {
        let lp = lp.clone();
        let reactor = self.reactor.clone();
        Box::pin(async move {
            let s = socket::adopt(fd)?;
            if s.r#type().map_err(Error::from)? != socket2::Type::STREAM {
                return Err(Error::new(ErrorKind::InvalidInput, format!("A Stream Socket was expected, got fd {fd}")));
            }
            let local = s.local_addr().map_err(Error::from)?;
            if local.as_socket().is_some() {
                let stream = mio::net::TcpStream::from_std(std::net::TcpStream::from(s));
                if opts.nodelay {
                    stream.set_nodelay(true).map_err(Error::from)?;
                }
                return connect::start_transport(&lp, &reactor, stream, protocol).await;
            }
            #[cfg(unix)]
            {
                let stream = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(s));
                connect::start_transport(&lp, &reactor, mio::net::UnixStream::from_std(stream), protocol).await
            }
            #[cfg(not(unix))]
            Err(Error::new(ErrorKind::InvalidInput, "not a TCP socket"))
        })
    }

    fn create_datagram_endpoint(
        &self,
        lp: &EventLoop,
        protocol: Rc<RefCell<dyn DatagramProtocol>>,
        opts: DatagramOptions,
    ) -> IoFuture<'static, Rc<dyn DatagramTransport>> {
        Box::pin(udp::create_datagram_endpoint(lp.clone(), self.reactor.clone(), protocol, opts))
    }

    fn getaddrinfo(
        &self,
        lp: &EventLoop,
        host: Option<String>,
        port: Option<String>,
        hints: AddrInfoHints,
    ) -> IoFuture<'static, Vec<AddrInfo>> {
        let job = lp.run_in_executor(move || resolve::getaddrinfo_blocking(host.as_deref(), port.as_deref(), hints));
        Box::pin(async move { job.await? })
    }

    fn getnameinfo(&self, lp: &EventLoop, addr: SocketAddr, flags: i32) -> IoFuture<'static, (String, String)> {
        let job = lp.run_in_executor(move || resolve::getnameinfo_blocking(addr, flags));
        Box::pin(async move { job.await? })
    }

    fn sendfile(
        &self,
        lp: &EventLoop,
        transport: Rc<dyn Transport>,
        file: RawFd,
        offset: u64,
        count: Option<u64>,
        fallback: bool,
    ) -> IoFuture<'static, u64> {
        #[cfg(unix)]
        {
            let lp = lp.clone();
            Box::pin(async move { sendfile::sendfile(&lp, transport, file, offset, count, fallback).await })
        }
        #[cfg(not(unix))]
        {
            let _ = (lp, transport, file, offset, count, fallback);
            anyloop_core::backend::failed(Error::unsupported("sendfile", "files are passed as Unix descriptors"))
        }
    }
}

#[cfg(unix)]
mod unix {
    //! `create_unix_connection`.

    use std::rc::Rc;

    use anyloop_core::net::ConnectOptions;
    use anyloop_core::{Error, ErrorKind, EventLoop, StreamProtocol, Transport};
    use mio::Interest;

    use super::connect::start_transport;
    use super::socket::{adopt, in_progress, prepare, with_addr};
    use crate::reactor::Reactor;
    use crate::util::wait_source;

    /// Connects to `path` (or wraps `opts.sock`).
    pub(crate) async fn create_unix_connection(
        lp: EventLoop,
        reactor: Rc<Reactor>,
        protocol: StreamProtocol,
        path: Option<String>,
        opts: ConnectOptions,
    ) -> Result<Rc<dyn Transport>, Error> {
        let s = match (opts.sock, path) {
            (Some(_), Some(_)) => {
                return Err(Error::new(ErrorKind::InvalidInput, "path and sock can not be specified at the same time"));
            }
            (None, None) => return Err(Error::new(ErrorKind::InvalidInput, "no path and sock were specified")),
            (Some(fd), None) => adopt(fd)?,
            (None, Some(path)) => {
                if path.starts_with('\0') && !cfg!(any(target_os = "linux", target_os = "android")) {
                    return Err(Error::unsupported("abstract Unix socket names", "they exist on Linux only"));
                }
                let s =
                    socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).map_err(Error::from)?;
                prepare(&s).map_err(Error::from)?;
                let sa = socket2::SockAddr::unix(&path).map_err(Error::from)?;
                let shown = anyloop_core::net::Addr::Unix(path.clone());
                match s.connect(&sa) {
                    Ok(()) => {}
                    Err(e) if in_progress(&e) => {
                        let mut stream = mio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(
                            std::os::fd::OwnedFd::from(s),
                        ));
                        wait_source(&reactor, &mut stream, Interest::WRITABLE).await?;
                        if let Some(e) = stream.take_error().map_err(Error::from)? {
                            return Err(with_addr(e, "Connect call failed", shown));
                        }
                        return start_transport(&lp, &reactor, stream, protocol).await;
                    }
                    Err(e) => return Err(with_addr(e, "Connect call failed", shown)),
                }
                s
            }
        };
        let stream =
            mio::net::UnixStream::from_std(std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(s)));
        start_transport(&lp, &reactor, stream, protocol).await
    }
}
