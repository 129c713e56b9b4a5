//! # anyloop-core
//!
//! The host-independent heart of anyloop: CPython asyncio's event-loop
//! semantics — a FIFO of ready callbacks, a timer heap, cancellable handles,
//! futures and tasks, the exception handler, debug mode — in `no_std` Rust
//! with `alloc`. It never touches the platform; a [`Host`] does.
//!
//! Most users want the `anyloop` facade crate, which picks the host for the
//! compile target (native, WASI, browser). This crate is what hosts build
//! on, and what tests use with the deterministic [`testing::VirtualClock`].
//!
//! ## The host contract
//!
//! A [`Host`] provides four things (details in [`host`]):
//!
//! 1. **a monotonic clock**, [`Host::now`], as an [`Instant`] (nanoseconds
//!    since an origin the host picks; the core never reads a clock itself);
//! 2. **waiting**, [`Host::wait`]: block until I/O is ready, a wake-up
//!    arrives, or a timeout passes — rounded *up*, never early;
//!    I/O readiness is delivered by queueing handles with
//!    [`EventLoop::schedule_handle`];
//! 3. **a thread-safe wake**, [`Host::remote_waker`], used by
//!    `call_soon_threadsafe` and by task wakers on other threads;
//! 4. **a mode**, [`HostMode`]: blocking hosts let `run_forever` block;
//!    driven hosts (the browser, which must never block) call
//!    [`EventLoop::step`] from their own callbacks and re-arm from the
//!    returned [`Step`] — "run what is due now, tell me the next deadline".
//!    The loop calls [`Host::notify`] when work arrives between steps.
//!
//! ## Semantics
//!
//! * `call_soon` callbacks run in FIFO order, each exactly once; a callback
//!   scheduled by a callback runs in the next iteration.
//! * `stop()` inside a batch lets the rest of the batch run, then
//!   `run_forever` returns; `stop()` before `run_forever` gives one
//!   iteration with a zero I/O timeout.
//! * Timers never fire early; equal deadlines fire in scheduling order; a
//!   deadline in the past runs in the next iteration. Cancelling is O(1),
//!   and cancelled timers are purged once they are over half of a heap of
//!   more than 100.
//! * With `std`, a panicking callback or task goes to the exception handler
//!   and the loop carries on.
//!
//! ## Features
//!
//! * `std` (default): panic isolation, [`get_running_loop`], the std mutex
//!   for the cross-thread queue, [`Instant`] ⇄ `std::time::Instant`.
//!   Without it the crate builds for bare-metal targets such as
//!   `x86_64-unknown-none`.
//!
//! ```
//! use anyloop_core::{EventLoop, testing::VirtualClock};
//! use core::time::Duration;
//!
//! let lp = EventLoop::new(VirtualClock::new());
//! let task = lp
//!     .create_task(async {
//!         let lp = anyloop_core::get_running_loop().unwrap();
//!         let fut = lp.create_future::<u32>();
//!         let f2 = fut.clone();
//!         lp.call_later(Duration::from_millis(5), move |_| f2.set_result(7).unwrap()).unwrap();
//!         fut.await.unwrap() * 6
//!     })
//!     .unwrap();
//! assert_eq!(lp.run_until_complete(task).unwrap().unwrap(), 42);
//! lp.close().unwrap();
//! ```

#![no_std]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod api;
pub mod backend;
#[cfg(feature = "std")]
mod context;
mod error;
mod event_loop;
mod exception;
mod executor;
mod flow;
mod future;
mod handle;
pub mod host;
pub mod net;
mod panic;
mod protocol;
mod protocol_slot;
mod registry;
mod remote;
mod run;
mod sleep;
pub mod streams;
mod sync;
mod task;
pub mod testing;
mod time;
mod timers;
pub mod tls;
mod transport;

pub use api::Connection;
pub use backend::{Executor, RawFd};
#[cfg(feature = "std")]
pub use context::{get_running_loop, spawn};
pub use error::{Error, ErrorKind};
pub use event_loop::{DEFAULT_SLOW_CALLBACK_DURATION, EventLoop, LocalBoxFuture, TaskFactory, WeakLoop};
pub use exception::{ExceptionContext, ExceptionHandler};
pub use executor::ExecutorFuture;
pub use flow::{DEFAULT_HIGH_WATER, WaterMarks, WriteBuffer};
pub use future::LoopFuture;
pub use handle::{Handle, ThreadsafeHandle, TimerHandle};
pub use host::{Host, HostMode, HostWaker, NoopWaker, Step};
pub use protocol::{
    BaseProtocol, BufferedProtocol, DatagramProtocol, Protocol, ProtocolSlot, StreamProtocol, SubprocessProtocol,
};
pub use remote::LoopHandle;
pub use sleep::{Interval, Sleep, Timeout, yield_now};
#[cfg(feature = "std")]
pub use sleep::{interval, sleep, sleep_until, timeout, wait_for};
pub use streams::{DEFAULT_LIMIT, HandlerOutput, StreamConnector, StreamReader, StreamWriter};
#[cfg(feature = "std")]
pub use streams::{DuplexStream, open_connection, open_unix_connection, start_server, start_unix_server};
pub use task::{AnyTask, Task, TaskId};
pub use time::Instant;
pub use transport::{
    BaseTransport, DatagramTransport, ExtraInfo, PipeFd, ReadTransport, SubprocessTransport, Transport, WriteTransport,
};
