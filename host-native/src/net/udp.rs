//! Datagram endpoints: asyncio's `_SelectorDatagramTransport` and
//! `create_datagram_endpoint`, for UDP over IPv4 and IPv6.
//!
//! * `sendto` sends at once when nothing is queued; what the kernel refuses
//!   is queued (with asyncio's 8-byte per-datagram overhead counted against
//!   the water marks) and sent on the next writable edge.
//! * Errors of individual datagrams — an ICMP "port unreachable" reported
//!   as `ConnectionRefused` on a connected socket, an unreachable network —
//!   go to the protocol's `error_received`; the endpoint stays open.
//! * Reads are edge-triggered: up to 16 datagrams per callback, then the
//!   rest in the next iteration so one flood cannot starve the loop.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

use anyloop_core::net::{DatagramOptions, Family, SockAddr};
use anyloop_core::{
    BaseTransport, DatagramProtocol, DatagramTransport, Error, ErrorKind, EventLoop, ExtraInfo, Handle, LoopFuture,
    WaterMarks, WeakLoop,
};
use mio::{Interest, Token};
use socket2::Type;

use super::resolve::{SOCK_DGRAM, resolve};
use super::socket::{adopt, new_socket, with_addr};
use crate::reactor::{Dispatch, Reactor, Readiness};
use crate::util::{catch, report};

/// asyncio's `max_size` of a received datagram is 256 KiB; UDP carries at
/// most 64 KiB, so that is what the buffer holds.
const MAX_DATAGRAM: usize = 64 * 1024;
/// Datagrams received per callback before yielding.
const READS_PER_CALLBACK: usize = 16;
/// asyncio counts this per queued datagram.
const HEADER_SIZE: usize = 8;

type Proto = Rc<RefCell<dyn DatagramProtocol>>;

/// A UDP endpoint (asyncio's `DatagramTransport`).
pub(crate) struct UdpTransport {
    me: Weak<UdpTransport>,
    sock: RefCell<Option<mio::net::UdpSocket>>,
    token: Cell<Option<Token>>,
    reactor: Rc<Reactor>,
    lp: WeakLoop,
    protocol: RefCell<Option<Proto>>,
    handle: RefCell<Option<Handle>>,
    scheduled: Cell<bool>,
    pending: Cell<(bool, bool)>,
    made: Cell<bool>,
    closing: Cell<bool>,
    lost: Cell<bool>,
    maybe_readable: Cell<bool>,
    queue: RefCell<VecDeque<(Vec<u8>, Option<SocketAddr>)>>,
    queued: Cell<usize>,
    marks: RefCell<WaterMarks>,
    remote: Option<SocketAddr>,
    extra: Vec<(&'static str, ExtraInfo)>,
    rbuf: RefCell<Vec<u8>>,
}

impl UdpTransport {
    fn new(
        lp: &EventLoop,
        reactor: Rc<Reactor>,
        sock: mio::net::UdpSocket,
        protocol: Proto,
    ) -> Result<Rc<Self>, Error> {
        let remote = sock.peer_addr().ok();
        let mut extra = Vec::new();
        if let Some(a) = remote {
            extra.push(("peername", ExtraInfo::Addr(a)));
        }
        if let Ok(a) = sock.local_addr() {
            extra.push(("sockname", ExtraInfo::Addr(a)));
        }
        #[cfg(unix)]
        extra.push(("socket", ExtraInfo::Fd(std::os::fd::AsRawFd::as_raw_fd(&sock) as i64)));
        let t = Rc::new_cyclic(|me: &Weak<Self>| {
            let weak = me.clone();
            UdpTransport {
                me: me.clone(),
                sock: RefCell::new(Some(sock)),
                token: Cell::new(None),
                reactor,
                lp: lp.downgrade(),
                protocol: RefCell::new(Some(protocol)),
                handle: RefCell::new(Some(Handle::repeating(move |lp| {
                    if let Some(t) = weak.upgrade() {
                        t.on_events(lp);
                    }
                }))),
                scheduled: Cell::new(false),
                pending: Cell::new((false, false)),
                made: Cell::new(false),
                closing: Cell::new(false),
                lost: Cell::new(false),
                maybe_readable: Cell::new(false),
                queue: RefCell::new(VecDeque::new()),
                queued: Cell::new(0),
                marks: RefCell::new(WaterMarks::default()),
                remote,
                extra,
                rbuf: RefCell::new(Vec::new()),
            }
        });
        let target: Rc<dyn Dispatch> = t.clone();
        let token = {
            let mut s = t.sock.borrow_mut();
            let Some(s) = s.as_mut() else { return Err(Error::from_kind(ErrorKind::InvalidState)) };
            t.reactor
                .register(s, Interest::READABLE | Interest::WRITABLE, target)
                .map_err(|e| Error::from(e).context("cannot register socket"))?
        };
        t.token.set(Some(token));
        Ok(t)
    }

    fn protocol(&self) -> Option<Proto> {
        self.protocol.borrow().clone()
    }

    /// Calls the protocol; a panic is fatal for the endpoint.
    fn call(&self, lp: &EventLoop, what: &str, f: impl FnOnce(&mut dyn DatagramProtocol)) {
        let Some(p) = self.protocol() else { return };
        let r = catch(|| match p.try_borrow_mut() {
            Ok(mut p) => {
                f(&mut *p);
                Ok(())
            }
            Err(_) => Err(Error::new(ErrorKind::InvalidState, "the protocol is borrowed elsewhere")),
        })
        .and_then(|r| r);
        if let Err(e) = r {
            report(lp, &format!("Fatal error: protocol.{what}() call failed."), e.clone());
            self.force_close(lp, Some(e));
        }
    }

    /// `error_received`, now, or from the next iteration if the protocol is
    /// busy (an error of a `sendto` made inside one of its callbacks).
    fn error_received(&self, lp: &EventLoop, e: Error) {
        let busy = self.protocol().is_some_and(|p| p.try_borrow_mut().is_err());
        if !busy {
            return self.call(lp, "error_received", |p| p.error_received(e));
        }
        let Some(me) = self.me.upgrade() else { return };
        let _ = lp.call_soon(move |lp| {
            if !me.lost.get() {
                me.call(lp, "error_received", |p| p.error_received(e));
            }
        });
    }

    fn start(self: &Rc<Self>, waiter: LoopFuture<()>) {
        let Some(lp) = self.lp.upgrade() else { return };
        let me = self.clone();
        let r = lp.call_soon(move |lp| {
            if me.lost.get() {
                let _ = waiter.set_exception(Error::new(ErrorKind::ConnectionAborted, "endpoint closed"));
                return;
            }
            me.made.set(true);
            let t: Rc<dyn DatagramTransport> = me.clone();
            me.call(lp, "connection_made", |p| p.connection_made(t));
            if me.maybe_readable.get() {
                me.schedule(lp, true, false);
            }
            let _ = waiter.set_result(());
        });
        if r.is_err() {
            self.release();
        }
    }

    fn schedule(&self, lp: &EventLoop, read: bool, write: bool) {
        let (r, w) = self.pending.get();
        self.pending.set((r || read, w || write));
        if !self.scheduled.replace(true)
            && let Some(h) = self.handle.borrow().as_ref()
            && lp.schedule_handle(h).is_err()
        {
            self.scheduled.set(false);
        }
    }

    fn on_events(&self, lp: &EventLoop) {
        self.scheduled.set(false);
        let (read, write) = self.pending.replace((false, false));
        if write {
            self.on_writable(lp);
        }
        if read {
            self.on_readable(lp);
        }
    }

    fn reading(&self) -> bool {
        self.made.get() && !self.closing.get() && !self.lost.get()
    }

    fn on_readable(&self, lp: &EventLoop) {
        for _ in 0..READS_PER_CALLBACK {
            if !self.reading() {
                return;
            }
            let mut buf = self.rbuf.borrow_mut();
            if buf.len() < MAX_DATAGRAM {
                buf.resize(MAX_DATAGRAM, 0);
            }
            let r = match self.sock.borrow().as_ref() {
                Some(s) => s.recv_from(&mut buf),
                None => return,
            };
            match r {
                Ok((n, addr)) => {
                    let data = buf[..n].to_vec();
                    drop(buf);
                    self.call(lp, "datagram_received", |p| p.datagram_received(&data, addr));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.maybe_readable.set(false);
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    drop(buf);
                    self.error_received(lp, Error::from(e));
                }
            }
        }
        self.schedule(lp, true, false);
    }

    fn send_one(&self, data: &[u8], addr: Option<SocketAddr>) -> std::io::Result<usize> {
        let sock = self.sock.borrow();
        let Some(s) = sock.as_ref() else { return Err(std::io::ErrorKind::NotConnected.into()) };
        loop {
            let r = match addr {
                Some(a) if self.remote.is_none() => s.send_to(data, a),
                _ => s.send(data),
            };
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    fn on_writable(&self, lp: &EventLoop) {
        loop {
            let Some((data, addr)) = self.queue.borrow_mut().pop_front() else { break };
            match self.send_one(&data, addr) {
                Ok(_) => self.queued.set(self.queued.get() - data.len() - HEADER_SIZE),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.queue.borrow_mut().push_front((data, addr));
                    break;
                }
                Err(e) => {
                    self.queued.set(self.queued.get() - data.len() - HEADER_SIZE);
                    self.error_received(lp, Error::from(e));
                    return;
                }
            }
        }
        if self.marks.borrow_mut().should_resume(self.queued.get()) {
            self.call(lp, "resume_writing", |p| p.resume_writing());
        }
        if self.queue.borrow().is_empty() && self.closing.get() && !self.lost.get() {
            self.lost.set(true);
            self.schedule_lost(lp, None);
        }
    }

    fn force_close(&self, lp: &EventLoop, exc: Option<Error>) {
        if self.lost.get() {
            return;
        }
        self.queue.borrow_mut().clear();
        self.queued.set(0);
        self.closing.set(true);
        self.lost.set(true);
        self.schedule_lost(lp, exc);
    }

    fn schedule_lost(&self, lp: &EventLoop, exc: Option<Error>) {
        let Some(me) = self.me.upgrade() else { return };
        let r = lp.call_soon(move |lp| {
            if me.made.get() {
                me.call(lp, "connection_lost", |p| p.connection_lost(exc));
            }
            me.release();
        });
        if r.is_err() {
            self.release();
        }
    }

    fn release(&self) {
        let sock = self.sock.borrow_mut().take();
        if let (Some(mut s), Some(token)) = (sock, self.token.take()) {
            let _ = self.reactor.deregister(&mut s, token);
        }
        if let Some(h) = self.handle.borrow_mut().take() {
            h.cancel();
        }
        self.lost.set(true);
        self.closing.set(true);
        drop(self.protocol.borrow_mut().take());
    }
}

impl Dispatch for UdpTransport {
    fn ready(&self, lp: &EventLoop, r: Readiness) {
        let read = r.readable || r.error || r.read_closed;
        if read {
            self.maybe_readable.set(true);
        }
        let write = (r.writable || r.error) && !self.queue.borrow().is_empty();
        if (read && self.reading()) || write {
            self.schedule(lp, read && self.reading(), write);
        }
    }

    fn loop_closed(&self) {
        self.release();
    }
}

impl BaseTransport for UdpTransport {
    fn close(&self) {
        if self.closing.replace(true) || self.lost.get() {
            return;
        }
        if self.queue.borrow().is_empty()
            && let Some(lp) = self.lp.upgrade()
        {
            self.lost.set(true);
            self.schedule_lost(&lp, None);
        }
    }

    fn is_closing(&self) -> bool {
        self.closing.get()
    }

    fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.extra.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    }
}

impl DatagramTransport for UdpTransport {
    fn sendto(&self, data: &[u8], addr: Option<SocketAddr>) -> Result<(), Error> {
        if let (Some(a), Some(r)) = (addr, self.remote)
            && a != r
        {
            return Err(Error::new(ErrorKind::InvalidInput, format!("Invalid address: must be None or {r}")));
        }
        if addr.is_none() && self.remote.is_none() {
            return Err(Error::new(ErrorKind::InvalidInput, "an address is needed: the endpoint is not connected"));
        }
        if self.closing.get() || self.lost.get() {
            return Err(Error::new(ErrorKind::InvalidState, "the transport is closing or closed"));
        }
        let Some(lp) = self.lp.upgrade() else { return Err(Error::from_kind(ErrorKind::Closed)) };
        if self.queue.borrow().is_empty() {
            match self.send_one(data, addr) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.error_received(&lp, Error::from(e));
                    return Ok(());
                }
            }
        }
        self.queue.borrow_mut().push_back((data.to_vec(), addr));
        self.queued.set(self.queued.get() + data.len() + HEADER_SIZE);
        if self.marks.borrow_mut().should_pause(self.queued.get()) {
            self.call(&lp, "pause_writing", |p| p.pause_writing());
        }
        Ok(())
    }

    fn abort(&self) {
        if let Some(lp) = self.lp.upgrade() {
            self.force_close(&lp, None);
        }
    }

    fn get_write_buffer_size(&self) -> usize {
        self.queued.get()
    }
}

/// Resolves an endpoint address.
async fn resolve_one(lp: &EventLoop, a: &SockAddr, family: Family) -> Result<Vec<SocketAddr>, Error> {
    match a {
        SockAddr::Ip(a) => Ok(vec![*a]),
        SockAddr::Host(h, p) => resolve(lp, Some(h), *p, family, SOCK_DGRAM, 0).await,
        SockAddr::Unix(_) => Err(Error::unsupported("Unix datagram endpoints", "only UDP endpoints are implemented")),
    }
}

/// `create_datagram_endpoint`.
pub(crate) async fn create_datagram_endpoint(
    lp: EventLoop,
    reactor: Rc<Reactor>,
    protocol: Proto,
    opts: DatagramOptions,
) -> Result<Rc<dyn DatagramTransport>, Error> {
    let sock = if let Some(fd) = opts.sock {
        if opts.local_addr.is_some() || opts.remote_addr.is_some() || opts.reuse_port || opts.allow_broadcast {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "socket modifier keyword arguments can not be used when sock is specified",
            ));
        }
        let s = adopt(fd)?;
        if s.r#type().map_err(Error::from)? != Type::DGRAM {
            return Err(Error::new(ErrorKind::InvalidInput, format!("A datagram socket was expected, got fd {fd}")));
        }
        s
    } else {
        let local = match &opts.local_addr {
            Some(a) => resolve_one(&lp, a, opts.family).await?,
            None => Vec::new(),
        };
        let remote = match &opts.remote_addr {
            Some(a) => resolve_one(&lp, a, opts.family).await?,
            None => Vec::new(),
        };
        // Pick a (local, remote) pair of one family, as asyncio does.
        let (l, r) = match (local.first(), remote.first()) {
            (None, None) => {
                let any: SocketAddr = match opts.family {
                    Family::Inet => "0.0.0.0:0".parse().map_err(|_| Error::from_kind(ErrorKind::Other))?,
                    Family::Inet6 => "[::]:0".parse().map_err(|_| Error::from_kind(ErrorKind::Other))?,
                    _ => return Err(Error::new(ErrorKind::InvalidInput, "unexpected address family")),
                };
                (Some(any), None)
            }
            (Some(l), None) => (Some(*l), None),
            (None, Some(r)) => (None, Some(*r)),
            (Some(_), Some(_)) => {
                let pair =
                    remote.iter().find_map(|r| local.iter().find(|l| l.is_ipv4() == r.is_ipv4()).map(|l| (*l, *r)));
                let Some((l, r)) = pair else {
                    return Err(Error::new(ErrorKind::InvalidInput, "can not get address information"));
                };
                (Some(l), Some(r))
            }
        };
        let family_addr = l.or(r).ok_or_else(|| Error::new(ErrorKind::InvalidInput, "unexpected address family"))?;
        let s = new_socket(&family_addr, Type::DGRAM).map_err(Error::from)?;
        if opts.reuse_port {
            #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))))]
            s.set_reuse_port(true).map_err(Error::from)?;
            #[cfg(not(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin")))))]
            return Err(Error::unsupported("reuse_port", "SO_REUSEPORT is not available on this platform"));
        }
        if opts.allow_broadcast {
            s.set_broadcast(true).map_err(Error::from)?;
        }
        if let Some(l) = l {
            s.bind(&l.into()).map_err(|e| with_addr(e, "error while attempting to bind on address", l))?;
        }
        if let Some(r) = r {
            s.connect(&r.into()).map_err(|e| with_addr(e, "Connect call failed", r))?;
        }
        s
    };
    let sock = mio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock));
    let t = UdpTransport::new(&lp, reactor, sock, protocol)?;
    let waiter = lp.create_future::<()>();
    t.start(waiter.clone());
    waiter.await?;
    Ok(t)
}
