//! The TLS hook: what asyncio's `ssl=` arguments and `start_tls` take.
//!
//! Core has no TLS stack of its own — it is `no_std` and free of C build
//! scripts. A TLS crate implements [`TlsContext`] (anyloop's is
//! `anyloop::tls::TlsConfig`, on rustls, behind the facade's `tls`
//! feature), and core wires it into the connection methods the same way on
//! every host, over whatever stream transport the host makes:
//!
//! * `create_connection`, `create_unix_connection` and
//!   `connect_accepted_socket` with [`ConnectOptions::ssl`] set: the host
//!   connects as usual, but the raw transport's protocol is the TLS
//!   session's ([`TlsContext::start`]); the call returns once the handshake
//!   completed, with the TLS transport, after the application protocol's
//!   `connection_made`. A failed handshake closes the connection and is the
//!   call's error; so is a handshake longer than `ssl_handshake_timeout`.
//! * `create_server` and `create_unix_server` with [`ServerOptions::ssl`]:
//!   every accepted connection runs a server-side session; the application
//!   protocol sees `connection_made` only after a successful handshake
//!   (failures are logged in debug mode, as asyncio does).
//! * [`EventLoop::start_tls`] upgrades a live connection (STARTTLS).
//!
//! [`ConnectOptions::ssl`]: crate::net::ConnectOptions::ssl
//! [`ServerOptions::ssl`]: crate::net::ServerOptions::ssl

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::backend::StreamProtocolFactory;
use crate::net::{ConnectOptions, ServerOptions};
use crate::{Error, ErrorKind, EventLoop, LoopFuture, ProtocolSlot, StreamProtocol, Transport};

/// asyncio's default `ssl_handshake_timeout`: 60 s.
pub const DEFAULT_SSL_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);
/// asyncio's default `ssl_shutdown_timeout`: 30 s.
pub const DEFAULT_SSL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// A TLS configuration the loop can run connections through (what `ssl=`
/// takes; asyncio's `SSLContext`). Implemented by a TLS crate.
pub trait TlsContext: fmt::Debug {
    /// Whether this configuration can play the client (`server_side`
    /// false) or the server side; `InvalidInput` naming the mismatch if not.
    fn check(&self, server_side: bool) -> Result<(), Error>;

    /// Starts a TLS session for the application `protocol` and returns the
    /// protocol to give the raw (ciphertext) transport. The session starts
    /// its handshake in that protocol's `connection_made`, and then:
    ///
    /// * on success, calls the application's `connection_made` with the
    ///   TLS transport (unless [`TlsParams::call_connection_made`] is
    ///   false) and sets `waiter`'s result to that transport;
    /// * on failure or timeout, closes the raw transport and sets `waiter`'s
    ///   error; the application protocol hears nothing.
    ///
    /// Errors that happen before the handshake starts (a bad server name…)
    /// are reported the same way, through `waiter`.
    fn start(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        params: TlsParams,
        waiter: Option<LoopFuture<Rc<dyn Transport>>>,
    ) -> StreamProtocol;
}

/// The per-connection parameters of a TLS session.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsParams {
    /// Play the server side of the handshake.
    pub server_side: bool,
    /// Client side: the name the server's certificate must match (also sent
    /// as SNI). `Some("")` disables the name check (asyncio's
    /// `server_hostname=''`): the chain is still verified.
    pub server_hostname: Option<String>,
    /// How long the handshake may take before the connection is aborted.
    pub handshake_timeout: Duration,
    /// How long the closing handshake may take before the connection is
    /// aborted.
    pub shutdown_timeout: Duration,
    /// Whether the application protocol gets `connection_made` (false for
    /// `start_tls`: the caller switches to the returned transport).
    pub call_connection_made: bool,
    /// Ciphertext already received on the raw connection (bytes read past a
    /// STARTTLS line), processed before anything the transport delivers.
    pub initial_data: Vec<u8>,
}

impl TlsParams {
    fn new(server_side: bool, server_hostname: Option<String>) -> TlsParams {
        TlsParams {
            server_side,
            server_hostname,
            handshake_timeout: DEFAULT_SSL_HANDSHAKE_TIMEOUT,
            shutdown_timeout: DEFAULT_SSL_SHUTDOWN_TIMEOUT,
            call_connection_made: true,
            initial_data: Vec::new(),
        }
    }
}

/// Options of [`EventLoop::start_tls`] (asyncio's keyword arguments).
#[derive(Clone, Debug, Default)]
pub struct StartTlsOptions {
    /// Upgrade the server side of the connection.
    pub server_side: bool,
    /// The name the server's certificate must match (client side; required).
    pub server_hostname: Option<String>,
    /// Default: [`DEFAULT_SSL_HANDSHAKE_TIMEOUT`].
    pub ssl_handshake_timeout: Option<Duration>,
    /// Default: [`DEFAULT_SSL_SHUTDOWN_TIMEOUT`].
    pub ssl_shutdown_timeout: Option<Duration>,
    /// Bytes the old protocol already received after the upgrade point (e.g.
    /// a ClientHello that arrived in the same read as the STARTTLS line):
    /// they are the start of the TLS stream. Nothing is lost that way.
    pub initial_data: Vec<u8>,
}

fn only_with_ssl(what: &str) -> Error {
    Error::new(ErrorKind::InvalidInput, alloc::format!("{what} is only meaningful with ssl"))
}

fn timeout_or(t: Option<Duration>, default: Duration, what: &str) -> Result<Duration, Error> {
    match t {
        None => Ok(default),
        Some(d) if d.is_zero() => {
            Err(Error::new(ErrorKind::InvalidInput, alloc::format!("{what} should be a positive number, got {d:?}")))
        }
        Some(d) => Ok(d),
    }
}

/// The TLS configuration and parameters of one connection.
pub(crate) type ConnectTls = (Rc<dyn TlsContext>, TlsParams);

/// Takes the TLS part of connection options: `None` without `ssl`.
/// `host` is the default server name (asyncio: the `host` argument).
pub(crate) fn take_connect(
    opts: &mut ConnectOptions,
    host: Option<&str>,
    server_side: bool,
) -> Result<Option<ConnectTls>, Error> {
    let Some(ctx) = opts.ssl.take() else {
        if opts.server_hostname.is_some() {
            return Err(only_with_ssl("server_hostname"));
        }
        if opts.ssl_handshake_timeout.is_some() {
            return Err(only_with_ssl("ssl_handshake_timeout"));
        }
        if opts.ssl_shutdown_timeout.is_some() {
            return Err(only_with_ssl("ssl_shutdown_timeout"));
        }
        return Ok(None);
    };
    ctx.check(server_side)?;
    let server_hostname = match (server_side, opts.server_hostname.take()) {
        (true, Some(_)) => {
            return Err(Error::new(ErrorKind::InvalidInput, "server_hostname is only meaningful for a client"));
        }
        (true, None) => None,
        (false, Some(name)) => Some(name),
        (false, None) => match host.filter(|h| !h.is_empty()) {
            Some(h) => Some(String::from(h)),
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "You must set server_hostname when using ssl without a host",
                ));
            }
        },
    };
    let mut params = TlsParams::new(server_side, server_hostname);
    params.handshake_timeout =
        timeout_or(opts.ssl_handshake_timeout.take(), DEFAULT_SSL_HANDSHAKE_TIMEOUT, "ssl_handshake_timeout")?;
    params.shutdown_timeout =
        timeout_or(opts.ssl_shutdown_timeout.take(), DEFAULT_SSL_SHUTDOWN_TIMEOUT, "ssl_shutdown_timeout")?;
    Ok(Some((ctx, params)))
}

/// Wraps a server's protocol factory in server-side TLS sessions when
/// `opts.ssl` is set.
pub(crate) fn wrap_factory(
    lp: &EventLoop,
    factory: StreamProtocolFactory,
    opts: &mut ServerOptions,
) -> Result<StreamProtocolFactory, Error> {
    let Some(ctx) = opts.ssl.take() else {
        if opts.ssl_handshake_timeout.is_some() {
            return Err(only_with_ssl("ssl_handshake_timeout"));
        }
        if opts.ssl_shutdown_timeout.is_some() {
            return Err(only_with_ssl("ssl_shutdown_timeout"));
        }
        return Ok(factory);
    };
    ctx.check(true)?;
    let mut params = TlsParams::new(true, None);
    params.handshake_timeout =
        timeout_or(opts.ssl_handshake_timeout.take(), DEFAULT_SSL_HANDSHAKE_TIMEOUT, "ssl_handshake_timeout")?;
    params.shutdown_timeout =
        timeout_or(opts.ssl_shutdown_timeout.take(), DEFAULT_SSL_SHUTDOWN_TIMEOUT, "ssl_shutdown_timeout")?;
    let weak = lp.downgrade();
    Ok(Rc::new(move || {
        let app = factory();
        match weak.upgrade() {
            Some(lp) => ctx.start(&lp, app, params.clone(), None),
            None => app,
        }
    }))
}

/// Waits for the handshake of a session whose raw transport is `raw`. If
/// the wait is dropped (the caller was cancelled) the connection is
/// aborted; a failed handshake has already closed it.
pub(crate) async fn handshake(
    raw: Rc<dyn Transport>,
    waiter: LoopFuture<Rc<dyn Transport>>,
) -> Result<Rc<dyn Transport>, Error> {
    struct AbortOnDrop(Option<Rc<dyn Transport>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(t) = self.0.take() {
                t.abort();
            }
        }
    }
    let mut guard = AbortOnDrop(Some(raw));
    let r = waiter.await;
    if let (Err(_), Some(raw)) = (&r, guard.0.take())
        && !raw.is_closing()
    {
        raw.close();
    }
    guard.0 = None;
    r
}

impl EventLoop {
    /// Upgrades an existing connection to TLS (asyncio's `loop.start_tls`),
    /// e.g. after a STARTTLS exchange: returns the TLS transport once the
    /// handshake completed. `protocol` (the one `transport` was running) is
    /// now the TLS transport's protocol and must switch to the returned
    /// transport; it gets no second `connection_made`. `transport` must not
    /// be used any more: it carries the TLS records now, and transports that
    /// support [`Transport::hand_over`] (the native ones) refuse writes and
    /// ignore reading and protocol changes made through it.
    ///
    /// Reading is paused during the switch, so every byte the old protocol
    /// has not seen reaches TLS; bytes it already received past the upgrade
    /// point go in [`StartTlsOptions::initial_data`]. A failed handshake
    /// closes the connection.
    pub async fn start_tls(
        &self,
        transport: Rc<dyn Transport>,
        protocol: StreamProtocol,
        ssl: Rc<dyn TlsContext>,
        opts: StartTlsOptions,
    ) -> Result<Rc<dyn Transport>, Error> {
        if self.is_closed() {
            return Err(crate::event_loop::closed_error());
        }
        ssl.check(opts.server_side)?;
        if transport.is_closing() {
            return Err(Error::new(ErrorKind::InvalidState, "start_tls(): the transport is closing"));
        }
        let server_hostname = match (opts.server_side, opts.server_hostname) {
            (true, Some(_)) => {
                return Err(Error::new(ErrorKind::InvalidInput, "server_hostname is only meaningful for a client"));
            }
            (false, None) => {
                return Err(Error::new(ErrorKind::InvalidInput, "start_tls() needs server_hostname for a client"));
            }
            (_, name) => name,
        };
        let mut params = TlsParams::new(opts.server_side, server_hostname);
        params.handshake_timeout =
            timeout_or(opts.ssl_handshake_timeout, DEFAULT_SSL_HANDSHAKE_TIMEOUT, "ssl_handshake_timeout")?;
        params.shutdown_timeout =
            timeout_or(opts.ssl_shutdown_timeout, DEFAULT_SSL_SHUTDOWN_TIMEOUT, "ssl_shutdown_timeout")?;
        params.call_connection_made = false;
        params.initial_data = opts.initial_data;

        transport.pause_reading();
        // From here on only the TLS layer drives the raw transport.
        let transport = transport.hand_over().unwrap_or(transport);
        let waiter = self.create_future::<Rc<dyn Transport>>();
        let raw_protocol = ssl.start(self, protocol, params, Some(waiter.clone()));
        transport.set_protocol(raw_protocol.clone());
        let (t1, t2) = (transport.clone(), transport.clone());
        let made = self.call_soon(move |lp| {
            if let Err(e) = ProtocolSlot::new(lp, raw_protocol).connection_made(t1.clone()) {
                let mut ctx = crate::ExceptionContext::new("start_tls(): the TLS protocol's connection_made() failed");
                ctx.exception = Some(e);
                lp.call_exception_handler(&ctx);
                t1.abort();
            }
        })?;
        let resume = self.call_soon(move |_| t2.resume_reading())?;
        let r = handshake(transport, waiter).await;
        if r.is_err() {
            made.cancel();
            resume.cancel();
        }
        r
    }
}
