//! Streams (asyncio-stream.rst): `async` byte streams over any stream
//! transport — native TCP and Unix sockets, WASI sockets, browser
//! WebSockets, TLS.
//!
//! [`open_connection`] gives a [`StreamReader`] / [`StreamWriter`] pair;
//! [`start_server`] runs an `async` handler per connection. With `std`, the
//! reader implements `futures_io::AsyncRead` and `AsyncBufRead` and the
//! writer `AsyncWrite`, so crates built on those traits work unchanged.
//!
//! Under the hood a [`BufferedProtocol`](crate::BufferedProtocol) receives
//! straight into the reader's buffer, so bytes are copied once, from the
//! OS; [`StreamReader::fill_buf`] lends them without another copy.

mod glue;
#[cfg(feature = "std")]
mod io_traits;
mod reader;
mod writer;

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;

#[cfg(feature = "std")]
pub use io_traits::DuplexStream;
pub use reader::{DEFAULT_LIMIT, StreamReader};
pub use writer::StreamWriter;

use crate::net::{ConnectOptions, Server, ServerOptions};
use crate::{Error, EventLoop, ExceptionContext, StreamProtocol, Transport};
use glue::Glue;

/// What a `start_server` handler may return: `()` or `Result<(), Error>`
/// (an `Err` goes to the loop's exception handler).
pub trait HandlerOutput {
    /// The handler's verdict.
    fn into_result(self) -> Result<(), Error>;
}

impl HandlerOutput for () {
    fn into_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl HandlerOutput for Result<(), Error> {
    fn into_result(self) -> Result<(), Error> {
        self
    }
}

/// A protocol for any API that takes a [`StreamProtocol`] (a WebSocket
/// connect, `create_connection_with`, `connect_read_pipe`…), and the way
/// to turn the connection into a stream pair afterwards.
///
/// ```no_run
/// # async fn demo(lp: &anyloop_core::EventLoop) -> Result<(), anyloop_core::Error> {
/// use anyloop_core::StreamConnector;
/// let connector = StreamConnector::new(anyloop_core::DEFAULT_LIMIT);
/// let t = lp.create_connection_with(connector.protocol(), Some("127.0.0.1"), Some(8888), Default::default()).await?;
/// let (reader, writer) = connector.into_streams(t);
/// # let _ = (reader, writer); Ok(()) }
/// ```
pub struct StreamConnector {
    glue: Rc<RefCell<Glue>>,
}

impl StreamConnector {
    /// A connector whose reader buffers up to `limit` (asyncio: 64 KiB).
    pub fn new(limit: usize) -> StreamConnector {
        StreamConnector { glue: Rc::new(RefCell::new(Glue::new(limit.max(1)))) }
    }

    /// The protocol to connect with.
    pub fn protocol(&self) -> StreamProtocol {
        StreamProtocol::Buffered(self.glue.clone())
    }

    /// The stream pair over the connected `transport`.
    pub fn into_streams(self, transport: Rc<dyn Transport>) -> (StreamReader, StreamWriter) {
        (StreamReader::new(self.glue.clone()), StreamWriter { glue: self.glue, transport })
    }
}

/// A protocol factory that runs `handler` as a task for each connection.
fn handler_factory<F, Fut>(lp: &EventLoop, handler: F, limit: usize) -> crate::backend::StreamProtocolFactory
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    let handler = Rc::new(handler);
    let weak = lp.downgrade();
    Rc::new(move || {
        let glue = Rc::new(RefCell::new(Glue::new(limit.max(1))));
        let handler = handler.clone();
        let weak = weak.clone();
        {
            let mut g = glue.borrow_mut();
            g.me = Some(Rc::downgrade(&glue));
            g.on_connect = Some(Box::new(move |glue, transport| {
                let Some(lp) = weak.upgrade() else { return };
                let reader = StreamReader::new(glue.clone());
                let writer = StreamWriter { glue, transport };
                let fut = handler(reader, writer);
                let report_to = lp.downgrade();
                let spawned = lp.create_task(async move {
                    if let Err(e) = fut.await.into_result()
                        && let Some(lp) = report_to.upgrade()
                    {
                        let mut ctx = ExceptionContext::new("Unhandled error in client_connected_cb");
                        ctx.exception = Some(e);
                        lp.call_exception_handler(&ctx);
                    }
                });
                drop(spawned);
            }));
        }
        StreamProtocol::Buffered(glue)
    })
}

impl EventLoop {
    /// Connects to `host:port` and returns a stream pair (asyncio's
    /// `open_connection`).
    pub async fn open_connection(&self, host: &str, port: u16) -> Result<(StreamReader, StreamWriter), Error> {
        self.open_connection_with(host, port, ConnectOptions::default(), DEFAULT_LIMIT).await
    }

    /// [`open_connection`](Self::open_connection) with options and a limit.
    pub async fn open_connection_with(
        &self,
        host: &str,
        port: u16,
        opts: ConnectOptions,
        limit: usize,
    ) -> Result<(StreamReader, StreamWriter), Error> {
        let c = StreamConnector::new(limit);
        let t = self.create_connection_with(c.protocol(), Some(host), Some(port), opts).await?;
        Ok(c.into_streams(t))
    }

    /// Connects to a Unix socket (asyncio's `open_unix_connection`).
    pub async fn open_unix_connection(&self, path: &str) -> Result<(StreamReader, StreamWriter), Error> {
        let c = StreamConnector::new(DEFAULT_LIMIT);
        let t = self.create_unix_connection_with(c.protocol(), path, ConnectOptions::default()).await?;
        Ok(c.into_streams(t))
    }

    /// Starts a server that runs `handler(reader, writer)` as a task for
    /// every connection (asyncio's `start_server`). `host` `None`: all
    /// interfaces.
    pub async fn start_server<F, Fut>(
        &self,
        handler: F,
        host: Option<&str>,
        port: u16,
        opts: ServerOptions,
    ) -> Result<Server, Error>
    where
        F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
        Fut: Future + 'static,
        Fut::Output: HandlerOutput,
    {
        let factory = handler_factory(self, handler, DEFAULT_LIMIT);
        let hosts: Vec<String> = host.into_iter().filter(|h| !h.is_empty()).map(String::from).collect();
        self.create_server_with(factory, hosts, Some(port), opts).await
    }

    /// Starts a Unix socket server (asyncio's `start_unix_server`).
    pub async fn start_unix_server<F, Fut>(&self, handler: F, path: &str, opts: ServerOptions) -> Result<Server, Error>
    where
        F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
        Fut: Future + 'static,
        Fut::Output: HandlerOutput,
    {
        let factory = handler_factory(self, handler, DEFAULT_LIMIT);
        self.create_unix_server_with(factory, path, opts).await
    }
}

/// [`EventLoop::open_connection`] on the running loop.
#[cfg(feature = "std")]
pub async fn open_connection(host: &str, port: u16) -> Result<(StreamReader, StreamWriter), Error> {
    crate::get_running_loop()?.open_connection(host, port).await
}

/// [`EventLoop::start_server`] on the running loop.
#[cfg(feature = "std")]
pub async fn start_server<F, Fut>(handler: F, host: Option<&str>, port: u16) -> Result<Server, Error>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    crate::get_running_loop()?.start_server(handler, host, port, ServerOptions::default()).await
}

/// [`EventLoop::open_unix_connection`] on the running loop.
#[cfg(feature = "std")]
pub async fn open_unix_connection(path: &str) -> Result<(StreamReader, StreamWriter), Error> {
    crate::get_running_loop()?.open_unix_connection(path).await
}

/// [`EventLoop::start_unix_server`] on the running loop.
#[cfg(feature = "std")]
pub async fn start_unix_server<F, Fut>(handler: F, path: &str) -> Result<Server, Error>
where
    F: Fn(StreamReader, StreamWriter) -> Fut + 'static,
    Fut: Future + 'static,
    Fut::Output: HandlerOutput,
{
    crate::get_running_loop()?.start_unix_server(handler, path, ServerOptions::default()).await
}
