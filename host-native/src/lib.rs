//! # anyloop-native
//!
//! The native host of anyloop: the asyncio-style [`EventLoop`] of
//! `anyloop-core`, blocking in the OS selector — epoll on Linux, kqueue on
//! macOS and the BSDs, IOCP on Windows — through [mio].
//!
//! One [`NativeHost`] per loop: a `mio::Poll` to wait in, and a
//! `mio::Waker` that `call_soon_threadsafe` and cross-thread task wake-ups
//! use to interrupt the wait. An idle loop sleeps in the kernel until its
//! next timer; it never polls.
//!
//! ```
//! use std::time::Duration;
//!
//! let lp = anyloop_native::new_event_loop().unwrap();
//! let remote = lp.handle().unwrap();
//! std::thread::spawn(move || {
//!     std::thread::sleep(Duration::from_millis(20));
//!     remote.call_soon_threadsafe(|lp| lp.stop()).unwrap(); // wakes the blocked loop
//! });
//! lp.run_forever().unwrap();
//! lp.close().unwrap();
//! ```
//!
//! [mio]: https://docs.rs/mio

#![warn(missing_docs)]

mod executor;
mod host;
mod io;
pub mod net;
mod process;
pub mod reactor;
mod signals;
#[cfg(unix)]
mod sock;
pub mod stream;
mod util;

/// Signal numbers (`SIGINT`, `SIGTERM`…, those of the target OS) and names,
/// for `add_signal_handler`.
pub mod signal {
    pub use crate::signals::name;
    #[cfg(unix)]
    pub use signal_hook::consts::signal::*;
}

/// TLS (feature `tls`): [`tls::TlsConfig`] for the `ssl` field of
/// `ConnectOptions` / `ServerOptions` and for `start_tls`. The TLS transport
/// runs over this host's stream transports.
#[cfg(feature = "tls")]
pub use anyloop_tls as tls;

pub use anyloop_core::EventLoop;
pub use executor::ThreadPool;
pub use host::NativeHost;
pub use process::ChildWatcher;

/// A new event loop on a [`NativeHost`] (asyncio's `new_event_loop`).
///
/// Fails only if the OS refuses a selector (e.g. the process is out of file
/// descriptors).
pub fn new_event_loop() -> Result<EventLoop, anyloop_core::Error> {
    Ok(EventLoop::new(NativeHost::new()?))
}
