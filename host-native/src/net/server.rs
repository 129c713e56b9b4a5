//! Servers: listening sockets, the accept loop, and asyncio's `Server`
//! bookkeeping (serving state, active connections, `wait_closed`).
//!
//! * Sockets are bound when the server is made and `listen()`ed when it
//!   starts serving, as asyncio does, so `start_serving=false` refuses
//!   connections until `start_serving()`.
//! * Listeners are edge-triggered: one readable event accepts until
//!   `WouldBlock`, at most `backlog` connections per callback (then it
//!   continues in the next iteration, so accepting cannot starve I/O).
//! * Out of descriptors (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): the error
//!   goes to the exception handler and the listener stops accepting for one
//!   second (asyncio's `ACCEPT_RETRY_DELAY`) — the pending connection stays
//!   in the backlog, so retrying at once would spin.
//! * `wait_closed` resolves once the server is closed *and* every connection
//!   it accepted is gone (asyncio 3.12+).
//! * Listeners keep their server alive while registered, as asyncio's
//!   selector does: a server serves until `close()` (or the loop's close),
//!   whether or not the caller kept the `Server`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use anyloop_core::backend::{IoFuture, StreamProtocolFactory};
use anyloop_core::net::{Addr, ServerBackend};
use anyloop_core::{Error, ErrorKind, EventLoop, ExceptionContext, Handle, LoopFuture, RawFd, Transport, WeakLoop};
use mio::{Interest, Token};

use crate::reactor::{Dispatch, Reactor, Readiness};
use crate::stream::StreamTransport;
use crate::util::catch;

/// asyncio's `ACCEPT_RETRY_DELAY`.
pub(crate) const ACCEPT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// A listening socket of either family.
pub(crate) enum ListenSock {
    /// TCP.
    Tcp(mio::net::TcpListener),
    /// Unix domain.
    #[cfg(unix)]
    Unix(mio::net::UnixListener),
}

impl ListenSock {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            ListenSock::Tcp(l) => l,
            #[cfg(unix)]
            ListenSock::Unix(l) => l,
        }
    }

    fn listen(&self, backlog: u32) -> std::io::Result<()> {
        let backlog = backlog.min(i32::MAX as u32) as i32;
        match self {
            ListenSock::Tcp(l) => socket2::SockRef::from(l).listen(backlog),
            #[cfg(unix)]
            ListenSock::Unix(l) => socket2::SockRef::from(l).listen(backlog),
        }
    }

    fn raw_fd(&self) -> Option<RawFd> {
        match self {
            #[cfg(unix)]
            ListenSock::Tcp(l) => Some(std::os::fd::AsRawFd::as_raw_fd(l)),
            #[cfg(not(unix))]
            ListenSock::Tcp(_) => None,
            #[cfg(unix)]
            ListenSock::Unix(l) => Some(std::os::fd::AsRawFd::as_raw_fd(l)),
        }
    }
}

/// Whether an accept error means "out of resources" (back off, don't spin).
fn out_of_resources(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    if let Some(code) = e.raw_os_error() {
        return [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM].contains(&code);
    }
    let _ = e;
    false
}

/// One listening socket, registered with the reactor while serving.
struct Listener {
    sock: RefCell<Option<ListenSock>>,
    addr: Addr,
    fd: Option<RawFd>,
    token: Cell<Option<Token>>,
    server: RefCell<Option<Rc<ServerCore>>>,
    handle: Handle,
    scheduled: Cell<bool>,
    backing_off: Cell<bool>,
}

impl Dispatch for Listener {
    fn ready(&self, lp: &EventLoop, _r: Readiness) {
        self.schedule(lp);
    }

    fn loop_closed(&self) {
        let server = self.server.borrow().clone();
        if let Some(s) = server {
            s.close();
        }
    }
}

impl Listener {
    fn schedule(&self, lp: &EventLoop) {
        if !self.backing_off.get() && !self.scheduled.replace(true) && lp.schedule_handle(&self.handle).is_err() {
            self.scheduled.set(false);
        }
    }

    fn accept_ready(self: &Rc<Self>, lp: &EventLoop) {
        self.scheduled.set(false);
        let Some(server) = self.server.borrow().clone() else { return };
        if !server.serving.get() || self.backing_off.get() {
            return;
        }
        for _ in 0..server.backlog.max(1) {
            let accepted = {
                let sock = self.sock.borrow();
                let Some(sock) = sock.as_ref() else { return };
                match sock {
                    ListenSock::Tcp(l) => l.accept().map(|(s, _)| Accepted::Tcp(s)),
                    #[cfg(unix)]
                    ListenSock::Unix(l) => l.accept().map(|(s, _)| Accepted::Unix(s)),
                }
            };
            match accepted {
                Ok(conn) => server.new_connection(lp, conn),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::Interrupted | std::io::ErrorKind::ConnectionAborted) => {}
                Err(e) if out_of_resources(&e) => {
                    let mut ctx = ExceptionContext::new("socket.accept() out of system resource");
                    ctx.exception = Some(Error::from(e));
                    ctx.socket = Some(self.addr.to_string());
                    lp.call_exception_handler(&ctx);
                    self.backing_off.set(true);
                    let me = Rc::downgrade(self);
                    let _ = lp.call_later(ACCEPT_RETRY_DELAY, move |lp| {
                        if let Some(me) = me.upgrade() {
                            me.backing_off.set(false);
                            // Edge-triggered: the waiting connections raise no
                            // new event, so look at the backlog now.
                            me.schedule(lp);
                        }
                    });
                    return;
                }
                Err(e) => {
                    let mut ctx = ExceptionContext::new("Error on accept()");
                    ctx.exception = Some(Error::from(e));
                    ctx.socket = Some(self.addr.to_string());
                    lp.call_exception_handler(&ctx);
                    return;
                }
            }
        }
        // `backlog` connections accepted: more may wait; continue next iteration.
        self.schedule(lp);
    }

    fn register(self: &Rc<Self>, reactor: &Reactor, backlog: u32) -> Result<(), Error> {
        if self.token.get().is_some() {
            return Ok(());
        }
        let mut sock = self.sock.borrow_mut();
        let Some(sock) = sock.as_mut() else { return Err(closed()) };
        sock.listen(backlog).map_err(|e| Error::from(e).context(format!("listen() failed on {}", self.addr)))?;
        let target: Rc<dyn Dispatch> = self.clone();
        let token = reactor
            .register(&mut SourceOf(sock.source()), Interest::READABLE, target)
            .map_err(|e| Error::from(e).context("cannot register the listening socket"))?;
        self.token.set(Some(token));
        Ok(())
    }

    fn close(&self, reactor: &Reactor) {
        let sock = self.sock.borrow_mut().take();
        if let (Some(mut sock), Some(token)) = (sock, self.token.take()) {
            let _ = reactor.deregister(&mut SourceOf(sock.source()), token);
        }
        self.handle.cancel();
        drop(self.server.borrow_mut().take());
    }
}

/// Adapts `&mut dyn Source` to the reactor's `impl Source` parameters.
struct SourceOf<'a>(&'a mut dyn mio::event::Source);

impl mio::event::Source for SourceOf<'_> {
    fn register(&mut self, r: &mio::Registry, t: Token, i: Interest) -> std::io::Result<()> {
        self.0.register(r, t, i)
    }
    fn reregister(&mut self, r: &mio::Registry, t: Token, i: Interest) -> std::io::Result<()> {
        self.0.reregister(r, t, i)
    }
    fn deregister(&mut self, r: &mio::Registry) -> std::io::Result<()> {
        self.0.deregister(r)
    }
}

/// An accepted connection.
pub(crate) enum Accepted {
    Tcp(mio::net::TcpStream),
    #[cfg(unix)]
    Unix(mio::net::UnixStream),
}

fn closed() -> Error {
    Error::new(ErrorKind::InvalidState, "the server is closed")
}

/// What happens to the path of a Unix server's socket on close.
#[cfg(unix)]
pub(crate) struct UnixCleanup {
    pub(crate) path: std::path::PathBuf,
    /// (device, inode) when bound: only that file is removed.
    pub(crate) id: (u64, u64),
}

/// A server's state, shared by its listeners, its connections and the
/// user's [`Server`](anyloop_core::net::Server).
pub(crate) struct ServerCore {
    me: Weak<ServerCore>,
    lp: WeakLoop,
    reactor: Rc<Reactor>,
    factory: StreamProtocolFactory,
    listeners: RefCell<Vec<Rc<Listener>>>,
    serving: Cell<bool>,
    closed: Cell<bool>,
    backlog: u32,
    keep_alive: bool,
    clients: RefCell<HashMap<u64, Weak<dyn Transport>>>,
    next_id: Cell<u64>,
    waiters: RefCell<Vec<LoopFuture<()>>>,
    #[cfg(unix)]
    cleanup: RefCell<Option<UnixCleanup>>,
}

impl ServerCore {
    /// A server over bound (not yet listening) sockets.
    pub(crate) fn new(
        lp: &EventLoop,
        reactor: Rc<Reactor>,
        factory: StreamProtocolFactory,
        socks: Vec<(ListenSock, Addr)>,
        backlog: u32,
        keep_alive: bool,
    ) -> Rc<ServerCore> {
        Rc::new_cyclic(|me: &Weak<ServerCore>| {
            let listeners = socks
                .into_iter()
                .map(|(sock, addr)| {
                    Rc::new_cyclic(|lw: &Weak<Listener>| {
                        let lw = lw.clone();
                        let handle = Handle::repeating(move |lp| {
                            if let Some(l) = lw.upgrade() {
                                l.accept_ready(lp);
                            }
                        });
                        Listener {
                            fd: sock.raw_fd(),
                            sock: RefCell::new(Some(sock)),
                            addr,
                            token: Cell::new(None),
                            server: RefCell::new(None),
                            handle,
                            scheduled: Cell::new(false),
                            backing_off: Cell::new(false),
                        }
                    })
                })
                .collect();
            ServerCore {
                me: me.clone(),
                lp: lp.downgrade(),
                reactor,
                factory,
                listeners: RefCell::new(listeners),
                serving: Cell::new(false),
                closed: Cell::new(false),
                backlog,
                keep_alive,
                clients: RefCell::new(HashMap::new()),
                next_id: Cell::new(0),
                waiters: RefCell::new(Vec::new()),
                #[cfg(unix)]
                cleanup: RefCell::new(None),
            }
        })
    }

    /// Remembers the socket file to remove on close.
    #[cfg(unix)]
    pub(crate) fn set_cleanup(&self, c: UnixCleanup) {
        *self.cleanup.borrow_mut() = Some(c);
    }

    fn new_connection(&self, lp: &EventLoop, conn: Accepted) {
        let protocol = match catch(|| (self.factory)()) {
            Ok(p) => p,
            Err(e) => {
                crate::util::report(lp, "Error on transport creation for incoming connection", e);
                return;
            }
        };
        let made: Result<Rc<dyn Transport>, Error> = match conn {
            Accepted::Tcp(s) => {
                // asyncio sets TCP_NODELAY on every TCP transport.
                let _ = s.set_nodelay(true);
                // No per-send MSG_NOSIGNAL on Apple systems: the socket says it.
                #[cfg(any(target_os = "macos", target_os = "ios"))]
                let _ = socket2::SockRef::from(&s).set_nosigpipe(true);
                if self.keep_alive {
                    let _ = socket2::SockRef::from(&s).set_keepalive(true);
                }
                self.attach(lp, s, protocol)
            }
            #[cfg(unix)]
            Accepted::Unix(s) => {
                #[cfg(any(target_os = "macos", target_os = "ios"))]
                let _ = socket2::SockRef::from(&s).set_nosigpipe(true);
                self.attach(lp, s, protocol)
            }
        };
        if let Err(e) = made {
            crate::util::report(lp, "Error on transport creation for incoming connection", e);
        }
    }

    fn attach<S: crate::stream::StreamIo>(
        &self,
        lp: &EventLoop,
        io: S,
        protocol: anyloop_core::StreamProtocol,
    ) -> Result<Rc<dyn Transport>, Error> {
        let t = StreamTransport::new(lp, self.reactor.clone(), io, protocol)?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let weak: Weak<dyn Transport> = Rc::downgrade(&t) as Weak<StreamTransport<S>>;
        self.clients.borrow_mut().insert(id, weak);
        let me = self.me.clone();
        t.set_on_lost(Box::new(move || {
            if let Some(s) = me.upgrade() {
                s.detach(id);
            }
        }));
        t.start(None);
        Ok(t)
    }

    fn detach(&self, id: u64) {
        let now_empty = {
            let mut c = self.clients.borrow_mut();
            c.remove(&id);
            c.is_empty()
        };
        if now_empty && self.closed.get() {
            self.wakeup();
        }
    }

    fn wakeup(&self) {
        for w in std::mem::take(&mut *self.waiters.borrow_mut()) {
            let _ = w.set_result(());
        }
    }

    fn start_serving(&self) -> Result<(), Error> {
        if self.closed.get() {
            return Err(closed());
        }
        if self.serving.replace(true) {
            return Ok(());
        }
        let Some(me) = self.me.upgrade() else { return Err(closed()) };
        for l in self.listeners.borrow().iter() {
            *l.server.borrow_mut() = Some(me.clone());
            if let Err(e) = l.register(&self.reactor, self.backlog) {
                self.serving.set(false);
                return Err(e);
            }
        }
        Ok(())
    }

    fn close(&self) {
        if self.closed.replace(true) {
            return;
        }
        self.serving.set(false);
        let listeners = std::mem::take(&mut *self.listeners.borrow_mut());
        for l in listeners {
            l.close(&self.reactor);
        }
        #[cfg(unix)]
        if let Some(c) = self.cleanup.borrow_mut().take() {
            use std::os::unix::fs::MetadataExt;
            if let Ok(m) = std::fs::metadata(&c.path)
                && (m.dev(), m.ino()) == c.id
            {
                let _ = std::fs::remove_file(&c.path);
            }
        }
        if self.clients.borrow().is_empty() {
            self.wakeup();
        }
    }

    fn clients(&self) -> Vec<Rc<dyn Transport>> {
        self.clients.borrow().values().filter_map(Weak::upgrade).collect()
    }
}

/// The [`ServerBackend`] users reach through `Server`.
pub(crate) struct NativeServer(pub(crate) Rc<ServerCore>);

impl ServerBackend for NativeServer {
    fn close(&self) {
        self.0.close()
    }

    fn is_serving(&self) -> bool {
        self.0.serving.get()
    }

    fn start_serving(&self) -> Result<(), Error> {
        self.0.start_serving()
    }

    fn sockets(&self) -> Vec<Addr> {
        self.0.listeners.borrow().iter().map(|l| l.addr.clone()).collect()
    }

    fn fds(&self) -> Vec<RawFd> {
        self.0.listeners.borrow().iter().filter_map(|l| l.fd).collect()
    }

    fn wait_closed(&self) -> IoFuture<'static, ()> {
        let core = self.0.clone();
        Box::pin(async move {
            if core.closed.get() && core.clients.borrow().is_empty() {
                return Ok(());
            }
            let Some(lp) = core.lp.upgrade() else { return Ok(()) };
            let w = lp.create_future::<()>();
            core.waiters.borrow_mut().push(w.clone());
            w.await
        })
    }

    fn close_clients(&self) {
        for t in self.0.clients() {
            t.close();
        }
    }

    fn abort_clients(&self) {
        for t in self.0.clients() {
            t.abort();
        }
    }
}

impl Drop for NativeServer {
    fn drop(&mut self) {
        // A server that never started serving has no listener holding it;
        // close its sockets with the last user handle.
        if !self.0.serving.get() && Rc::strong_count(&self.0) == 1 {
            self.0.close();
        }
    }
}
