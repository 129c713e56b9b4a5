//! `run_in_executor` and the default executor.
//!
//! A job runs on an [`Executor`]'s thread; its result travels back through
//! a small `Send` slot and wakes the awaiting task with an ordinary
//! `Waker` (which, from another thread, goes through the loop's
//! thread-safe queue). Dropping the returned future before the job started
//! cancels the job, as cancelling asyncio's wrapped `concurrent.futures`
//! future does.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use crate::backend::Executor;
use crate::sync::Mutex;
use crate::{Error, ErrorKind, EventLoop};

struct Slot<T> {
    result: Option<Result<T, Error>>,
    waker: Option<Waker>,
}

struct Shared<T> {
    slot: Mutex<Slot<T>>,
    cancelled: AtomicBool,
}

/// The future of [`EventLoop::run_in_executor`].
pub struct ExecutorFuture<T> {
    shared: Option<Arc<Shared<T>>>,
    error: Option<Error>,
}

impl<T> Future for ExecutorFuture<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        let Some(shared) = &self.shared else {
            return Poll::Ready(Err(Error::new(ErrorKind::InvalidState, "polled after completion")));
        };
        let mut slot = shared.slot.lock();
        if let Some(r) = slot.result.take() {
            drop(slot);
            self.shared = None;
            return Poll::Ready(r);
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for ExecutorFuture<T> {
    fn drop(&mut self) {
        if let Some(s) = &self.shared {
            s.cancelled.store(true, Ordering::Release);
        }
    }
}

fn submit<T, F>(executor: &dyn Executor, f: F) -> ExecutorFuture<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let shared =
        Arc::new(Shared { slot: Mutex::new(Slot { result: None, waker: None }), cancelled: AtomicBool::new(false) });
    let job_shared = shared.clone();
    let job = Box::new(move || {
        if job_shared.cancelled.load(Ordering::Acquire) {
            return;
        }
        let r = crate::panic::catch(f);
        let waker = {
            let mut slot = job_shared.slot.lock();
            slot.result = Some(r);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    });
    match executor.execute(job) {
        Ok(()) => ExecutorFuture { shared: Some(shared), error: None },
        Err(e) => ExecutorFuture { shared: None, error: Some(e) },
    }
}

impl EventLoop {
    /// Runs the blocking function `f` on the default executor (a thread
    /// pool on native hosts) and resolves to its result; a panic in `f`
    /// becomes a `Panic` error. `Unsupported` on hosts without threads.
    ///
    /// ```
    /// let lp = anyloop_core::EventLoop::new(anyloop_core::testing::VirtualClock::new());
    /// // The virtual clock has no executor of its own; hosts provide one.
    /// let err = lp.run_until_complete(lp.run_in_executor(|| 1 + 1)).unwrap().unwrap_err();
    /// assert_eq!(err.kind(), anyloop_core::ErrorKind::Unsupported);
    /// ```
    pub fn run_in_executor<T, F>(&self, f: F) -> ExecutorFuture<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let executor = self.inner.executor.borrow().clone();
        match executor {
            Some(ex) => submit(&*ex, f),
            None if self.inner.executor_shut_down.get() => ExecutorFuture {
                shared: None,
                error: Some(Error::new(ErrorKind::Closed, "Executor shutdown has been called")),
            },
            None => ExecutorFuture { shared: None, error: Some(self.unsupported_executor()) },
        }
    }

    fn unsupported_executor(&self) -> Error {
        Error::unsupported("run_in_executor", self.inner.backends.why)
    }

    /// Runs `f` on the given executor instead of the default one.
    pub fn run_in_executor_on<T, F>(&self, executor: &dyn Executor, f: F) -> ExecutorFuture<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        submit(executor, f)
    }

    /// Replaces the default executor.
    pub fn set_default_executor(&self, executor: Arc<dyn Executor>) {
        *self.inner.executor.borrow_mut() = Some(executor);
        self.inner.executor_shut_down.set(false);
    }

    /// Shuts the default executor down and waits until its running jobs
    /// finished. Afterwards `run_in_executor` fails with `Closed` until a
    /// new executor is set.
    pub async fn shutdown_default_executor(&self) -> Result<(), Error> {
        let Some(executor) = self.inner.executor.borrow_mut().take() else {
            return Ok(());
        };
        self.inner.executor_shut_down.set(true);
        let shared: Arc<Shared<()>> = Arc::new(Shared {
            slot: Mutex::new(Slot { result: None, waker: None }),
            cancelled: AtomicBool::new(false),
        });
        let done = shared.clone();
        executor.shutdown(Box::new(move || {
            let waker = {
                let mut slot = done.slot.lock();
                slot.result = Some(Ok(()));
                slot.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }));
        ExecutorFuture { shared: Some(shared), error: None }.await
    }

    /// Stops the default executor without waiting (used by `close`).
    pub(crate) fn drop_executor(&self) {
        let executor = self.inner.executor.borrow_mut().take();
        if let Some(ex) = executor {
            ex.shutdown(Box::new(|| {}));
        }
    }
}
