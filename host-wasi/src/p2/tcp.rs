//! TCP connections on `wasi:sockets/tcp`: `create_connection`, and the
//! transport of a connected socket (client or accepted).

use std::net::SocketAddr;
use std::rc::Rc;

use anyloop_core::net::ConnectOptions;
use anyloop_core::{Error, ErrorKind, EventLoop, ExtraInfo, StreamProtocol};
use wasip2::io::streams::{InputStream, OutputStream};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

use super::streams::{InReader, OutWriter};
use crate::reactor::{Reactor, Source};
use crate::ready::readiness;
use crate::stream::{Kind, Parts, StreamTransport};

/// A connected socket and its two streams.
pub(crate) struct Connected {
    pub(crate) socket: TcpSocket,
    pub(crate) input: InputStream,
    pub(crate) output: OutputStream,
}

/// Connects one socket to `addr` (binding to `local` first), waiting for
/// the connection on the socket's pollable.
pub(crate) async fn connect_one(
    reactor: &Rc<Reactor>,
    addr: SocketAddr,
    local: Option<SocketAddr>,
) -> Result<Connected, Error> {
    let what = format!("connect to {addr} failed");
    let mut socket = create_tcp_socket(super::family_of(&addr)).map_err(|c| super::code_error(c, &what))?;
    let network = instance_network();
    if let Some(local) = local {
        socket
            .start_bind(&network, super::to_wasi(local))
            .map_err(|c| super::code_error(c, &format!("bind to {local} failed")))?;
        loop {
            match socket.finish_bind() {
                Ok(()) => break,
                Err(ErrorCode::WouldBlock) => {
                    socket = readiness(reactor, socket, |s| Source::Pollable(s.subscribe())).await;
                }
                Err(c) => return Err(super::code_error(c, &format!("bind to {local} failed"))),
            }
        }
    }
    socket.start_connect(&network, super::to_wasi(addr)).map_err(|c| super::code_error(c, &what))?;
    loop {
        match socket.finish_connect() {
            Ok((input, output)) => return Ok(Connected { socket, input, output }),
            Err(ErrorCode::WouldBlock) => {
                socket = readiness(reactor, socket, |s| Source::Pollable(s.subscribe())).await;
            }
            Err(c) => return Err(super::code_error(c, &what)),
        }
    }
}

/// The transport parts of a connected socket.
pub(crate) fn parts(c: Connected, on_lost: Option<Box<dyn FnOnce()>>) -> Parts {
    let Connected { socket, input, output } = c;
    let mut extra = Vec::new();
    if let Ok(a) = socket.remote_address() {
        extra.push(("peername", ExtraInfo::Addr(super::from_wasi(a))));
    }
    if let Ok(a) = socket.local_address() {
        extra.push(("sockname", ExtraInfo::Addr(super::from_wasi(a))));
    }
    let peer = extra.first().map(|(_, a)| format!("{a:?}")).unwrap_or_default();
    let socket = Rc::new(socket);
    Parts {
        kind: Kind::Tcp,
        name: format!("<TcpTransport peer={peer}>"),
        reader: Some(Box::new(InReader::new(input))),
        writer: Some(Box::new(OutWriter::new(output, Some(socket.clone())))),
        owner: Some(Box::new(socket)),
        extra,
        on_lost,
    }
}

/// asyncio's `create_connection`: resolve, try each address in turn, wrap
/// the first that connects.
pub(crate) async fn create_connection(
    lp: EventLoop,
    reactor: Rc<Reactor>,
    protocol: StreamProtocol,
    host: Option<String>,
    port: Option<u16>,
    opts: ConnectOptions,
) -> Result<Rc<dyn anyloop_core::Transport>, Error> {
    if opts.sock.is_some() {
        return Err(Error::unsupported("create_connection(sock=…)", super::net::NO_FDS));
    }
    let (Some(host), Some(port)) = (host, port) else {
        return Err(Error::new(ErrorKind::InvalidInput, "host and port was not specified and no sock specified"));
    };
    let addrs = super::dns::resolve_addrs(&reactor, &host, port, opts.family).await?;
    let mut errors: Vec<Error> = Vec::new();
    let mut connected = None;
    for addr in addrs {
        match connect_one(&reactor, addr, opts.local_addr).await {
            Ok(c) => {
                connected = Some(c);
                break;
            }
            Err(e) => errors.push(e),
        }
    }
    let Some(c) = connected else {
        return Err(combine(errors));
    };
    let waiter = lp.create_future::<()>();
    let w = waiter.clone();
    let t = StreamTransport::start(&lp, &reactor, protocol, parts(c, None), move |_, r| {
        let _ = match r {
            Ok(_) => w.set_result(()),
            Err(e) => w.set_exception(e),
        };
    })?;
    waiter.await?;
    Ok(t)
}

/// asyncio's rule for several failed attempts: one error if they all say
/// the same, else "Multiple exceptions: …".
fn combine(errors: Vec<Error>) -> Error {
    let mut it = errors.into_iter();
    let Some(first) = it.next() else {
        return Error::new(ErrorKind::NotFound, "no address to connect to");
    };
    let rest: Vec<Error> = it.collect();
    let text = first.to_string();
    if rest.iter().all(|e| e.to_string() == text) {
        return first;
    }
    let all: Vec<String> = std::iter::once(text).chain(rest.iter().map(|e| e.to_string())).collect();
    Error::new(first.kind(), format!("Multiple exceptions: {}", all.join(", ")))
}
