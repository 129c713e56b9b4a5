//! # anyloop-wasi
//!
//! The WASI host of anyloop: the asyncio-style `EventLoop` of
//! `anyloop-core` as a WebAssembly module, under wasmtime or any other WASI
//! runtime.
//!
//! | target | waits in | I/O |
//! |---|---|---|
//! | `wasm32-wasip1` | one `poll_oneoff` per iteration | fd watchers; `connect_read_pipe` / `connect_write_pipe` on stdio and files |
//! | `wasm32-wasip2` | one `wasi:io/poll.poll` per iteration | the same, plus TCP (`create_connection`, `create_server`), UDP (`create_datagram_endpoint`) and DNS (`getaddrinfo`) on `wasi:sockets` |
//!
//! ## How it waits
//!
//! Each loop iteration makes **one** blocking host call: it subscribes to
//! every active watcher (an fd on wasip1, a `pollable` on wasip2) plus one
//! monotonic-clock subscription for the earliest timer, and sleeps until one
//! of them is ready. The timeout is in nanoseconds, the clock's own unit, so
//! it is never rounded down: timers never fire early, and an idle loop makes
//! one host call per timer, not a busy loop.
//!
//! ## The clock
//!
//! `Host::now` is `std::time::Instant`, which on
//! WASI *is* the monotonic clock (`clock_time_get(MONOTONIC)` on wasip1,
//! `wasi:clocks/monotonic-clock.now` on wasip2) — the same clock the
//! waiting subscribes to. Going through std keeps `loop.time()` consistent
//! with `std::time::Instant` values user code takes, exactly as on the
//! native host.
//!
//! ## What WASI cannot do
//!
//! A WASI module has one thread and no signals or processes. So:
//!
//! * `call_soon_threadsafe` works, on the only thread there is: the remote
//!   waker is a no-op (`NoopWaker`) because no
//!   other thread can exist to call it while the loop is blocked;
//! * `add_signal_handler`, `subprocess_exec`/`subprocess_shell` and
//!   `run_in_executor` return `Unsupported` with the reason;
//! * a loop with nothing to wait for (no timer, no watcher, no connection)
//!   would sleep forever, since nothing can ever wake it: `run_forever`
//!   returns an error instead of deadlocking.
//!
//! Natively this crate is empty; the `anyloop` facade picks it for
//! `target_os = "wasi"`.
//!
//! ```text
//! // On wasm32-wasip1 / wasm32-wasip2:
//! let lp = anyloop::new_event_loop()?;
//! lp.call_soon(|lp| { println!("Hello World"); lp.stop(); })?;
//! lp.run_forever()?;
//! ```
#![cfg(target_os = "wasi")]
#![warn(missing_docs)]

mod host;
mod io;
mod pipe;
mod reactor;
#[cfg(target_env = "p2")]
mod ready;
mod stream;
mod sys;

#[cfg(target_env = "p2")]
mod p2;

pub use anyloop_core::EventLoop;
pub use host::WasiHost;

/// A new event loop on a [`WasiHost`] (asyncio's `new_event_loop`).
pub fn new_event_loop() -> Result<EventLoop, anyloop_core::Error> {
    Ok(EventLoop::new(WasiHost::new()))
}
