//! # anyloop
//!
//! CPython asyncio's low-level event loop, in Rust, for native binaries,
//! WASI modules and the browser — one API, the host chosen by the compile
//! target:
//!
//! | target | host crate | waits in |
//! |---|---|---|
//! | Linux, macOS, BSD, Windows | `anyloop-native` | epoll / kqueue / IOCP (mio) |
//! | `wasm32-wasip1`, `wasm32-wasip2` | `anyloop-wasi` | `poll_oneoff` / `wasi:io/poll` |
//! | `wasm32-unknown-unknown` | `anyloop-js` | the browser's event loop (driven) |
//!
//! Everything in [`anyloop_core`] is re-exported here; [`new_event_loop`]
//! builds a loop on the right host, and [`host`] is the host crate itself.
//!
//! ```
//! // The spec's "Hello World with call_soon()".
//! let lp = anyloop::new_event_loop().unwrap();
//! lp.call_soon(|lp| {
//!     println!("Hello World");
//!     lp.stop();
//! })
//! .unwrap();
//! lp.run_forever().unwrap();
//! lp.close().unwrap();
//! ```

pub use anyloop_core::*;

#[cfg(not(target_family = "wasm"))]
pub use anyloop_native as host;

#[cfg(target_os = "wasi")]
pub use anyloop_wasi as host;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub use anyloop_js as host;

/// TLS (feature `tls`, native targets): `TlsConfig` for the `ssl` field of
/// `ConnectOptions` / `ServerOptions` and for `start_tls`; see
/// [`anyloop_core::tls`] for how connections use it.
#[cfg(all(feature = "tls", not(target_family = "wasm")))]
pub use anyloop_native::tls;

/// rcgen (feature `tls`): makes CAs and certificates at run time, for tests,
/// examples and development servers (`tls_echo` uses it).
#[cfg(all(feature = "tls", not(target_family = "wasm")))]
pub use rcgen;

/// A new event loop on this target's host (asyncio's `new_event_loop`).
pub fn new_event_loop() -> Result<EventLoop, Error> {
    host::new_event_loop()
}

/// asyncio's `asyncio.run`: a new loop runs `fut` to completion; tasks
/// left over are cancelled and awaited, the default executor is shut down,
/// and the loop is closed. A two-line `main`:
///
/// ```
/// fn main() -> Result<(), anyloop::Error> {
///     anyloop::run(async {
///         anyloop::sleep(std::time::Duration::from_millis(10)).await;
///         println!("Hello World");
///     })
/// }
/// # main().unwrap();
/// ```
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
pub fn run<F>(fut: F) -> Result<F::Output, Error>
where
    F: core::future::Future + 'static,
{
    new_event_loop()?.run_and_close(fut)
}
