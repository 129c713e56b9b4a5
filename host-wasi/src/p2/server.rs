//! TCP servers on `wasi:sockets/tcp`: `create_server` and the core's
//! [`ServerBackend`].
//!
//! Each listening socket is one registration whose handle accepts every
//! pending connection (until `would-block`) and starts a transport for
//! each, with a fresh protocol from the factory — asyncio's
//! `_accept_connection`. The server counts its live connections so
//! `wait_closed` resolves only once it is closed *and* they are gone.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

use anyloop_core::backend::{IoFuture, StreamProtocolFactory, failed};
use anyloop_core::net::{Addr, Server, ServerBackend, ServerOptions};
use anyloop_core::{
    BaseTransport, Error, ErrorKind, EventLoop, ExceptionContext, Handle, LoopFuture, WeakLoop, WriteTransport,
};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;

use super::tcp::{Connected, parts};
use crate::reactor::{Reactor, Source, Token};
use crate::ready::readiness;
use crate::stream::StreamTransport;

struct Listener {
    token: Option<Token>,
    socket: TcpSocket,
    addr: SocketAddr,
}

struct Inner {
    me: Weak<Inner>,
    lp: WeakLoop,
    reactor: Rc<Reactor>,
    factory: StreamProtocolFactory,
    listeners: RefCell<Vec<Listener>>,
    serving: Cell<bool>,
    closed: Cell<bool>,
    clients: RefCell<Vec<Weak<StreamTransport>>>,
    waiters: RefCell<Vec<LoopFuture<()>>>,
}

/// Binds and listens on one address.
async fn listen(reactor: &Rc<Reactor>, addr: SocketAddr, backlog: u32) -> Result<TcpSocket, Error> {
    let what = format!("could not bind on address {addr}");
    let mut socket = create_tcp_socket(super::family_of(&addr)).map_err(|c| super::code_error(c, &what))?;
    let network = instance_network();
    socket.start_bind(&network, super::to_wasi(addr)).map_err(|c| super::code_error(c, &what))?;
    loop {
        match socket.finish_bind() {
            Ok(()) => break,
            Err(ErrorCode::WouldBlock) => {
                socket = readiness(reactor, socket, |s| Source::Pollable(s.subscribe())).await
            }
            Err(c) => return Err(super::code_error(c, &what)),
        }
    }
    // Not every runtime lets the backlog be set; the default then stands.
    let _ = socket.set_listen_backlog_size(u64::from(backlog.max(1)));
    let what = format!("could not listen on address {addr}");
    socket.start_listen().map_err(|c| super::code_error(c, &what))?;
    loop {
        match socket.finish_listen() {
            Ok(()) => break,
            Err(ErrorCode::WouldBlock) => {
                socket = readiness(reactor, socket, |s| Source::Pollable(s.subscribe())).await
            }
            Err(c) => return Err(super::code_error(c, &what)),
        }
    }
    Ok(socket)
}

/// asyncio's `create_server` on wasip2.
pub(crate) async fn create_server(
    lp: EventLoop,
    reactor: Rc<Reactor>,
    factory: StreamProtocolFactory,
    hosts: Vec<String>,
    port: Option<u16>,
    opts: ServerOptions,
) -> Result<Server, Error> {
    if opts.sock.is_some() {
        return Err(Error::unsupported("create_server(sock=…)", super::net::NO_FDS));
    }
    let port = port.unwrap_or(0);
    let hosts = if hosts.is_empty() { vec!["0.0.0.0".to_string(), "::".to_string()] } else { hosts };
    let mut addrs = Vec::new();
    for h in &hosts {
        for a in super::dns::resolve_addrs(&reactor, h, port, opts.family).await? {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
    }
    let mut listeners = Vec::new();
    for addr in addrs {
        let socket = listen(&reactor, addr, opts.backlog).await?;
        let bound = socket.local_address().map(super::from_wasi).unwrap_or(addr);
        listeners.push(Listener { token: None, socket, addr: bound });
    }
    let inner = Rc::new_cyclic(|me| Inner {
        me: me.clone(),
        lp: lp.downgrade(),
        reactor: reactor.clone(),
        factory,
        listeners: RefCell::new(listeners),
        serving: Cell::new(false),
        closed: Cell::new(false),
        clients: RefCell::new(Vec::new()),
        waiters: RefCell::new(Vec::new()),
    });
    inner.register();
    if opts.start_serving {
        inner.start_serving()?;
    }
    Ok(Server::new(&lp, inner))
}

impl Inner {
    fn register(&self) {
        let mut listeners = self.listeners.borrow_mut();
        for (i, l) in listeners.iter_mut().enumerate() {
            // The registration keeps the server alive while it listens, as
            // asyncio's loop keeps a serving server; `close` lets go.
            let Some(me) = self.me.upgrade() else { return };
            let h = Handle::repeating(move |lp| me.accept(lp, i));
            l.token = Some(self.reactor.register(Source::Pollable(l.socket.subscribe()), h, false));
        }
    }

    /// Accepts every pending connection of listener `i`.
    fn accept(&self, lp: &EventLoop, i: usize) {
        loop {
            if self.closed.get() {
                return;
            }
            let accepted = {
                let listeners = self.listeners.borrow();
                let Some(l) = listeners.get(i) else { return };
                l.socket.accept()
            };
            match accepted {
                Ok((socket, input, output)) => self.start_client(lp, Connected { socket, input, output }),
                Err(ErrorCode::WouldBlock) => return,
                Err(c) => {
                    let mut ctx = ExceptionContext::new("socket.accept() failed");
                    ctx.exception = Some(super::code_error(c, "accept failed"));
                    ctx.socket = self.listeners.borrow().get(i).map(|l| l.addr.to_string());
                    lp.call_exception_handler(&ctx);
                    return;
                }
            }
        }
    }

    fn start_client(&self, lp: &EventLoop, c: Connected) {
        let me = self.me.clone();
        let on_lost: Box<dyn FnOnce()> = Box::new(move || {
            if let Some(s) = me.upgrade() {
                s.detach();
            }
        });
        let protocol = (self.factory)();
        match StreamTransport::start(lp, &self.reactor, protocol, parts(c, Some(on_lost)), |_, _| {}) {
            Ok(t) => self.clients.borrow_mut().push(Rc::downgrade(&t)),
            Err(e) => {
                let mut ctx = ExceptionContext::new("Error on transport creation for incoming connection");
                ctx.exception = Some(e);
                lp.call_exception_handler(&ctx);
            }
        }
    }

    /// A client's connection is gone.
    fn detach(&self) {
        self.clients.borrow_mut().retain(|c| c.upgrade().is_some_and(|t| !t.is_gone()));
        self.wake_waiters();
    }

    fn live_clients(&self) -> Vec<Rc<StreamTransport>> {
        self.clients.borrow().iter().filter_map(Weak::upgrade).filter(|t| !t.is_gone()).collect()
    }

    fn wake_waiters(&self) {
        if self.closed.get() && self.live_clients().is_empty() {
            for w in self.waiters.borrow_mut().drain(..) {
                let _ = w.set_result(());
            }
        }
    }

    fn start_serving(&self) -> Result<(), Error> {
        if self.closed.get() {
            return Err(Error::new(ErrorKind::InvalidState, "server is closed"));
        }
        self.serving.set(true);
        for l in self.listeners.borrow().iter() {
            if let Some(t) = l.token {
                self.reactor.set_active(t, true);
            }
        }
        Ok(())
    }
}

impl ServerBackend for Inner {
    fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        self.serving.set(false);
        let listeners = std::mem::take(&mut *self.listeners.borrow_mut());
        for mut l in listeners {
            if let Some(t) = l.token.take() {
                self.reactor.deregister(t);
            }
            drop(l);
        }
        self.wake_waiters();
    }

    fn is_serving(&self) -> bool {
        self.serving.get() && !self.closed.get()
    }

    fn start_serving(&self) -> Result<(), Error> {
        Inner::start_serving(self)
    }

    fn sockets(&self) -> Vec<Addr> {
        self.listeners.borrow().iter().map(|l| Addr::Ip(l.addr)).collect()
    }

    fn wait_closed(&self) -> IoFuture<'static, ()> {
        if self.closed.get() && self.live_clients().is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let Some(lp) = self.lp.upgrade() else {
            return failed(Error::from_kind(ErrorKind::Closed));
        };
        let fut = lp.create_future::<()>();
        self.waiters.borrow_mut().push(fut.clone());
        Box::pin(fut)
    }

    fn close_clients(&self) {
        for t in self.live_clients() {
            t.close();
        }
    }

    fn abort_clients(&self) {
        for t in self.live_clients() {
            t.abort();
        }
    }
}
