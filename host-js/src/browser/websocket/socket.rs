//! The state machine behind [`WebSocketTransport`](super::WebSocketTransport):
//! the socket's JS listeners queue events, the transport's handle delivers
//! them to the protocol in the loop, and writes, closing and flow control
//! follow the rules documented on the transport.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};
use std::time::Duration;

use anyloop_core::{
    Error, ErrorKind, EventLoop, ExceptionContext, Handle, LoopFuture, ProtocolSlot, StreamProtocol, TimerHandle,
    WaterMarks, WeakLoop,
};
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use super::WebSocketTransport;
use crate::browser::interop::error_from_js;

/// How often `bufferedAmount` is polled while the protocol is paused.
const DRAIN_POLL: Duration = Duration::from_millis(1);

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) enum State {
    Connecting,
    Open,
    /// `connection_lost` was delivered or scheduled, or opening failed.
    Closed,
}

pub(super) enum WsEvent {
    Open,
    Message(Vec<u8>),
    Close { code: u16, reason: String, clean: bool },
}

pub(super) struct CloseInfo {
    pub(super) code: u16,
    pub(super) reason: String,
    pub(super) clean: bool,
}

/// The JS event handlers; dropped (after being unset) when the socket is
/// done.
struct Listeners {
    _open: Closure<dyn FnMut()>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

pub(crate) struct WsInner {
    pub(super) ws: WebSocket,
    pub(super) url: String,
    pub(super) lp: WeakLoop,
    pub(super) slot: ProtocolSlot,
    pub(super) state: Cell<State>,
    /// `close()` or `abort()` was called.
    pub(super) closing: Cell<bool>,
    pub(super) events: RefCell<VecDeque<WsEvent>>,
    pub(super) handle: Handle,
    pub(super) scheduled: Cell<bool>,
    pub(super) reading: Cell<bool>,
    /// Writes made before the socket opened.
    pub(super) pending: RefCell<VecDeque<Message>>,
    pub(super) pending_len: Cell<usize>,
    pub(super) water: RefCell<WaterMarks>,
    pub(super) drain_poll: RefCell<Option<TimerHandle>>,
    pub(super) opened: LoopFuture<()>,
    pub(super) close_info: RefCell<Option<CloseInfo>>,
    /// The transport keeps itself alive while the socket is open: JS holds
    /// only weak references to it (through the listeners).
    pub(super) me: RefCell<Option<Rc<WebSocketTransport>>>,
    listeners: RefCell<Option<Listeners>>,
}

pub(super) enum Message {
    Binary(Vec<u8>),
    Text(String),
}

impl Message {
    pub(super) fn len(&self) -> usize {
        match self {
            Message::Binary(b) => b.len(),
            Message::Text(t) => t.len(),
        }
    }
}

impl WsInner {
    /// The state of a socket being opened to `url`, its listeners attached.
    pub(super) fn new(lp: &EventLoop, protocol: StreamProtocol, url: &str, ws: WebSocket) -> Rc<WsInner> {
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
        inner
    }
}

impl WsInner {
    pub(super) fn attach(self: &Rc<Self>) {
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

    pub(super) fn detach(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        drop(self.listeners.borrow_mut().take());
    }

    /// From a JS event handler: queue the event, schedule delivery.
    pub(super) fn push(&self, ev: WsEvent) {
        self.events.borrow_mut().push_back(ev);
        self.schedule();
    }

    pub(super) fn schedule(&self) {
        if self.scheduled.replace(true) {
            return;
        }
        let ok = self.lp.upgrade().is_some_and(|lp| lp.schedule_handle(&self.handle).is_ok());
        if !ok {
            self.scheduled.set(false);
        }
    }

    /// The transport's handle, run by the loop: delivers one event.
    pub(super) fn process(self: &Rc<Self>) {
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

    pub(super) fn on_open(self: &Rc<Self>) {
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

    pub(super) fn on_close(self: &Rc<Self>, info: CloseInfo) {
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

    pub(super) fn deliver_lost(self: &Rc<Self>, exc: Option<Error>) {
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
        // Break the protocol ⇄ transport cycle; get_protocol still answers.
        self.slot.release();
        self.finish();
    }

    /// Done with the socket: no more events, no more self-reference.
    pub(super) fn finish(&self) {
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
    pub(super) fn fatal(self: &Rc<Self>, e: Error) {
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
    pub(super) fn force_close(self: &Rc<Self>, exc: Option<Error>) {
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

    pub(super) fn close(self: &Rc<Self>, code: u16, reason: &str) {
        if self.closing.replace(true) {
            return;
        }
        // While connecting, the close waits for the open (in on_open), so
        // the queued writes go out first.
        if self.state.get() == State::Open {
            self.start_close(code, reason);
        }
    }

    pub(super) fn start_close(self: &Rc<Self>, code: u16, reason: &str) {
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

    pub(super) fn check_writable(&self) -> Result<(), Error> {
        if self.closing.get() || self.state.get() == State::Closed {
            return Err(Error::new(ErrorKind::InvalidState, "write to a closing or closed WebSocket transport"));
        }
        Ok(())
    }

    pub(super) fn send(self: &Rc<Self>, m: Message) -> Result<(), Error> {
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

    pub(super) fn send_now(&self, m: &Message) -> Result<(), Error> {
        match m {
            Message::Binary(b) => self.ws.send_with_u8_array(b),
            Message::Text(t) => self.ws.send_with_str(t),
        }
        .map_err(|e| error_from_js(e).context("WebSocket.send failed"))
    }

    pub(super) fn buffer_size(&self) -> usize {
        self.ws.buffered_amount() as usize + self.pending_len.get()
    }

    /// After a write: pause the protocol if the buffer is over the mark.
    pub(super) fn check_pause(self: &Rc<Self>) {
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

    pub(super) fn poll_drain_later(self: &Rc<Self>) {
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
    pub(super) fn poll_drain(self: &Rc<Self>) {
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
