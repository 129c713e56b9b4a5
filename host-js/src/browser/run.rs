//! Running a loop in a page without blocking: [`run_forever`] and
//! [`run_until_complete`] as futures, and [`run_until_complete_promise`] for
//! JS.
//!
//! These are what `EventLoop::run_forever` and
//! `EventLoop::run_until_complete` are on a blocking host, turned inside out:
//! the same checks, the same `StoppedBeforeComplete` rule, but the caller
//! awaits instead of blocking. The futures are lazy (nothing starts until
//! they are first polled) and `'static`, so they can be handed to
//! `wasm_bindgen_futures::spawn_local` or turned into a `Promise`.

use std::future::{Future, poll_fn};
use std::task::Poll;

use anyloop_core::{Error, ErrorKind, EventLoop};
use wasm_bindgen::JsValue;

use crate::browser::host::JsHost;
use crate::browser::interop::to_promise;

fn not_browser() -> Error {
    Error::new(ErrorKind::Unsupported, "anyloop_js runs loops of the browser host (anyloop_js::new_event_loop) only")
}

/// Runs `lp` until [`stop`](EventLoop::stop) is called: starts it as
/// `lp.run_forever()` does on this host and resolves once it has stopped.
///
/// Errors as `EventLoop::run_forever`: `Closed`, `AlreadyRunning`; and
/// `Unsupported` for a loop that is not on the browser host.
///
/// ```no_run
/// # async fn demo() -> Result<(), anyloop_core::Error> {
/// let lp = anyloop_js::new_event_loop()?;
/// lp.call_soon(|lp| lp.stop())?;
/// anyloop_js::run_forever(&lp).await?;
/// # Ok(())
/// # }
/// ```
pub fn run_forever(lp: &EventLoop) -> impl Future<Output = Result<(), Error>> + 'static {
    let lp = lp.clone();
    async move {
        if lp.host::<JsHost>().is_none() {
            return Err(not_browser());
        }
        lp.run_forever()?;
        stopped_inner(&lp).await;
        Ok(())
    }
}

/// Resolves once `lp` is not running — at once if it is not — e.g. after
/// `lp.stop()`, which takes effect in the loop's next step, before
/// `lp.close()`.
///
/// ```no_run
/// # async fn demo(lp: anyloop_core::EventLoop) -> Result<(), anyloop_core::Error> {
/// lp.stop();
/// anyloop_js::stopped(&lp).await;
/// lp.close()?;
/// # Ok(())
/// # }
/// ```
pub fn stopped(lp: &EventLoop) -> impl Future<Output = ()> + 'static {
    let lp = lp.clone();
    async move { stopped_inner(&lp).await }
}

async fn stopped_inner(lp: &EventLoop) {
    poll_fn(|cx| {
        if !lp.is_running() {
            return Poll::Ready(());
        }
        match lp.host::<JsHost>() {
            Some(host) => {
                host.add_stop_waiter(cx.waker());
                Poll::Pending
            }
            None => Poll::Ready(()),
        }
    })
    .await
}

/// Runs `fut` as a task on `lp` until it completes and resolves to its
/// output (asyncio's `run_until_complete`, awaited instead of blocking).
///
/// Errors as `EventLoop::run_until_complete`: `Closed`, `AlreadyRunning`,
/// `StoppedBeforeComplete` if something else stopped the loop first (the
/// task stays scheduled and continues when the loop runs again), and the
/// task's own error if it was cancelled.
///
/// ```no_run
/// # async fn demo() -> Result<(), anyloop_core::Error> {
/// use core::time::Duration;
/// let lp = anyloop_js::new_event_loop()?;
/// let fut = lp.create_future::<u32>();
/// let f2 = fut.clone();
/// lp.call_later(Duration::from_millis(10), move |_| f2.set_result(42).unwrap())?;
/// assert_eq!(anyloop_js::run_until_complete(&lp, fut).await??, 42);
/// # Ok(())
/// # }
/// ```
pub fn run_until_complete<F>(lp: &EventLoop, fut: F) -> impl Future<Output = Result<F::Output, Error>> + 'static
where
    F: Future + 'static,
{
    let lp = lp.clone();
    async move {
        if lp.host::<JsHost>().is_none() {
            return Err(not_browser());
        }
        if lp.is_closed() {
            return Err(Error::from_kind(ErrorKind::Closed));
        }
        if lp.is_running() {
            return Err(Error::from_kind(ErrorKind::AlreadyRunning));
        }
        let task = lp.create_task(fut)?;
        let cb = task.add_done_callback(|lp, _| lp.stop());
        let ran = run_forever(&lp).await;
        task.remove_done_callback(cb);
        ran?;
        if !task.done() {
            return Err(Error::from_kind(ErrorKind::StoppedBeforeComplete));
        }
        task.result()
    }
}

/// [`run_until_complete`] as a JS `Promise`: it resolves to the output
/// converted to a `JsValue`, or rejects with the error as a JS `Error`
/// (see [`error_to_js`](crate::error_to_js)). Made for `#[wasm_bindgen]`
/// exports:
///
/// ```no_run
/// use wasm_bindgen::prelude::*;
///
/// #[wasm_bindgen]
/// pub fn answer() -> Result<js_sys::Promise, JsValue> {
///     let lp = anyloop_js::new_event_loop().map_err(|e| anyloop_js::error_to_js(&e))?;
///     Ok(anyloop_js::run_until_complete_promise(&lp, async { 42u32 }))
/// }
/// ```
pub fn run_until_complete_promise<F>(lp: &EventLoop, fut: F) -> js_sys::Promise
where
    F: Future + 'static,
    F::Output: Into<JsValue>,
{
    to_promise(run_until_complete(lp, fut))
}

/// asyncio's `asyncio.run`, for the page: a new loop runs `fut` to
/// completion; tasks left over are cancelled and awaited, and the loop is
/// closed. Resolves to `fut`'s output.
///
/// ```no_run
/// # async fn demo() -> Result<(), anyloop_core::Error> {
/// let answer = anyloop_js::run(async { 6 * 7 }).await?;
/// # let _ = answer; Ok(())
/// # }
/// ```
pub async fn run<F>(fut: F) -> Result<F::Output, Error>
where
    F: Future + 'static,
{
    let lp = crate::new_event_loop()?;
    let out = run_until_complete(&lp, fut).await;
    let leftovers = lp.cancel_tasks();
    let cleaned = run_until_complete(&lp, leftovers).await;
    stopped(&lp).await;
    let closed = lp.close();
    let out = out?;
    cleaned??;
    closed?;
    Ok(out)
}

/// Starts [`run`]`(fut)` in the background and returns at once — the entry
/// point of a page (`#[wasm_bindgen(start)]`), where `main` cannot block.
/// An error is logged to the browser console.
///
/// ```no_run
/// use wasm_bindgen::prelude::*;
///
/// #[wasm_bindgen(start)]
/// pub fn start() {
///     anyloop_js::spawn_main(async {
///         anyloop_core::sleep(core::time::Duration::from_millis(100)).await;
///         web_sys::console::log_1(&"Hello World".into());
///     });
/// }
/// ```
pub fn spawn_main<F>(fut: F)
where
    F: Future<Output = ()> + 'static,
{
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = run(fut).await {
            web_sys::console::error_1(&JsValue::from_str(&format!("anyloop: {e}")));
        }
    });
}
