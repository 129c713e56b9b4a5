//! The running loop of the current thread (with `std`).
//!
//! asyncio's `get_running_loop()` reads a thread-local; so does
//! [`get_running_loop`]. The same slot lets a task waker that fires on the
//! loop's own thread queue the task directly — in order with `call_soon` —
//! instead of going through the cross-thread queue.

use alloc::sync::Arc;
use core::cell::RefCell;

use crate::remote::Shared;
use crate::task::TaskId;
use crate::{Error, ErrorKind, EventLoop};

std::thread_local! {
    static RUNNING: RefCell<Option<EventLoop>> = const { RefCell::new(None) };
}

/// The loop running on this thread (asyncio's `get_running_loop`), or a
/// `NoRunningLoop` error outside of one. Call it from a callback or a task.
///
/// ```
/// # use anyloop_core::{EventLoop, get_running_loop, testing::VirtualClock};
/// assert!(get_running_loop().is_err());
/// let lp = EventLoop::new(VirtualClock::new());
/// let same = lp.run_until_complete(async {
///     let lp = get_running_loop().unwrap();
///     lp.stop(); // any loop method works here
///     lp
/// });
/// # let _ = same;
/// ```
pub fn get_running_loop() -> Result<EventLoop, Error> {
    RUNNING
        .try_with(|r| r.try_borrow().ok().and_then(|r| r.clone()))
        .ok()
        .flatten()
        .ok_or_else(|| Error::from_kind(ErrorKind::NoRunningLoop))
}

/// Marks `lp` as this thread's running loop; one loop per thread at a time.
pub(crate) fn enter(lp: &EventLoop) -> Result<(), Error> {
    RUNNING.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_some() {
            return Err(Error::new(
                ErrorKind::AlreadyRunning,
                "Cannot run the event loop while another loop is running",
            ));
        }
        *r = Some(lp.clone());
        Ok(())
    })
}

/// Clears the running loop (if it is `lp`).
pub(crate) fn exit(lp: &EventLoop) {
    let old = RUNNING.with(|r| {
        let mut r = r.borrow_mut();
        match &*r {
            Some(cur) if cur.ptr_eq(lp) => r.take(),
            _ => None,
        }
    });
    drop(old);
}

/// If the loop owning `shared` runs on this thread, queues task `id` on it
/// and returns true.
pub(crate) fn schedule_local(shared: &Arc<Shared>, id: TaskId) -> bool {
    RUNNING
        .try_with(|r| {
            let Ok(r) = r.try_borrow() else { return false };
            match &*r {
                Some(lp) if Arc::ptr_eq(&lp.inner.shared, shared) => {
                    lp.schedule_task(id);
                    true
                }
                _ => false,
            }
        })
        .unwrap_or(false)
}

/// Spawns `fut` as a task on the running loop (`create_task` without
/// passing the loop around). `NoRunningLoop` outside a loop.
///
/// ```
/// # use anyloop_core::{EventLoop, testing::VirtualClock};
/// let lp = EventLoop::new(VirtualClock::new());
/// let sum = lp
///     .run_until_complete(async {
///         let a = anyloop_core::spawn(async { 20 }).unwrap();
///         let b = anyloop_core::spawn(async { 22 }).unwrap();
///         a.await.unwrap() + b.await.unwrap()
///     })
///     .unwrap();
/// assert_eq!(sum, 42);
/// ```
#[track_caller]
pub fn spawn<F>(fut: F) -> Result<crate::Task<F::Output>, Error>
where
    F: core::future::Future + 'static,
{
    get_running_loop()?.create_task(fut)
}
