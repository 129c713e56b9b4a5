//! The [`NetBackend`] of wasip2: TCP, UDP and DNS on `wasi:sockets`.
//! Unix sockets, raw descriptors and reverse lookups do not exist there.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;

use anyloop_core::backend::{IoFuture, NetBackend, RawFd, StreamProtocolFactory, failed};
use anyloop_core::net::{AddrInfo, AddrInfoHints, ConnectOptions, DatagramOptions, Family, Server, ServerOptions};
use anyloop_core::{DatagramProtocol, DatagramTransport, Error, ErrorKind, EventLoop, StreamProtocol, Transport};

use crate::reactor::Reactor;

/// `AI_PASSIVE`: addresses to bind to, not to connect to.
const AI_PASSIVE: i32 = 1;

/// Networking of the wasip2 host.
pub(crate) struct WasiNet {
    pub(crate) reactor: Rc<Reactor>,
}

pub(super) const NO_UNIX: &str = "WASI has no Unix sockets";
pub(super) const NO_FDS: &str = "wasip2 sockets are wasi:sockets resources, not descriptors";

impl NetBackend for WasiNet {
    fn create_connection(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        host: Option<String>,
        port: Option<u16>,
        opts: ConnectOptions,
    ) -> IoFuture<'static, Rc<dyn Transport>> {
        Box::pin(super::tcp::create_connection(lp.clone(), self.reactor.clone(), protocol, host, port, opts))
    }

    fn create_server(
        &self,
        lp: &EventLoop,
        factory: StreamProtocolFactory,
        hosts: Vec<String>,
        port: Option<u16>,
        opts: ServerOptions,
    ) -> IoFuture<'static, Server> {
        Box::pin(super::server::create_server(lp.clone(), self.reactor.clone(), factory, hosts, port, opts))
    }

    fn create_unix_connection(
        &self,
        _lp: &EventLoop,
        _protocol: StreamProtocol,
        _path: Option<String>,
        _opts: ConnectOptions,
    ) -> IoFuture<'static, Rc<dyn Transport>> {
        failed(Error::unsupported("create_unix_connection", NO_UNIX))
    }

    fn create_unix_server(
        &self,
        _lp: &EventLoop,
        _factory: StreamProtocolFactory,
        _path: Option<String>,
        _opts: ServerOptions,
    ) -> IoFuture<'static, Server> {
        failed(Error::unsupported("create_unix_server", NO_UNIX))
    }

    fn connect_accepted_socket(
        &self,
        _lp: &EventLoop,
        _protocol: StreamProtocol,
        _fd: RawFd,
        _opts: ConnectOptions,
    ) -> IoFuture<'static, Rc<dyn Transport>> {
        failed(Error::unsupported("connect_accepted_socket", NO_FDS))
    }

    fn create_datagram_endpoint(
        &self,
        lp: &EventLoop,
        protocol: Rc<RefCell<dyn DatagramProtocol>>,
        opts: DatagramOptions,
    ) -> IoFuture<'static, Rc<dyn DatagramTransport>> {
        Box::pin(super::udp::create_datagram_endpoint(lp.clone(), self.reactor.clone(), protocol, opts))
    }

    fn getaddrinfo(
        &self,
        _lp: &EventLoop,
        host: Option<String>,
        port: Option<String>,
        hints: AddrInfoHints,
    ) -> IoFuture<'static, Vec<AddrInfo>> {
        let reactor = self.reactor.clone();
        Box::pin(async move { getaddrinfo(&reactor, host, port, hints).await })
    }

    fn getnameinfo(&self, _lp: &EventLoop, _addr: SocketAddr, _flags: i32) -> IoFuture<'static, (String, String)> {
        failed(Error::unsupported("getnameinfo", "wasi:sockets has no reverse name lookup"))
    }

    fn sendfile(
        &self,
        _lp: &EventLoop,
        _transport: Rc<dyn Transport>,
        _file: RawFd,
        _offset: u64,
        _count: Option<u64>,
        _fallback: bool,
    ) -> IoFuture<'static, u64> {
        failed(Error::unsupported("sendfile", NO_FDS))
    }
}

async fn getaddrinfo(
    reactor: &Rc<Reactor>,
    host: Option<String>,
    port: Option<String>,
    hints: AddrInfoHints,
) -> Result<Vec<AddrInfo>, Error> {
    let port = match port.as_deref() {
        None | Some("") => 0,
        Some(p) => p.parse::<u16>().map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("getaddrinfo: service {p:?} is not a port number (WASI has no services database)"),
            )
        })?,
    };
    let ips: Vec<IpAddr> = match host.as_deref() {
        None | Some("") if hints.flags & AI_PASSIVE != 0 => {
            vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()]
        }
        None | Some("") => vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()],
        Some(h) => super::dns::resolve(reactor, h).await?,
    };
    let socktypes: Vec<(i32, i32)> = match hints.socktype {
        0 => vec![(1, 6), (2, 17)],
        1 => vec![(1, 6)],
        2 => vec![(2, 17)],
        t => vec![(t, hints.proto)],
    };
    let mut out = Vec::new();
    for ip in ips.into_iter().filter(|ip| super::dns::family_matches(hints.family, ip)) {
        for (socktype, proto) in &socktypes {
            if hints.proto != 0 && hints.proto != *proto {
                continue;
            }
            out.push(AddrInfo {
                family: if ip.is_ipv4() { Family::Inet } else { Family::Inet6 },
                socktype: *socktype,
                proto: *proto,
                canonname: None,
                addr: SocketAddr::new(ip, port),
            });
        }
    }
    if out.is_empty() {
        return Err(Error::new(ErrorKind::NotFound, format!("getaddrinfo({host:?}): no address matches the hints")));
    }
    Ok(out)
}
