//! Helpers for anyloop's browser tests (`just test-browser`): time, waiting
//! on the loop, the echo server's address, and a protocol that records what
//! happens to it. Empty on targets other than `wasm32-unknown-unknown`.
//!
//! Test bodies run as tasks of the loop under test and return
//! `Result<_, String>`; assertions happen after the loop has stopped and
//! been closed, so a failing test leaves no running loop behind (a panic in
//! wasm aborts the module, which would take the following tests with it).

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod browser {
    use std::cell::{Cell, RefCell};
    use std::future::{Future, poll_fn};
    use std::pin::pin;
    use std::rc::Rc;
    use std::task::Poll;
    use std::time::Duration;

    use anyloop::{BaseProtocol, Error, ErrorKind, EventLoop, Protocol, Transport};
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        fn performance_now() -> f64;
        #[wasm_bindgen(js_name = setTimeout)]
        fn set_timeout(callback: &JsValue, ms: f64) -> JsValue;
    }

    /// `performance.now()`, in milliseconds.
    pub fn now_ms() -> f64 {
        performance_now()
    }

    /// Spins for `ms` milliseconds (a callback that does real work).
    pub fn busy_wait(ms: f64) {
        let end = performance_now() + ms;
        while performance_now() < end {}
    }

    /// Calls `f` from a browser `setTimeout(f, ms)`, outside the loop.
    pub fn js_set_timeout(ms: f64, f: impl FnOnce() + 'static) {
        set_timeout(&Closure::once_into_js(f), ms);
    }

    /// Resolves after `ms` milliseconds of a browser `setTimeout`, outside
    /// any loop.
    pub async fn js_sleep(ms: f64) {
        let p = js_sys::Promise::new(&mut |resolve, _| {
            js_set_timeout(ms, move || drop(resolve.call0(&JsValue::NULL)));
        });
        let _ = wasm_bindgen_futures::JsFuture::from(p).await;
    }

    /// `Err(msg)` unless `cond`.
    pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
        if cond { Ok(()) } else { Err(msg()) }
    }

    /// A fresh loop on the browser host.
    pub fn new_loop() -> Result<EventLoop, String> {
        anyloop::new_event_loop().map_err(|e| format!("new_event_loop: {e}"))
    }

    /// Resolves after `d` of loop time (a `call_later` and a future).
    pub async fn sleep(lp: &EventLoop, d: Duration) {
        let fut = lp.create_future::<()>();
        let f2 = fut.clone();
        if lp.call_later(d, move |_| drop(f2.set_result(()))).is_ok() {
            let _ = fut.await;
        }
    }

    /// `fut`, or an error once `limit` of loop time has passed.
    pub async fn within<T>(lp: &EventLoop, limit: Duration, fut: impl Future<Output = T>) -> Result<T, String> {
        let mut fut = pin!(fut);
        let mut timeout = pin!(sleep(lp, limit));
        poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            if timeout.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(format!("timed out after {limit:?}")));
            }
            Poll::Pending
        })
        .await
    }

    /// Polls `cond` every millisecond of loop time until it holds, or fails
    /// after `limit` saying `what`.
    pub async fn wait_until(
        lp: &EventLoop,
        limit: Duration,
        what: &str,
        cond: impl Fn() -> bool,
    ) -> Result<(), String> {
        let start = lp.time();
        while !cond() {
            if lp.time() - start > limit {
                return Err(format!("waited {limit:?} for {what}"));
            }
            sleep(lp, Duration::from_millis(1)).await;
        }
        Ok(())
    }

    /// Runs `body` as a task on a fresh loop until it completes, with a
    /// time limit; closes the loop; returns the body's result.
    pub async fn run_test<T: 'static>(
        limit: Duration,
        body: impl AsyncFnOnce(EventLoop) -> Result<T, String> + 'static,
    ) -> Result<T, String> {
        let lp = new_loop()?;
        let lp2 = lp.clone();
        let out = anyloop::host::run_until_complete(&lp, async move {
            let l = lp2.clone();
            within(&l, limit, body(lp2)).await
        })
        .await;
        let closed = lp.close();
        let out = out.map_err(|e| format!("run_until_complete: {e}"))??;
        closed.map_err(|e| format!("close: {e}"))?;
        out
    }

    /// The echo server's URL (`ws://127.0.0.1:PORT/path`); the port is set
    /// at compile time by `just test-browser` (ANYLOOP_WS_ECHO_PORT).
    pub fn echo_url(path: &str) -> Result<String, String> {
        match option_env!("ANYLOOP_WS_ECHO_PORT") {
            Some(port) => Ok(format!("ws://127.0.0.1:{port}/{path}")),
            None => Err("ANYLOOP_WS_ECHO_PORT was not set at compile time: run `just test-browser`".into()),
        }
    }

    /// A URL on 127.0.0.1 where nothing listens (ANYLOOP_WS_CLOSED_PORT).
    pub fn closed_url() -> Result<String, String> {
        match option_env!("ANYLOOP_WS_CLOSED_PORT") {
            Some(port) => Ok(format!("ws://127.0.0.1:{port}/")),
            None => Err("ANYLOOP_WS_CLOSED_PORT was not set at compile time: run `just test-browser`".into()),
        }
    }

    /// What a [`Recorder`] saw, in order.
    #[derive(Clone, Debug, PartialEq)]
    pub enum Ev {
        Made,
        Data(Vec<u8>),
        Lost(Option<ErrorKind>),
        Pause,
        Resume,
    }

    /// A protocol that records its callbacks and keeps its transport.
    #[derive(Default)]
    pub struct Recorder {
        pub events: Rc<RefCell<Vec<Ev>>>,
        pub transport: Option<Rc<dyn Transport>>,
        pub lost_error: Option<Error>,
        pub received: Rc<Cell<usize>>,
    }

    impl Recorder {
        /// A recorder and a shared view of its events.
        pub fn new() -> (Recorder, Rc<RefCell<Vec<Ev>>>) {
            let r = Recorder::default();
            let ev = r.events.clone();
            (r, ev)
        }
    }

    impl BaseProtocol for Recorder {
        fn connection_lost(&mut self, exc: Option<Error>) {
            self.events.borrow_mut().push(Ev::Lost(exc.as_ref().map(Error::kind)));
            self.lost_error = exc;
        }
        fn pause_writing(&mut self) {
            self.events.borrow_mut().push(Ev::Pause);
        }
        fn resume_writing(&mut self) {
            self.events.borrow_mut().push(Ev::Resume);
        }
    }

    impl Protocol for Recorder {
        fn connection_made(&mut self, transport: Rc<dyn Transport>) {
            self.transport = Some(transport);
            self.events.borrow_mut().push(Ev::Made);
        }
        fn data_received(&mut self, data: &[u8]) {
            self.received.set(self.received.get() + data.len());
            self.events.borrow_mut().push(Ev::Data(data.to_vec()));
        }
    }

    /// Counts of each kind of event, for short assertions.
    pub fn count(events: &[Ev], pred: impl Fn(&Ev) -> bool) -> usize {
        events.iter().filter(|e| pred(e)).count()
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use browser::*;
