//! anyloop in a web page: a WebSocket echo client and a ticker.
//!
//! The module starts by itself when the page loads (`#[wasm_bindgen(start)]`):
//! it creates an event loop with `anyloop::new_event_loop()` — the browser
//! host in a `wasm32-unknown-unknown` build — starts it with `run_forever`
//! (which, in a page, returns at once: the page keeps the loop going), and
//!
//! * schedules a ticker with `call_later`, which counts its calls in the
//!   element `#ticks`;
//! * runs a task that connects to the echo server serving the page
//!   (`ws://<page host>/echo`) with `create_websocket_connection`, sends a
//!   message every 250 ms, and shows each round trip measured on the loop's
//!   clock; `#echoed` counts the messages that came back.
//!
//! Run it with `just demo-browser`.

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod page {
    use std::collections::VecDeque;
    use std::rc::Rc;
    use std::time::Duration;

    use anyloop::{
        BaseProtocol, BaseTransport, Error, EventLoop, Instant, Protocol, Transport, WriteTransport, get_running_loop,
    };
    use wasm_bindgen::prelude::*;

    const PING_EVERY: Duration = Duration::from_millis(250);
    const TICK_EVERY: Duration = Duration::from_millis(500);

    fn set_text(id: &str, text: &str) {
        if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(id)) {
            el.set_text_content(Some(text));
        }
    }

    fn status(text: &str) {
        set_text("status", text);
    }

    /// The ticker: shows its count, then schedules its next call.
    fn tick(lp: &EventLoop, n: u64) {
        set_text("ticks", &n.to_string());
        let _ = lp.call_later(TICK_EVERY, move |lp| tick(lp, n + 1));
    }

    /// Measures round trips: the loop time each message was sent, matched
    /// to its echo (a WebSocket keeps messages whole and in order).
    #[derive(Default)]
    struct EchoTimer {
        sent: VecDeque<Instant>,
        echoed: u64,
        total: Duration,
        lines: VecDeque<String>,
    }

    impl BaseProtocol for EchoTimer {
        fn connection_lost(&mut self, exc: Option<Error>) {
            match exc {
                None => status("the connection was closed"),
                Some(e) => status(&format!("connection lost: {e}")),
            }
        }
    }

    impl Protocol for EchoTimer {
        fn connection_made(&mut self, transport: Rc<dyn Transport>) {
            let _ = transport;
        }

        fn data_received(&mut self, data: &[u8]) {
            let (Ok(lp), Some(sent)) = (get_running_loop(), self.sent.pop_front()) else { return };
            let rtt = lp.time() - sent;
            self.echoed += 1;
            self.total += rtt;
            let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
            set_text("echoed", &self.echoed.to_string());
            set_text("rtt", &ms(rtt));
            set_text("avg", &ms(self.total / self.echoed as u32));
            self.lines.push_front(format!("{:>5}  {:>10}  {}", self.echoed, ms(rtt), String::from_utf8_lossy(data)));
            self.lines.truncate(12);
            set_text("rtts", &Vec::from(self.lines.clone()).join("\n"));
        }
    }

    /// Resolves after `d` (a `call_later` completing a loop future).
    async fn sleep(lp: &EventLoop, d: Duration) -> Result<(), Error> {
        let fut = lp.create_future::<()>();
        let f2 = fut.clone();
        lp.call_later(d, move |_| drop(f2.set_result(())))?;
        fut.await
    }

    async fn echo_client(lp: EventLoop) -> Result<(), Error> {
        let host =
            web_sys::window().and_then(|w| w.location().host().ok()).unwrap_or_else(|| String::from("127.0.0.1"));
        let url = format!("ws://{host}/echo");
        status(&format!("connecting to {url}…"));
        let (transport, protocol) =
            anyloop::host::create_websocket_connection(&lp, EchoTimer::default, &url, &[]).await?;
        status(&format!("connected to {url}; a message every {} ms", PING_EVERY.as_millis()));
        let mut n = 0u64;
        while !transport.is_closing() {
            n += 1;
            protocol.borrow_mut().sent.push_back(lp.time());
            transport.write(format!("ping {n}").as_bytes())?;
            sleep(&lp, PING_EVERY).await?;
        }
        Ok(())
    }

    /// Runs when the module is instantiated.
    #[wasm_bindgen(start)]
    pub fn start() -> Result<(), JsValue> {
        let to_js = |e: Error| anyloop::host::error_to_js(&e);
        // Without a logger the loop's error reports would go nowhere.
        let _ = anyloop::host::log_to_console(anyloop::host::LevelFilter::Warn);
        let lp = anyloop::new_event_loop().map_err(to_js)?;
        tick(&lp, 0);
        let client = lp.clone();
        lp.create_task(async move {
            if let Err(e) = echo_client(client).await {
                status(&format!("error: {e}"));
            }
        })
        .map_err(to_js)?;
        // Returns at once; the running loop stays alive until `stop()`.
        lp.run_forever().map_err(to_js)
    }
}
