//! The WebSocket transport: asyncio's [`Protocol`] over the browser's
//! `WebSocket`, the one way a page talks to the network.
//!
//! The behaviour is documented on [`WebSocketTransport`].

mod socket;

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use anyloop_core::{
    BaseTransport, Error, ErrorKind, EventLoop, ExtraInfo, Protocol, ReadTransport, StreamProtocol, Transport,
    WriteTransport,
};
use js_sys::Array;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, WebSocket};

use crate::browser::host::JsHost;
use crate::browser::interop::error_from_js;
pub(crate) use socket::WsInner;
use socket::{Message, State};

/// A WebSocket as an asyncio stream transport. Made by
/// [`create_websocket_connection`] or [`WebSocketTransport::connect`];
/// implements [`Transport`], and adds [`send_text`](Self::send_text) and
/// [`close_with`](Self::close_with).
///
/// * **Events run in the loop.** The socket's JS event handlers only queue
///   what happened (open, a message, close) and schedule the transport's
///   handle; the protocol is called from that handle, in a step of the
///   loop, in order with every other callback — one event per run, so a
///   flood of messages still lets the loop yield to the page.
/// * **Messages.** Each message is delivered as exactly one
///   `data_received` call (a WebSocket keeps message boundaries): a binary
///   message as its bytes, a text message as its UTF-8 bytes. `write`
///   sends one binary message; [`WebSocketTransport::send_text`] a text one.
///   Nothing is dropped or reordered: writes made before the socket is open
///   are queued and sent, in order, when it opens.
/// * **Flow control.** The browser buffers what `send` is given and reports
///   it as `bufferedAmount`; that (plus writes queued before open) is the
///   write buffer size. `pause_writing` comes when it goes over the
///   high-water mark; browsers fire no event when it drains, so while the
///   protocol is paused the transport polls `bufferedAmount` on a loop
///   timer every millisecond and calls `resume_writing` at the low-water
///   mark. The browser gives no receive back-pressure: `pause_reading`
///   stops delivery, and messages that arrive meanwhile wait in memory.
/// * **Closing.** `close` sends a close frame with code 1000 after
///   everything written (the browser sends buffered data first);
///   `connection_lost(None)` follows when the close handshake completes.
///   The peer closing with 1000 (normal), 1001 (going away) or no code
///   (1005) is also a regular close; any other code ends in
///   `connection_lost(Some(ConnectionAborted))`, an abnormal closure (1006:
///   the connection dropped without a close frame) in `ConnectionReset`.
///   `get_extra_info("close_code")`, `"close_reason"` and
///   `"close_was_clean"` tell the details. `abort` closes at once and
///   delivers `connection_lost(None)` in the next iteration.
/// * **Failing to open.** A connection that cannot be opened fails the
///   connect future with `ConnectionRefused` (browsers deliberately do not
///   say whether the server was down, refused, or rejected the handshake);
///   the protocol sees neither `connection_made` nor `connection_lost`, as
///   in asyncio.
/// * There is no half-close (`can_write_eof` is false) and no peer address
///   (`peername` is `None`: the browser does not expose it).
pub struct WebSocketTransport {
    inner: Rc<WsInner>,
}

/// Opens a WebSocket to `url` (`ws://` or `wss://`; as in the browser's
/// API, a relative URL or `http(s)://` is resolved against the page and
/// switched to `ws(s)://`) offering the
/// subprotocols `protocols`, and runs the protocol `factory()` makes over
/// it (the browser's counterpart of asyncio's `create_connection`).
/// Resolves once the socket is open and the protocol's `connection_made`
/// has run.
///
/// Errors: `InvalidInput` for a bad URL or subprotocol list;
/// `ConnectionRefused` if the connection cannot be opened (the protocol
/// then sees no callback at all); `Unsupported` on a loop that is not on
/// the browser host; `Closed`. Dropping the future before it resolves
/// aborts the connection.
///
/// ```no_run
/// use anyloop_core::{BaseProtocol, Protocol};
/// # async fn demo(lp: &anyloop_core::EventLoop) -> Result<(), anyloop_core::Error> {
/// struct Print;
/// impl BaseProtocol for Print {}
/// impl Protocol for Print {
///     fn data_received(&mut self, data: &[u8]) {
///         web_sys::console::log_1(&String::from_utf8_lossy(data).as_ref().into());
///     }
/// }
/// let (transport, _protocol) =
///     anyloop_js::create_websocket_connection(lp, || Print, "ws://127.0.0.1:8765/", &[]).await?;
/// use anyloop_core::WriteTransport;
/// transport.write(b"hello")?;
/// # Ok(())
/// # }
/// ```
pub async fn create_websocket_connection<P: Protocol + 'static>(
    lp: &EventLoop,
    factory: impl FnOnce() -> P,
    url: &str,
    protocols: &[&str],
) -> Result<(Rc<WebSocketTransport>, Rc<RefCell<P>>), Error> {
    let (sp, p) = StreamProtocol::plain(factory());
    let t = create_websocket_connection_with(lp, sp, url, protocols).await?;
    Ok((t, p))
}

/// The streams variant (asyncio's `open_connection`, over a WebSocket):
/// a [`StreamReader`](anyloop_core::StreamReader) receiving every message's
/// bytes in order and a [`StreamWriter`](anyloop_core::StreamWriter) whose
/// writes become binary messages, with `drain` following `bufferedAmount`.
///
/// ```no_run
/// # async fn demo(lp: &anyloop_core::EventLoop) -> Result<(), anyloop_core::Error> {
/// let (mut reader, writer) = anyloop_js::open_websocket_connection(lp, "ws://127.0.0.1:8765/", &[]).await?;
/// writer.write(b"ping\n")?;
/// let line = reader.readline().await?;
/// # let _ = line; Ok(())
/// # }
/// ```
pub async fn open_websocket_connection(
    lp: &EventLoop,
    url: &str,
    protocols: &[&str],
) -> Result<(anyloop_core::StreamReader, anyloop_core::StreamWriter), Error> {
    let connector = anyloop_core::StreamConnector::new(anyloop_core::DEFAULT_LIMIT);
    let t = create_websocket_connection_with(lp, connector.protocol(), url, protocols).await?;
    Ok(connector.into_streams(t))
}

/// [`create_websocket_connection`] with any stream protocol (plain or
/// buffered).
pub async fn create_websocket_connection_with(
    lp: &EventLoop,
    protocol: StreamProtocol,
    url: &str,
    protocols: &[&str],
) -> Result<Rc<WebSocketTransport>, Error> {
    /// Aborts the connection if the caller stops waiting for it.
    struct AbortOnDrop(Option<Rc<WebSocketTransport>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(t) = self.0.take() {
                t.abort();
            }
        }
    }
    let t = WebSocketTransport::connect(lp, protocol, url, protocols)?;
    let mut guard = AbortOnDrop(Some(t.clone()));
    t.opened().await?;
    guard.0 = None;
    Ok(t)
}

impl WebSocketTransport {
    /// Starts opening a WebSocket and returns its transport at once, before
    /// it is open: writes made now are queued and sent when it opens, and
    /// the protocol's `connection_made` comes then. Await
    /// [`opened`](Self::opened) to learn whether it opened.
    pub fn connect(
        lp: &EventLoop,
        protocol: StreamProtocol,
        url: &str,
        protocols: &[&str],
    ) -> Result<Rc<WebSocketTransport>, Error> {
        if lp.is_closed() {
            return Err(Error::from_kind(ErrorKind::Closed));
        }
        let host = lp
            .host::<JsHost>()
            .ok_or_else(|| Error::unsupported("create_websocket_connection", "the loop is not on the browser host"))?;
        let list: Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
        let ws = WebSocket::new_with_str_sequence(url, &list)
            .map_err(|e| error_from_js(e).context(format!("cannot open a WebSocket to {url:?}")))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let inner = WsInner::new(lp, protocol, url, ws);
        let t = Rc::new(WebSocketTransport { inner: inner.clone() });
        *inner.me.borrow_mut() = Some(t.clone());
        host.register_socket(Rc::downgrade(&inner));
        Ok(t)
    }

    /// Resolves when the socket is open (`Ok`, after the protocol's
    /// `connection_made`), or fails as [`create_websocket_connection`]
    /// does. May be awaited any number of times.
    pub fn opened(&self) -> impl Future<Output = Result<(), Error>> + 'static {
        let mut fut = self.inner.opened.clone();
        poll_fn(move |cx| {
            if fut.done() {
                return Poll::Ready(fut.result());
            }
            // Pending, so polling only registers the waker.
            Pin::new(&mut fut).poll(cx)
        })
    }

    /// Sends `text` as one text message (`write` sends binary ones).
    /// Errors as `write`.
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.inner.send(Message::Text(String::from(text)))
    }

    /// Closes with a close `code` (1000, or 3000–4999 for applications)
    /// and a `reason` of at most 123 UTF-8 bytes; otherwise as `close`.
    /// `InvalidInput` for a code or reason the WebSocket API refuses.
    pub fn close_with(&self, code: u16, reason: &str) -> Result<(), Error> {
        if code != 1000 && !(3000..=4999).contains(&code) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("WebSocket close code {code} is not allowed: use 1000 or 3000-4999"),
            ));
        }
        if reason.len() > 123 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("WebSocket close reason is {} bytes long, the limit is 123", reason.len()),
            ));
        }
        self.inner.close(code, reason);
        Ok(())
    }

    /// The WebSocket's `readyState`: 0 connecting, 1 open, 2 closing,
    /// 3 closed.
    pub fn ready_state(&self) -> u16 {
        self.inner.ws.ready_state()
    }
}

impl BaseTransport for WebSocketTransport {
    fn close(&self) {
        self.inner.close(1000, "");
    }

    fn is_closing(&self) -> bool {
        self.inner.closing.get() || self.inner.state.get() == State::Closed
    }

    /// `"url"`, `"subprotocol"` (also `"protocol"`) and `"extensions"` as
    /// text; once closed, `"close_code"` and `"close_was_clean"` (1 or 0)
    /// as numbers and `"close_reason"` as text.
    fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        let i = &self.inner;
        let close = i.close_info.borrow();
        match name {
            "url" => Some(ExtraInfo::Text(i.ws.url())),
            "subprotocol" | "protocol" => Some(ExtraInfo::Text(i.ws.protocol())),
            "extensions" => Some(ExtraInfo::Text(i.ws.extensions())),
            "close_code" => close.as_ref().map(|c| ExtraInfo::Int(c.code.into())),
            "close_reason" => close.as_ref().map(|c| ExtraInfo::Text(c.reason.clone())),
            "close_was_clean" => close.as_ref().map(|c| ExtraInfo::Int(c.clean.into())),
            _ => None,
        }
    }
}

impl ReadTransport for WebSocketTransport {
    fn is_reading(&self) -> bool {
        self.inner.reading.get() && !self.is_closing()
    }

    fn pause_reading(&self) {
        self.inner.reading.set(false);
    }

    fn resume_reading(&self) {
        if !self.inner.reading.replace(true) && !self.inner.events.borrow().is_empty() {
            self.inner.schedule();
        }
    }
}

impl WriteTransport for WebSocketTransport {
    /// Sends `data` as one binary message (queued if the socket is not open
    /// yet). An empty `data` sends nothing, as asyncio.
    fn write(&self, data: &[u8]) -> Result<(), Error> {
        if data.is_empty() {
            return self.inner.check_writable();
        }
        self.inner.send(Message::Binary(data.to_vec()))
    }

    /// Sends the buffers joined as one binary message.
    fn writelines(&self, bufs: &[&[u8]]) -> Result<(), Error> {
        self.write(&bufs.concat())
    }

    fn can_write_eof(&self) -> bool {
        false
    }

    fn write_eof(&self) -> Result<(), Error> {
        Err(Error::unsupported("write_eof", "a WebSocket cannot be half-closed"))
    }

    fn abort(&self) {
        self.inner.force_close(None);
    }

    /// The browser's `bufferedAmount` plus writes waiting for the open.
    fn get_write_buffer_size(&self) -> usize {
        self.inner.buffer_size()
    }

    fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.inner.water.borrow().limits()
    }

    fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) -> Result<(), Error> {
        self.inner.water.borrow_mut().set_limits(high, low)?;
        self.inner.check_pause();
        Ok(())
    }
}

impl Transport for WebSocketTransport {
    fn set_protocol(&self, protocol: StreamProtocol) {
        self.inner.slot.set(protocol);
    }

    fn get_protocol(&self) -> StreamProtocol {
        self.inner.slot.get()
    }
}

impl std::fmt::Debug for WebSocketTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketTransport")
            .field("url", &self.inner.url)
            .field("state", &self.inner.state.get())
            .field("closing", &self.inner.closing.get())
            .finish()
    }
}
