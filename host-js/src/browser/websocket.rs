//! The WebSocket transport: asyncio's [`Protocol`] over the browser's
//! `WebSocket`, the one way a page talks to the network.
//!
//! The behaviour is documented on [`WebSocketTransport`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::Poll;
use std::time::Duration;

use anyloop_core::{
    BaseTransport, Error, ErrorKind, EventLoop, ExceptionContext, ExtraInfo, Handle, LoopFuture, Protocol,
    ProtocolSlot, ReadTransport, StreamProtocol, TimerHandle, Transport, WaterMarks, WeakLoop, WriteTransport,
};
use js_sys::{Array, ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::browser::host::JsHost;
use crate::browser::interop::error_from_js;

/// How often `bufferedAmount` is polled while the protocol is paused.
const DRAIN_POLL: Duration = Duration::from_millis(1);

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum State {
    Connecting,
    Open,
    /// `connection_lost` was delivered or scheduled, or opening failed.
    Closed,
}

enum WsEvent {
    Open,
    Message(Vec<u8>),
    Close { code: u16, reason: String, clean: bool },
}

struct CloseInfo {
    code: u16,
    reason: String,
    clean: bool,
}

/// The JS event handlers; dropped (after being unset) when the socket is
/// done.
struct Listeners {
    _open: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

pub(crate) struct WsInner {
    ws: WebSocket,
    url: String,
    lp: WeakLoop,
    slot: ProtocolSlot,
    state: Cell<State>,
    /// `close()` or `abort()` was called.
    closing: Cell<bool>,
    events: RefCell<VecDeque<WsEvent>>,
    handle: Handle,
    scheduled: Cell<bool>,
    reading: Cell<bool>,
    /// Writes made before the socket opened.
    pending: RefCell<VecDeque<Message>>,
    pending_len: Cell<usize>,
    water: RefCell<WaterMarks>,
    drain_poll: RefCell<Option<TimerHandle>>,
    opened: LoopFuture<()>,
    close_info: RefCell<Option<CloseInfo>>,
    /// The transport keeps itself alive while the socket is open: JS holds
    /// only weak references to it (through the listeners).
    me: RefCell<Option<Rc<WebSocketTransport>>>,
    listeners: RefCell<Option<Listeners>>,
}

enum Message {
    Binary(Vec<u8>),
    Text(String),
}

impl Message {
    fn len(&self) -> usize {
        match self {
            Message::Binary(b) => b.len(),
            Message::Text(t) => t.len(),
        }
    }
}

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
        let inner = Rc::new_cyclic(|me: &Weak<WsInner>| {
            let w = me.clone();
            let handle = Handle::repeating(move |_| {
                if let Some(inner) = w.upgrade() {
                    inner.process();
                }
            });
            WsInner {
                ws,
                url: String::from(url),
                lp: lp.downgrade(),
                slot: ProtocolSlot::new(lp, protocol),
                state: Cell::new(State::Connecting),
                closing: Cell::new(false),
                events: RefCell::new(VecDeque::new()),
                handle,
                scheduled: Cell::new(false),
                reading: Cell::new(true),
                pending: RefCell::new(VecDeque::new()),
                pending_len: Cell::new(0),
                water: RefCell::new(WaterMarks::default()),
                drain_poll: RefCell::new(None),
                opened: lp.create_future(),
                close_info: RefCell::new(None),
                me: RefCell::new(None),
                listeners: RefCell::new(None),
            }
        });
        inner.attach();
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

impl WsInner {
    fn attach(self: &Rc<Self>) {
        let w = Rc::downgrade(self);
        let open = Closure::<dyn FnMut()>::new(move || {
            if let Some(i) = w.upgrade() {
                i.push(WsEvent::Open);
            }
        });
        let w = Rc::downgrade(self);
        let message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(i) = w.upgrade() else { return };
            let data = ev.data();
            let bytes = if let Some(text) = data.as_string() {
                text.into_bytes()
            } else if let Some(buf) = data.dyn_ref::<ArrayBuffer>() {
                Uint8Array::new(buf).to_vec()
            } else {
                // binaryType is "arraybuffer": nothing else can arrive.
                return;
            };
            i.push(WsEvent::Message(bytes));
        });
        let w = Rc::downgrade(self);
        let close = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
            if let Some(i) = w.upgrade() {
                i.push(WsEvent::Close { code: ev.code(), reason: ev.reason(), clean: ev.was_clean() });
            }
        });
        self.ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        self.ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        self.ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        // `error` always comes with a `close` event, which says all there
        // is to say (the browser keeps the reason to itself).
        *self.listeners.borrow_mut() = Some(Listeners { _open: open, _message: message, _close: close });
    }

    fn detach(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        drop(self.listeners.borrow_mut().take());
    }

    /// From a JS event handler: queue the event, schedule delivery.
    fn push(&self, ev: WsEvent) {
        self.events.borrow_mut().push_back(ev);
        self.schedule();
    }

    fn schedule(&self) {
        if self.scheduled.replace(true) {
            return;
        }
        let ok = self.lp.upgrade().is_some_and(|lp| lp.schedule_handle(&self.handle).is_ok());
        if !ok {
            self.scheduled.set(false);
        }
    }

    /// The transport's handle, run by the loop: delivers one event.
    fn process(self: &Rc<Self>) {
        self.scheduled.set(false);
        let ev = {
            let mut events = self.events.borrow_mut();
            let paused = !self.reading.get() && self.state.get() == State::Open && !self.closing.get();
            match events.front() {
                None => return,
                Some(WsEvent::Message(_)) if paused => return, // resume_reading schedules again
                Some(_) => events.pop_front(),
            }
        };
        match ev {
            Some(WsEvent::Open) => self.on_open(),
            Some(WsEvent::Message(data)) => {
                // After close(), nothing more is received (as asyncio).
                if self.state.get() == State::Open
                    && !self.closing.get()
                    && let Err(e) = self.slot.data_received(&data)
                {
                    self.fatal(e);
                }
            }
            Some(WsEvent::Close { code, reason, clean }) => self.on_close(CloseInfo { code, reason, clean }),
            None => {}
        }
        if !self.events.borrow().is_empty() {
            self.schedule();
        }
    }

    fn on_open(self: &Rc<Self>) {
        if self.state.get() != State::Connecting {
            return;
        }
        self.state.set(State::Open);
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        self.pending_len.set(0);
        for m in pending {
            if let Err(e) = self.send_now(&m) {
                // Before connection_made: the connect future fails, the
                // protocol hears nothing.
                self.state.set(State::Connecting);
                self.force_close(Some(e));
                return;
            }
        }
        let Some(me) = self.me.borrow().clone() else { return };
        let made = self.slot.connection_made(me);
        let _ = self.opened.set_result(());
        if let Err(e) = made {
            self.fatal(e);
        } else if self.closing.get() {
            self.start_close(1000, "");
        } else {
            self.check_pause();
        }
    }

    fn on_close(self: &Rc<Self>, info: CloseInfo) {
        let state = self.state.replace(State::Closed);
        let (code, clean) = (info.code, info.clean);
        let reason = info.reason.clone();
        *self.close_info.borrow_mut() = Some(info);
        match state {
            State::Connecting => {
                let e = Error::new(
                    ErrorKind::ConnectionRefused,
                    format!(
                        "could not open a WebSocket connection to {} (close code {code}); browsers do not say why: \
                         the server may be down, refuse connections, or reject the handshake",
                        self.url
                    ),
                );
                let _ = self.opened.set_exception(e);
                self.finish();
            }
            State::Open => {
                let exc = if !clean {
                    Some(Error::new(
                        ErrorKind::ConnectionReset,
                        format!("WebSocket connection to {} closed abnormally (code {code})", self.url),
                    ))
                } else if self.closing.get() || matches!(code, 1000 | 1001 | 1005) {
                    None
                } else {
                    Some(Error::new(
                        ErrorKind::ConnectionAborted,
                        format!("WebSocket connection to {} closed by the peer with code {code}: {reason:?}", self.url),
                    ))
                };
                self.deliver_lost(exc);
            }
            State::Closed => self.finish(),
        }
    }

    fn deliver_lost(self: &Rc<Self>, exc: Option<Error>) {
        if let Some(t) = self.drain_poll.borrow_mut().take() {
            t.cancel();
        }
        if let Err(e) = self.slot.connection_lost(exc)
            && let Some(lp) = self.lp.upgrade()
        {
            let mut ctx = ExceptionContext::new("protocol.connection_lost() failed");
            ctx.exception = Some(e);
            lp.call_exception_handler(&ctx);
        }
        self.finish();
    }

    /// Done with the socket: no more events, no more self-reference.
    fn finish(&self) {
        self.detach();
        self.events.borrow_mut().clear();
        self.pending.borrow_mut().clear();
        self.pending_len.set(0);
        if let Some(t) = self.drain_poll.borrow_mut().take() {
            t.cancel();
        }
        drop(self.me.borrow_mut().take());
    }

    /// asyncio's `_fatal_error`: report, then close at once with `e`.
    fn fatal(self: &Rc<Self>, e: Error) {
        if self.state.get() == State::Closed {
            return;
        }
        if let Some(lp) = self.lp.upgrade() {
            let mut ctx = ExceptionContext::new("Fatal error on WebSocket transport");
            ctx.exception = Some(e.clone());
            lp.call_exception_handler(&ctx);
        }
        self.force_close(Some(e));
    }

    /// Closes the socket now; `connection_lost(exc)` follows in the next
    /// iteration if the protocol saw `connection_made`.
    fn force_close(self: &Rc<Self>, exc: Option<Error>) {
        self.closing.set(true);
        let state = self.state.replace(State::Closed);
        if state == State::Closed {
            return;
        }
        let _ = self.ws.close();
        self.detach();
        self.events.borrow_mut().clear();
        self.pending.borrow_mut().clear();
        self.pending_len.set(0);
        if state == State::Connecting {
            match exc {
                Some(e) => drop(self.opened.set_exception(e)),
                // Aborted (or the connect future dropped) before it opened:
                // a cancellation, which nobody has to retrieve.
                None => drop(self.opened.cancel(Some("the WebSocket was aborted before it opened"))),
            }
            self.finish();
            return;
        }
        let me = self.clone();
        let scheduled = self.lp.upgrade().map(|lp| lp.call_soon(move |_| me.deliver_lost(exc)));
        if !matches!(scheduled, Some(Ok(_))) {
            self.finish();
        }
    }

    fn close(self: &Rc<Self>, code: u16, reason: &str) {
        if self.closing.replace(true) {
            return;
        }
        // While connecting, the close waits for the open (in on_open), so
        // the queued writes go out first.
        if self.state.get() == State::Open {
            self.start_close(code, reason);
        }
    }

    fn start_close(self: &Rc<Self>, code: u16, reason: &str) {
        if let Err(e) = self.ws.close_with_code_and_reason(code, reason) {
            self.fatal(error_from_js(e).context("WebSocket.close failed"));
        }
    }

    /// The loop is closing: close the socket and drop every JS handler.
    /// No protocol callback runs any more.
    pub(crate) fn shutdown(&self) {
        self.closing.set(true);
        if self.state.replace(State::Closed) != State::Closed {
            let _ = self.ws.close();
        }
        self.opened.cancel(Some("the event loop was closed"));
        self.finish();
    }

    fn check_writable(&self) -> Result<(), Error> {
        if self.closing.get() || self.state.get() == State::Closed {
            return Err(Error::new(ErrorKind::InvalidState, "write to a closing or closed WebSocket transport"));
        }
        Ok(())
    }

    fn send(self: &Rc<Self>, m: Message) -> Result<(), Error> {
        self.check_writable()?;
        if self.state.get() == State::Connecting {
            self.pending_len.set(self.pending_len.get() + m.len());
            self.pending.borrow_mut().push_back(m);
            return Ok(());
        }
        self.send_now(&m)?;
        self.check_pause();
        Ok(())
    }

    fn send_now(&self, m: &Message) -> Result<(), Error> {
        match m {
            Message::Binary(b) => self.ws.send_with_u8_array(b),
            Message::Text(t) => self.ws.send_with_str(t),
        }
        .map_err(|e| error_from_js(e).context("WebSocket.send failed"))
    }

    fn buffer_size(&self) -> usize {
        self.ws.buffered_amount() as usize + self.pending_len.get()
    }

    /// After a write: pause the protocol if the buffer is over the mark.
    fn check_pause(self: &Rc<Self>) {
        if self.state.get() != State::Open {
            return; // the protocol hears nothing before connection_made
        }
        let pause = self.water.borrow_mut().should_pause(self.buffer_size());
        if pause {
            if let Err(e) = self.slot.pause_writing() {
                self.fatal(e);
                return;
            }
            self.poll_drain_later();
        }
    }

    fn poll_drain_later(self: &Rc<Self>) {
        let Some(lp) = self.lp.upgrade() else { return };
        let w = Rc::downgrade(self);
        if let Ok(t) = lp.call_later(DRAIN_POLL, move |_| {
            if let Some(i) = w.upgrade() {
                i.poll_drain();
            }
        }) && let Some(old) = self.drain_poll.borrow_mut().replace(t)
        {
            old.cancel();
        }
    }

    /// While paused: resume the protocol once the browser's buffer drained
    /// to the low-water mark, else look again shortly.
    fn poll_drain(self: &Rc<Self>) {
        self.drain_poll.borrow_mut().take();
        if self.state.get() != State::Open {
            return;
        }
        let resume = self.water.borrow_mut().should_resume(self.buffer_size());
        if resume {
            if let Err(e) = self.slot.resume_writing() {
                self.fatal(e);
            }
        } else if self.water.borrow().is_paused() {
            self.poll_drain_later();
        }
    }
}

impl Drop for WsInner {
    fn drop(&mut self) {
        if self.state.get() != State::Closed {
            let _ = self.ws.close();
        }
        self.detach();
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
