//! `create_connection`: resolving, connecting one address after the other
//! or racing them (RFC 8305 Happy Eyeballs, asyncio's `staggered_race`),
//! and wrapping the winner in a [`StreamTransport`].
//!
//! The race: attempt *i+1* starts when attempt *i* failed or
//! `happy_eyeballs_delay` passed, whichever comes first; the first socket to
//! connect wins and every other attempt is dropped (which closes its
//! socket). With no delay the addresses are tried strictly in turn.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use anyloop_core::net::ConnectOptions;
use anyloop_core::{Error, ErrorKind, EventLoop, StreamProtocol, Transport};
use mio::Interest;
use socket2::Type;

use super::resolve::{SOCK_STREAM, interleave, resolve};
use super::socket::{in_progress, new_socket, with_addr};
use crate::reactor::Reactor;
use crate::stream::{StreamIo, StreamTransport};
use crate::util::{sleep, wait_source};

/// Wraps a connected stream in a transport and waits until the protocol's
/// `connection_made` ran (asyncio's `waiter`). If this future is dropped
/// first (the caller was cancelled), the transport is aborted.
pub(crate) async fn start_transport<S: StreamIo>(
    lp: &EventLoop,
    reactor: &Rc<Reactor>,
    io: S,
    protocol: StreamProtocol,
) -> Result<Rc<dyn Transport>, Error> {
    struct AbortOnDrop(Option<Rc<dyn Transport>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(t) = self.0.take() {
                t.abort();
            }
        }
    }
    let t = StreamTransport::new(lp, reactor.clone(), io, protocol)?;
    let waiter = lp.create_future::<()>();
    t.start(Some(waiter.clone()));
    let t: Rc<dyn Transport> = t;
    let mut guard = AbortOnDrop(Some(t.clone()));
    waiter.await?;
    guard.0 = None;
    Ok(t)
}

/// Connects one non-blocking TCP socket to `addr` (bound to `local` first).
pub(crate) async fn connect_one(
    reactor: &Reactor,
    addr: SocketAddr,
    local: Option<SocketAddr>,
) -> Result<mio::net::TcpStream, Error> {
    let sock = new_socket(&addr, Type::STREAM).map_err(Error::from)?;
    if let Some(l) = local {
        sock.bind(&l.into()).map_err(|e| with_addr(e, "error while attempting to bind on address", l))?;
    }
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if in_progress(&e) => {}
        Err(e) => return Err(with_addr(e, "Connect call failed", addr)),
    }
    let mut stream = mio::net::TcpStream::from_std(std::net::TcpStream::from(sock));
    wait_source(reactor, &mut stream, Interest::WRITABLE).await?;
    if let Some(e) = stream.take_error().map_err(Error::from)? {
        return Err(with_addr(e, "Connect call failed", addr));
    }
    if let Err(e) = stream.peer_addr() {
        return Err(with_addr(e, "Connect call failed", addr));
    }
    Ok(stream)
}

/// asyncio's way of reporting several failed attempts.
pub(crate) fn combine(mut errors: Vec<Error>, all_errors: bool, what: &str) -> Error {
    if errors.len() == 1 {
        return errors.remove(0);
    }
    if errors.is_empty() {
        return Error::new(ErrorKind::Other, format!("{what} failed"));
    }
    let kind = errors[0].kind();
    if !all_errors && errors.iter().all(|e| e.to_string() == errors[0].to_string()) {
        return errors.remove(0);
    }
    let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    if all_errors {
        Error::new(kind, format!("{what} failed: [{}]", list.join("; ")))
    } else {
        Error::new(ErrorKind::Other, format!("Multiple exceptions: {}", list.join(", ")))
    }
}

/// Connects to the first of `addrs` that accepts, one by one or (with a
/// delay) racing them as RFC 8305 describes. Every error on failure.
pub(crate) async fn connect_addrs(
    lp: &EventLoop,
    reactor: &Rc<Reactor>,
    addrs: &[SocketAddr],
    local: Option<SocketAddr>,
    happy_eyeballs_delay: Option<Duration>,
) -> Result<mio::net::TcpStream, Vec<Error>> {
    let local_for = |a: &SocketAddr| -> Result<Option<SocketAddr>, Error> {
        match local {
            Some(l) if l.is_ipv4() != a.is_ipv4() => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("no matching local address with the family of {a} found (local_addr={l})"),
            )),
            other => Ok(other),
        }
    };
    let Some(delay) = happy_eyeballs_delay.filter(|_| addrs.len() > 1) else {
        let mut errors = Vec::new();
        for a in addrs {
            let r = match local_for(a) {
                Ok(l) => connect_one(reactor, *a, l).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(s) => return Ok(s),
                Err(e) => errors.push(e),
            }
        }
        return Err(errors);
    };

    type Attempt<'a> = Pin<Box<dyn Future<Output = Result<mio::net::TcpStream, Error>> + 'a>>;
    let start = |i: usize| -> Attempt<'_> {
        let a = addrs[i];
        Box::pin(async move { connect_one(reactor, a, local_for(&a)?).await })
    };
    let mut running: Vec<Attempt<'_>> = Vec::new();
    let mut errors: Vec<Error> = Vec::new();
    let mut next = 0;
    let mut timer: Option<Pin<Box<crate::util::Sleep>>> = None;
    let mut start_now = true;
    poll_fn(|cx| {
        loop {
            if let Some(t) = timer.as_mut()
                && t.as_mut().poll(cx).is_ready()
            {
                timer = None;
                start_now = true;
            }
            if start_now && next < addrs.len() {
                start_now = false;
                running.push(start(next));
                next += 1;
                timer = (next < addrs.len()).then(|| Box::pin(sleep(lp, delay)));
                continue; // poll the new timer and the new attempt
            }
            start_now = false;
            let mut i = 0;
            while i < running.len() {
                match running[i].as_mut().poll(cx) {
                    Poll::Ready(Ok(s)) => return Poll::Ready(Ok(s)),
                    Poll::Ready(Err(e)) => {
                        errors.push(e);
                        drop(running.remove(i));
                        start_now = true; // a failure starts the next attempt at once
                    }
                    Poll::Pending => i += 1,
                }
            }
            if running.is_empty() && next >= addrs.len() {
                return Poll::Ready(Err(std::mem::take(&mut errors)));
            }
            if !(start_now && next < addrs.len()) {
                return Poll::Pending;
            }
        }
    })
    .await
}

/// `create_connection` to addresses resolved already, in the order given
/// (no `interleave`): one by one, or raced with `opts.happy_eyeballs_delay`
/// as RFC 8305 describes. For callers that resolve names themselves.
///
/// ```no_run
/// # async fn f(lp: anyloop_core::EventLoop, p: anyloop_core::StreamProtocol) -> Result<(), anyloop_core::Error> {
/// use std::time::Duration;
/// let addrs = ["[::1]:8888".parse().unwrap(), "127.0.0.1:8888".parse().unwrap()];
/// let opts = anyloop_core::net::ConnectOptions { happy_eyeballs_delay: Some(Duration::from_millis(250)), ..Default::default() };
/// let transport = anyloop_native::net::connect::create_connection_to(&lp, p, &addrs, opts).await?;
/// # Ok(()) }
/// ```
pub async fn create_connection_to(
    lp: &EventLoop,
    protocol: StreamProtocol,
    addrs: &[SocketAddr],
    opts: ConnectOptions,
) -> Result<Rc<dyn Transport>, Error> {
    let reactor = lp
        .host::<crate::NativeHost>()
        .map(|h| h.reactor().clone())
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "the loop does not run on the native host"))?;
    let stream = connect_addrs(lp, &reactor, addrs, opts.local_addr, opts.happy_eyeballs_delay)
        .await
        .map_err(|errors| combine(errors, opts.all_errors, "create_connection"))?;
    if opts.nodelay {
        stream.set_nodelay(true).map_err(Error::from)?;
    }
    start_transport(lp, &reactor, stream, protocol).await
}

/// `create_connection`.
pub(crate) async fn create_connection(
    lp: EventLoop,
    reactor: Rc<Reactor>,
    protocol: StreamProtocol,
    host: Option<String>,
    port: Option<u16>,
    opts: ConnectOptions,
) -> Result<Rc<dyn Transport>, Error> {
    let stream = if let Some(fd) = opts.sock {
        if host.is_some() || port.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "host/port and sock can not be specified at the same time",
            ));
        }
        let s = super::socket::adopt(fd)?;
        if s.r#type().map_err(Error::from)? != Type::STREAM {
            return Err(Error::new(ErrorKind::InvalidInput, format!("A Stream Socket was expected, got fd {fd}")));
        }
        if s.local_addr().map_err(Error::from)?.as_socket().is_none() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "create_connection() needs a TCP socket; use create_unix_connection()",
            ));
        }
        mio::net::TcpStream::from_std(std::net::TcpStream::from(s))
    } else {
        let (Some(host), Some(port)) = (host, port) else {
            return Err(Error::new(ErrorKind::InvalidInput, "host and port was not specified and no sock specified"));
        };
        let mut addrs = resolve(&lp, Some(&host), port, opts.family, SOCK_STREAM, 0).await?;
        let interleave_n = opts.interleave.or(opts.happy_eyeballs_delay.map(|_| 1));
        if let Some(n) = interleave_n.filter(|n| *n > 0) {
            addrs = interleave(addrs, n);
        }
        connect_addrs(&lp, &reactor, &addrs, opts.local_addr, opts.happy_eyeballs_delay)
            .await
            .map_err(|errors| combine(errors, opts.all_errors, "create_connection"))?
    };
    if opts.nodelay {
        stream.set_nodelay(true).map_err(Error::from)?;
    }
    start_transport(&lp, &reactor, stream, protocol).await
}
