//! # anyloop-js
//!
//! anyloop's browser host (`wasm32-unknown-unknown`, through wasm-bindgen):
//! the same [`EventLoop`](anyloop_core::EventLoop) as on native and WASI, on
//! top of the browser's own event loop, plus a WebSocket transport. Most
//! programs reach it through the `anyloop` facade (`anyloop::host` is this
//! crate in a browser build). On every other target this crate is empty.
//!
//! ## How the loop runs in a page
//!
//! A page must never block, so this is a *driven* host
//! ([`HostMode::Driven`](anyloop_core::HostMode)): the browser calls the loop,
//! not the other way round.
//!
//! * Ready callbacks run from a **macrotask** posted on a private
//!   `MessageChannel` — not from microtasks, which would starve rendering and
//!   input, and not from `setTimeout(0)`, which browsers clamp to 4 ms once
//!   timeouts nest.
//! * The loop arms **one** browser timer (`setTimeout`), for its earliest
//!   deadline, re-armed or cleared as timers come and go — never one JS
//!   timer per anyloop timer.
//! * A long burst of callbacks **yields** back to the browser after each
//!   [time slice](JsHost::set_time_slice) (5 ms by default, well under the
//!   8 ms that keeps a page responsive), even in the middle of one batch
//!   (see [`EventLoop::step_yielding`](anyloop_core::EventLoop::step_yielding));
//!   the order of callbacks is unchanged by it.
//! * Time is `performance.now()` (std's `Instant::now` panics here).
//!
//! ## Honest differences from the blocking hosts
//!
//! | asyncio | here |
//! |---|---|
//! | `run_forever()` blocks until `stop()` | starts the loop and returns at once; the running loop keeps itself alive (dropping every `EventLoop` does not end it; `stop()` does). [`run_forever`] is the awaitable variant that resolves when the loop stops, [`stopped`] waits for a `stop()` to take effect (in the next step) before `close()`. |
//! | `run_until_complete(fut)` blocks | `lp.run_until_complete` returns `Unsupported`; [`run_until_complete`] returns a Rust future and [`run_until_complete_promise`] a JS `Promise`. |
//! | `call_soon_threadsafe`, `EventLoop::handle` | `Unsupported`: sharing the loop with Web Workers needs wasm atomics, which stable Rust 1.95 cannot build. |
//! | `add_reader`, sockets, servers, pipes, subprocesses, signals, DNS, executors | `Unsupported`, with the reason: a page has no file descriptors, raw sockets, processes or signals. Use [`create_websocket_connection`]. |
//! | a panicking callback goes to the exception handler | `wasm32-unknown-unknown` aborts on panic: the module traps. |
//! | the default exception handler writes to stderr | stderr goes nowhere in a page: [`log_to_console`] routes the loop's reports to the browser console. |
//! | `get_running_loop()` inside callbacks | also true *between* steps while the loop runs (a JS event handler sees it), since the loop is running until `stop`. One loop runs per page (per thread) at a time. |
//!
//! ## Example
//!
//! ```no_run
//! # #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
//! # async fn demo() -> Result<(), anyloop_core::Error> {
//! use core::time::Duration;
//! let lp = anyloop_js::new_event_loop()?;
//! lp.call_later(Duration::from_millis(100), |lp| lp.stop())?;
//! anyloop_js::run_forever(&lp).await?; // resolves when the loop stops
//! lp.close()?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
// The docs describe the browser build; elsewhere the crate is empty and its
// links have nothing to point to.
#![cfg_attr(not(all(target_arch = "wasm32", target_os = "unknown")), allow(rustdoc::broken_intra_doc_links))]

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod browser;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use browser::*;
