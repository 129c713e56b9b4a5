//! [`ThreadPool`]: the native default executor (asyncio's
//! `ThreadPoolExecutor`), behind `run_in_executor`, `getaddrinfo` and the
//! sendfile fallback.
//!
//! Threads are started on demand, up to `min(32, cores + 4)` (Python's
//! default), and leave after 10 s without work, so an idle loop holds no
//! threads. `shutdown` lets the queued jobs finish, then every worker exits;
//! the last one out reports completion. Nothing blocks the loop: neither
//! `execute` nor `shutdown` waits for a thread.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use anyloop_core::{Error, ErrorKind, Executor};

type Job = Box<dyn FnOnce() + Send>;

/// How long an idle worker waits for work before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    running: usize,
    shutdown: bool,
    on_done: Option<Job>,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    max_threads: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and are caught, so the lock is never
        // poisoned by a job; recover anyway rather than panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A thread pool implementing [`Executor`].
///
/// ```
/// use std::sync::Arc;
/// let lp = anyloop_native::new_event_loop().unwrap();
/// lp.set_default_executor(Arc::new(anyloop_native::ThreadPool::new(2)));
/// let n = lp.run_until_complete(lp.run_in_executor(|| 6 * 7)).unwrap().unwrap();
/// assert_eq!(n, 42);
/// lp.run_until_complete(async move {
///     let lp = anyloop_native::EventLoop::clone(&anyloop_core::get_running_loop().unwrap());
///     lp.shutdown_default_executor().await
/// }).unwrap().unwrap();
/// lp.close().unwrap();
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
}

impl Default for ThreadPool {
    /// Python's default size: `min(32, cores + 4)` threads.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ThreadPool::new((cores + 4).min(32))
    }
}

impl ThreadPool {
    /// A pool of at most `max_threads` threads (at least one).
    pub fn new(max_threads: usize) -> ThreadPool {
        ThreadPool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                max_threads: max_threads.max(1),
            }),
        }
    }

    /// Worker threads alive right now.
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }
}

fn worker(shared: Arc<Shared>) {
    let mut st = shared.lock();
    loop {
        if let Some(job) = st.queue.pop_front() {
            st.running += 1;
            drop(st);
            // A panicking job must not take the worker down. run_in_executor
            // already catches and reports; this guards other callers.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            st = shared.lock();
            st.running -= 1;
            continue;
        }
        if st.shutdown {
            break;
        }
        st.idle += 1;
        let (guard, timeout) = shared.work.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.queue.is_empty() {
            break;
        }
    }
    st.threads -= 1;
    let done = if st.shutdown && st.threads == 0 { st.on_done.take() } else { None };
    drop(st);
    if let Some(done) = done {
        done();
    }
}

impl Executor for ThreadPool {
    fn execute(&self, job: Box<dyn FnOnce() + Send>) -> Result<(), Error> {
        let mut st = self.shared.lock();
        if st.shutdown {
            return Err(Error::new(ErrorKind::Closed, "cannot schedule new futures after shutdown"));
        }
        st.queue.push_back(job);
        if st.idle >= st.queue.len() {
            drop(st);
            self.shared.work.notify_one();
            return Ok(());
        }
        if st.threads < self.shared.max_threads {
            st.threads += 1;
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new().name("anyloop-executor".into()).spawn(move || worker(shared));
            if let Err(e) = spawned {
                st.threads -= 1;
                if st.threads == 0 {
                    st.queue.pop_back();
                    return Err(Error::from(e).context("cannot start an executor thread"));
                }
            }
        }
        Ok(())
    }

    fn shutdown(&self, done: Box<dyn FnOnce() + Send>) {
        let mut st = self.shared.lock();
        st.shutdown = true;
        if st.threads == 0 {
            drop(st);
            done();
            return;
        }
        st.on_done = Some(done);
        drop(st);
        self.shared.work.notify_all();
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // Workers finish what is queued, then exit instead of idling.
        let mut st = self.shared.lock();
        st.shutdown = true;
        drop(st);
        self.shared.work.notify_all();
    }
}
