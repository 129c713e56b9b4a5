//! UDP on `wasi:sockets/udp`: `create_datagram_endpoint` and its
//! [`DatagramTransport`].
//!
//! A `udp-socket` is bound first (to the local address, or to the
//! unspecified address of the family), then `stream(remote)` gives an
//! incoming and an outgoing datagram stream — children of the socket,
//! dropped before it. Datagrams that cannot be sent at once wait in a
//! queue and go out on the outgoing stream's readiness, in order.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::{Rc, Weak};

use anyloop_core::net::{DatagramOptions, Family, SockAddr};
use anyloop_core::{
    BaseTransport, DatagramProtocol, DatagramTransport, Error, ErrorKind, EventLoop, ExtraInfo, Handle, WeakLoop,
};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::udp::{IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket};
use wasip2::sockets::udp_create_socket::create_udp_socket;

use crate::reactor::{Reactor, Source, Token};
use crate::ready::readiness;

/// How many datagrams one readiness receives at most.
const RECEIVE_BATCH: u64 = 64;

type Protocol = Rc<RefCell<dyn DatagramProtocol>>;

struct UdpTransport {
    me: Weak<UdpTransport>,
    lp: WeakLoop,
    reactor: Rc<Reactor>,
    protocol: Protocol,
    // Children before their parent: streams, then the socket.
    incoming: RefCell<Option<IncomingDatagramStream>>,
    outgoing: RefCell<Option<OutgoingDatagramStream>>,
    socket: RefCell<Option<UdpSocket>>,
    read_token: Cell<Option<Token>>,
    write_token: Cell<Option<Token>>,
    queue: RefCell<VecDeque<(Vec<u8>, Option<SocketAddr>)>>,
    queued: Cell<usize>,
    closing: Cell<bool>,
    lost: Cell<bool>,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
}

async fn resolve_one(reactor: &Rc<Reactor>, a: &SockAddr, family: Family) -> Result<SocketAddr, Error> {
    match a {
        SockAddr::Ip(addr) => Ok(*addr),
        SockAddr::Host(h, port) => super::dns::resolve_addrs(reactor, h, *port, family)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("getaddrinfo({h:?}): no address"))),
        SockAddr::Unix(_) => Err(Error::new(ErrorKind::InvalidInput, super::net::NO_UNIX)),
    }
}

/// asyncio's `create_datagram_endpoint` on wasip2.
pub(crate) async fn create_datagram_endpoint(
    lp: EventLoop,
    reactor: Rc<Reactor>,
    protocol: Protocol,
    opts: DatagramOptions,
) -> Result<Rc<dyn DatagramTransport>, Error> {
    if opts.sock.is_some() {
        return Err(Error::unsupported("create_datagram_endpoint(sock=…)", super::net::NO_FDS));
    }
    let remote = match &opts.remote_addr {
        Some(a) => Some(resolve_one(&reactor, a, opts.family).await?),
        None => None,
    };
    let family = match (remote, opts.family) {
        (Some(r), _) => {
            if r.is_ipv4() {
                Family::Inet
            } else {
                Family::Inet6
            }
        }
        (None, f) => f,
    };
    let local = match &opts.local_addr {
        Some(a) => resolve_one(&reactor, a, family).await?,
        None => match family {
            Family::Inet6 => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
            _ => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        },
    };
    let what = format!("could not bind on address {local}");
    let mut socket = create_udp_socket(super::family_of(&local)).map_err(|c| super::code_error(c, &what))?;
    let network = instance_network();
    socket.start_bind(&network, super::to_wasi(local)).map_err(|c| super::code_error(c, &what))?;
    loop {
        match socket.finish_bind() {
            Ok(()) => break,
            Err(ErrorCode::WouldBlock) => {
                socket = readiness(&reactor, socket, |s| Source::Pollable(s.subscribe())).await
            }
            Err(c) => return Err(super::code_error(c, &what)),
        }
    }
    let (incoming, outgoing) = socket
        .stream(remote.map(super::to_wasi))
        .map_err(|c| super::code_error(c, &format!("could not connect to {remote:?}")))?;
    let bound = socket.local_address().ok().map(super::from_wasi);
    let t = Rc::new_cyclic(|me| UdpTransport {
        me: me.clone(),
        lp: lp.downgrade(),
        reactor: reactor.clone(),
        protocol,
        incoming: RefCell::new(Some(incoming)),
        outgoing: RefCell::new(Some(outgoing)),
        socket: RefCell::new(Some(socket)),
        read_token: Cell::new(None),
        write_token: Cell::new(None),
        queue: RefCell::new(VecDeque::new()),
        queued: Cell::new(0),
        closing: Cell::new(false),
        lost: Cell::new(false),
        local: bound,
        remote,
    });
    t.register();
    let waiter = lp.create_future::<()>();
    let w = waiter.clone();
    let t2 = t.clone();
    lp.call_soon(move |_| {
        let me: Rc<dyn DatagramTransport> = t2.clone();
        match t2.protocol.try_borrow_mut() {
            Ok(mut p) => p.connection_made(me),
            Err(_) => {
                let _ = w.set_exception(busy());
                return;
            }
        }
        if !t2.closing.get()
            && let Some(tok) = t2.read_token.get()
        {
            t2.reactor.set_active(tok, true);
        }
        let _ = w.set_result(());
    })?;
    waiter.await?;
    Ok(t)
}

fn busy() -> Error {
    Error::new(ErrorKind::InvalidState, "the datagram protocol is borrowed elsewhere while the transport needs it")
}

impl UdpTransport {
    fn register(&self) {
        let Some(me) = self.me.upgrade() else { return };
        let src = self.incoming.borrow().as_ref().map(|s| Source::Pollable(s.subscribe()));
        if let Some(src) = src {
            let m = me.clone();
            let h = Handle::repeating(move |lp| m.on_readable(lp));
            self.read_token.set(Some(self.reactor.register(src, h, false)));
        }
        let src = self.outgoing.borrow().as_ref().map(|s| Source::Pollable(s.subscribe()));
        if let Some(src) = src {
            let h = Handle::repeating(move |lp| me.on_writable(lp));
            self.write_token.set(Some(self.reactor.register(src, h, false)));
        }
    }

    fn on_readable(&self, _lp: &EventLoop) {
        if self.lost.get() {
            return;
        }
        let received = match self.incoming.borrow().as_ref() {
            Some(s) => s.receive(RECEIVE_BATCH),
            None => return,
        };
        match received {
            Ok(datagrams) => {
                for d in datagrams {
                    if self.lost.get() {
                        return;
                    }
                    let from = super::from_wasi(d.remote_address);
                    if let Ok(mut p) = self.protocol.try_borrow_mut() {
                        p.datagram_received(&d.data, from);
                    }
                }
            }
            Err(ErrorCode::WouldBlock) => {}
            Err(c) => self.error_received(super::code_error(c, "recvfrom failed")),
        }
    }

    fn error_received(&self, e: Error) {
        if let Ok(mut p) = self.protocol.try_borrow_mut() {
            p.error_received(e);
        }
    }

    /// Sends queued datagrams while the stream takes them.
    fn flush_queue(&self) -> Result<(), Error> {
        loop {
            let Some(permit) = self.permit()? else { return Ok(()) };
            let batch: Vec<OutgoingDatagram> = {
                let q = self.queue.borrow();
                if q.is_empty() {
                    return Ok(());
                }
                q.iter()
                    .take(usize::try_from(permit).unwrap_or(usize::MAX))
                    .map(|(data, addr)| OutgoingDatagram {
                        data: data.clone(),
                        remote_address: addr.map(super::to_wasi),
                    })
                    .collect()
            };
            let sent = match self.outgoing.borrow().as_ref() {
                Some(s) => s.send(&batch),
                None => return Ok(()),
            };
            let n = match sent {
                Ok(n) => usize::try_from(n).unwrap_or(0),
                Err(ErrorCode::WouldBlock) => return Ok(()),
                Err(c) => {
                    // The first datagram failed: drop it, report, go on.
                    self.pop(1);
                    self.error_received(super::code_error(c, "sendto failed"));
                    continue;
                }
            };
            if n == 0 {
                return Ok(());
            }
            self.pop(n);
        }
    }

    fn pop(&self, n: usize) {
        let mut q = self.queue.borrow_mut();
        for _ in 0..n {
            if let Some((d, _)) = q.pop_front() {
                self.queued.set(self.queued.get().saturating_sub(d.len()));
            }
        }
    }

    fn permit(&self) -> Result<Option<u64>, Error> {
        match self.outgoing.borrow().as_ref().map(|s| s.check_send()) {
            Some(Ok(0)) | None => Ok(None),
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(ErrorCode::WouldBlock)) => Ok(None),
            Some(Err(c)) => Err(super::code_error(c, "sendto failed")),
        }
    }

    fn on_writable(&self, lp: &EventLoop) {
        if self.lost.get() {
            return;
        }
        if let Err(e) = self.flush_queue() {
            self.error_received(e);
        }
        if self.queue.borrow().is_empty() {
            if let Some(t) = self.write_token.get() {
                self.reactor.set_active(t, false);
            }
            if self.closing.get() {
                self.schedule_lost(lp, None);
            }
        }
    }

    fn schedule_lost(&self, lp: &EventLoop, exc: Option<Error>) {
        if self.lost.replace(true) {
            return;
        }
        for t in [self.read_token.get(), self.write_token.get()].into_iter().flatten() {
            self.reactor.set_active(t, false);
        }
        let Some(me) = self.me.upgrade() else { return };
        let r = lp.call_soon(move |_| {
            if let Ok(mut p) = me.protocol.try_borrow_mut() {
                p.connection_lost(exc);
            }
            me.teardown();
        });
        if r.is_err() {
            self.teardown();
        }
    }

    fn teardown(&self) {
        self.lost.set(true);
        if let Some(t) = self.read_token.take() {
            self.reactor.deregister(t);
        }
        if let Some(t) = self.write_token.take() {
            self.reactor.deregister(t);
        }
        drop(self.incoming.borrow_mut().take());
        drop(self.outgoing.borrow_mut().take());
        drop(self.socket.borrow_mut().take());
        self.queue.borrow_mut().clear();
        self.queued.set(0);
    }
}

impl BaseTransport for UdpTransport {
    fn close(&self) {
        if self.closing.replace(true) || self.lost.get() {
            return;
        }
        if let Some(t) = self.read_token.get() {
            self.reactor.set_active(t, false);
        }
        if self.queue.borrow().is_empty()
            && let Some(lp) = self.lp.upgrade()
        {
            self.schedule_lost(&lp, None);
        }
    }

    fn is_closing(&self) -> bool {
        self.closing.get() || self.lost.get()
    }

    fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        match name {
            "sockname" => self.local.map(ExtraInfo::Addr),
            "peername" => self.remote.map(ExtraInfo::Addr),
            _ => None,
        }
    }
}

impl DatagramTransport for UdpTransport {
    fn sendto(&self, data: &[u8], addr: Option<SocketAddr>) -> Result<(), Error> {
        if self.closing.get() || self.lost.get() {
            return Err(Error::new(ErrorKind::InvalidState, "sendto: the transport is closing or closed"));
        }
        let addr = match (self.remote, addr) {
            (Some(r), Some(a)) if a != r => {
                return Err(Error::new(ErrorKind::InvalidInput, format!("Invalid address: must be None or {r}")));
            }
            (Some(_), _) => None,
            (None, None) => return Err(Error::new(ErrorKind::InvalidInput, "sendto: no address and not connected")),
            (None, Some(a)) => Some(a),
        };
        self.queue.borrow_mut().push_back((data.to_vec(), addr));
        self.queued.set(self.queued.get() + data.len());
        if self.queue.borrow().len() == 1
            && let Err(e) = self.flush_queue()
        {
            self.error_received(e);
        }
        if !self.queue.borrow().is_empty()
            && let Some(t) = self.write_token.get()
        {
            self.reactor.set_active(t, true);
        }
        Ok(())
    }

    fn abort(&self) {
        self.queue.borrow_mut().clear();
        self.queued.set(0);
        self.closing.set(true);
        if let Some(lp) = self.lp.upgrade() {
            self.schedule_lost(&lp, None);
        }
    }

    fn get_write_buffer_size(&self) -> usize {
        self.queued.get()
    }
}
