//! [`EventLoop`]: the loop object and its scheduling, task, error-handling
//! and debug APIs. Running and stopping live in `run.rs`.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::rc::{Rc, Weak};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;

use crate::exception::{ExceptionHandler, emit};
use crate::handle::{Handle, ThreadsafeHandle, TimerHandle};
use crate::remote::{LoopHandle, Remote, Shared};
use crate::task::{AnyTask, Registry, Task, TaskId};
use crate::timers::Timers;
use crate::{Error, ErrorKind, ExceptionContext, Host, HostMode, Instant, LoopFuture};

/// A type-erased, non-`Send` future, as task factories see task bodies.
pub type LocalBoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// A task factory (asyncio's `set_task_factory`): receives each task's body
/// and returns the body the task will run — the same one, or a wrapper
/// (instrumentation, timing, logging…).
pub type TaskFactory = Rc<dyn Fn(&EventLoop, LocalBoxFuture) -> LocalBoxFuture>;

/// What the ready queue holds: callbacks, and task steps (a task is a
/// callback that polls its future).
pub(crate) type Item = Rc<dyn crate::handle::Callback>;

/// Default for [`EventLoop::slow_callback_duration`] (asyncio: 0.1 s).
pub const DEFAULT_SLOW_CALLBACK_DURATION: Duration = Duration::from_millis(100);

pub(crate) struct Inner {
    pub(crate) host: Box<dyn Host>,
    pub(crate) mode: HostMode,
    pub(crate) ready: RefCell<Vec<Item>>,
    /// The empty queue swapped in while a batch runs (keeps its capacity).
    pub(crate) spare: RefCell<Vec<Item>>,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) running: Cell<bool>,
    pub(crate) stopping: Cell<bool>,
    pub(crate) closed: Cell<bool>,
    pub(crate) in_iteration: Cell<bool>,
    /// A driven host yielded in the middle of a batch
    /// ([`EventLoop::step_yielding`]); the rest of it waits in `spare`.
    pub(crate) partial_batch: Cell<bool>,
    /// The previous iteration asked the host for I/O (see `collect_ready`).
    pub(crate) polled_last: Cell<bool>,
    /// True while a driven host must hear about new work: running, and no
    /// iteration in progress.
    pub(crate) notify: Cell<bool>,
    pub(crate) debug: Cell<bool>,
    pub(crate) slow_callback: Cell<Duration>,
    pub(crate) exception_handler: RefCell<Option<ExceptionHandler>>,
    pub(crate) task_factory: RefCell<Option<TaskFactory>>,
    pub(crate) tasks: RefCell<Registry>,
    pub(crate) task_counter: Cell<u64>,
    pub(crate) current_task: Cell<Option<AnyTask>>,
    pub(crate) backends: crate::backend::Backends,
    pub(crate) executor: RefCell<Option<Arc<dyn crate::backend::Executor>>>,
    pub(crate) executor_shut_down: Cell<bool>,
}

/// An asyncio-style event loop: a FIFO of ready callbacks, a heap of timers,
/// tasks, and a [`Host`] underneath for time and I/O.
///
/// `EventLoop` is a cheap, clonable reference (`Rc`); it is `!Send`, so its
/// non-thread-safe methods cannot be called from the wrong thread — the
/// check asyncio's debug mode does at run time. Callbacks receive the loop
/// as their argument, so they rarely need to capture it.
///
/// ```
/// use anyloop_core::{EventLoop, testing::VirtualClock};
/// use core::time::Duration;
///
/// let lp = EventLoop::new(VirtualClock::new());
/// lp.call_soon(|_| println!("first")).unwrap();
/// lp.call_later(Duration::from_millis(10), |lp| {
///     println!("ten milliseconds later");
///     lp.stop();
/// })
/// .unwrap();
/// lp.run_forever().unwrap();
/// lp.close().unwrap();
/// ```
#[derive(Clone)]
pub struct EventLoop {
    pub(crate) inner: Rc<Inner>,
}

/// A weak reference to a loop, for hosts and long-lived objects that must
/// not keep the loop alive.
#[derive(Clone)]
pub struct WeakLoop(Weak<Inner>);

impl WeakLoop {
    /// The loop, if it still exists.
    pub fn upgrade(&self) -> Option<EventLoop> {
        self.0.upgrade().map(|inner| EventLoop { inner })
    }
}

impl fmt::Debug for WeakLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakLoop")
    }
}

pub(crate) fn closed_error() -> Error {
    Error::from_kind(ErrorKind::Closed)
}

impl EventLoop {
    /// A new loop on `host` (asyncio's `new_event_loop`, for a given host).
    /// The facade crate's `anyloop::new_event_loop()` picks the host for the
    /// compile target.
    ///
    /// Debug mode starts on if the environment variable `ANYLOOP_DEBUG` is
    /// set to a non-empty value (with `std`, where there is an environment).
    pub fn new(host: impl Host) -> EventLoop {
        let mode = host.mode();
        let shared = Arc::new(Shared::new(host.remote_waker()));
        let backends = host.backends();
        let executor = backends.executor.clone();
        EventLoop {
            inner: Rc::new(Inner {
                host: Box::new(host),
                mode,
                ready: RefCell::new(Vec::with_capacity(64)),
                spare: RefCell::new(Vec::with_capacity(64)),
                timers: RefCell::new(Timers::new()),
                shared,
                running: Cell::new(false),
                stopping: Cell::new(false),
                closed: Cell::new(false),
                in_iteration: Cell::new(false),
                partial_batch: Cell::new(false),
                polled_last: Cell::new(false),
                notify: Cell::new(false),
                debug: Cell::new(debug_from_env()),
                slow_callback: Cell::new(DEFAULT_SLOW_CALLBACK_DURATION),
                exception_handler: RefCell::new(None),
                task_factory: RefCell::new(None),
                tasks: RefCell::new(Registry::default()),
                task_counter: Cell::new(0),
                current_task: Cell::new(None),
                backends,
                executor: RefCell::new(executor),
                executor_shut_down: Cell::new(false),
            }),
        }
    }

    /// The host, downcast to its concrete type: the way to reach
    /// host-specific operations.
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, testing::VirtualClock};
    /// let lp = EventLoop::new(VirtualClock::new());
    /// assert!(lp.host::<VirtualClock>().is_some());
    /// ```
    pub fn host<H: Host>(&self) -> Option<&H> {
        self.inner.host.as_any().downcast_ref::<H>()
    }

    /// A `Send + Sync` handle for scheduling from other threads, or
    /// `Unsupported` if the host cannot be woken from another thread.
    pub fn handle(&self) -> Result<LoopHandle, Error> {
        self.inner.shared.check_threadsafe()?;
        Ok(LoopHandle { shared: self.inner.shared.clone() })
    }

    /// A weak reference to this loop.
    pub fn downgrade(&self) -> WeakLoop {
        WeakLoop(Rc::downgrade(&self.inner))
    }

    /// Whether two references name the same loop.
    pub fn ptr_eq(&self, other: &EventLoop) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// The current time on the loop's clock (asyncio's `loop.time()`).
    pub fn time(&self) -> Instant {
        self.inner.host.now()
    }

    #[inline]
    fn check_open(&self) -> Result<(), Error> {
        if self.inner.closed.get() { Err(closed_error()) } else { Ok(()) }
    }

    #[inline(always)]
    pub(crate) fn push_ready(&self, item: Item) {
        self.inner.ready.borrow_mut().push(item);
        if self.inner.notify.get() {
            self.inner.host.notify(self);
        }
    }

    /// Schedules `f` to run in the next iteration of the loop. Callbacks run
    /// in the order they were scheduled, each exactly once (unless
    /// cancelled through the returned [`Handle`]). `Closed` after
    /// [`close`](Self::close).
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, testing::VirtualClock};
    /// # use std::{cell::RefCell, rc::Rc};
    /// let lp = EventLoop::new(VirtualClock::new());
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// for i in 0..3 {
    ///     let log = log.clone();
    ///     lp.call_soon(move |_| log.borrow_mut().push(i)).unwrap();
    /// }
    /// lp.call_soon(|lp| lp.stop()).unwrap();
    /// lp.run_forever().unwrap();
    /// assert_eq!(*log.borrow(), [0, 1, 2]);
    /// ```
    #[track_caller]
    #[inline]
    pub fn call_soon<F>(&self, f: F) -> Result<Handle, Error>
    where
        F: FnOnce(&EventLoop) + 'static,
    {
        self.check_open()?;
        let h = Handle::once(f, self.inner.debug.get());
        self.push_ready(h.inner.clone());
        Ok(h)
    }

    /// Queues an existing handle (made with [`Handle::repeating`]) to run in
    /// the next iteration. Hosts use this to deliver I/O readiness, so I/O
    /// callbacks run in order with everything else.
    pub fn schedule_handle(&self, handle: &Handle) -> Result<(), Error> {
        self.check_open()?;
        if !handle.cancelled() {
            self.push_ready(handle.inner.clone());
        }
        Ok(())
    }

    /// asyncio's `call_soon_threadsafe`, called on the loop's own thread
    /// (the `EventLoop` is `!Send`; other threads use [`EventLoop::handle`]).
    /// `Unsupported` on hosts without threads to share with (the browser).
    #[track_caller]
    pub fn call_soon_threadsafe<F>(&self, f: F) -> Result<ThreadsafeHandle, Error>
    where
        F: FnOnce(&EventLoop) + Send + 'static,
    {
        self.inner.shared.check_threadsafe()?;
        self.check_open()?;
        let th = ThreadsafeHandle::new();
        let t2 = th.clone();
        self.call_soon(move |lp| {
            if t2.start() {
                f(lp)
            }
        })?;
        Ok(th)
    }

    /// Schedules `f` to run `delay` from now (never earlier). Timers due at
    /// the same instant run in the order they were scheduled.
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, testing::VirtualClock};
    /// # use core::time::Duration;
    /// let lp = EventLoop::new(VirtualClock::new());
    /// let start = lp.time();
    /// lp.call_later(Duration::from_secs(5), move |lp| {
    ///     assert!(lp.time() - start >= Duration::from_secs(5));
    ///     lp.stop();
    /// })
    /// .unwrap();
    /// lp.run_forever().unwrap();
    /// ```
    #[track_caller]
    pub fn call_later<F>(&self, delay: Duration, f: F) -> Result<TimerHandle, Error>
    where
        F: FnOnce(&EventLoop) + 'static,
    {
        self.call_at(self.time() + delay, f)
    }

    /// Schedules `f` at the absolute time `when` on the loop's clock. A time
    /// in the past runs in the next iteration.
    #[track_caller]
    pub fn call_at<F>(&self, when: Instant, f: F) -> Result<TimerHandle, Error>
    where
        F: FnOnce(&EventLoop) + 'static,
    {
        self.check_open()?;
        let th = {
            let mut timers = self.inner.timers.borrow_mut();
            let th = TimerHandle::new(when, timers.counter(), f, self.inner.debug.get());
            timers.push(when, th.as_handle().inner.clone());
            th
        };
        if self.inner.notify.get() {
            self.inner.host.notify(self);
        }
        Ok(th)
    }

    /// Number of timers in the heap and how many of those are cancelled
    /// (for tests and diagnostics).
    pub fn timer_stats(&self) -> (usize, usize) {
        let t = self.inner.timers.borrow();
        (t.len(), t.cancelled_len())
    }

    /// A new [`LoopFuture`] bound to this loop.
    pub fn create_future<T: 'static>(&self) -> LoopFuture<T> {
        LoopFuture::new(self)
    }

    /// Wraps `fut` in a [`Task`] and schedules its first step (asyncio's
    /// `create_task`). The task is named `Task-N`. Goes through the task
    /// factory, if one is set.
    #[track_caller]
    pub fn create_task<F>(&self, fut: F) -> Result<Task<F::Output>, Error>
    where
        F: Future + 'static,
    {
        self.create_task_inner(fut, None)
    }

    /// [`create_task`](Self::create_task) with a name.
    #[track_caller]
    pub fn create_task_named<F>(&self, fut: F, name: impl Into<Cow<'static, str>>) -> Result<Task<F::Output>, Error>
    where
        F: Future + 'static,
    {
        self.create_task_inner(fut, Some(name.into()))
    }

    #[track_caller]
    fn create_task_inner<F>(&self, fut: F, name: Option<Cow<'static, str>>) -> Result<Task<F::Output>, Error>
    where
        F: Future + 'static,
    {
        self.check_open()?;
        let factory = self.inner.task_factory.borrow().clone();
        let Some(factory) = factory else {
            return Ok(crate::task::spawn(self, async move { Ok(fut.await) }, name));
        };
        let slot = Rc::new(Cell::new(None));
        let out = slot.clone();
        let body: LocalBoxFuture = Box::pin(async move { out.set(Some(fut.await)) });
        let body = factory(self, body);
        let wrapped = async move {
            body.await;
            slot.take().ok_or_else(|| {
                Error::new(ErrorKind::InvalidState, "the task factory's future finished without running the task")
            })
        };
        Ok(crate::task::spawn(self, wrapped, name))
    }

    /// Sets (or with `None`, resets) the task factory.
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, testing::VirtualClock};
    /// # use std::{cell::Cell, rc::Rc};
    /// let lp = EventLoop::new(VirtualClock::new());
    /// let started = Rc::new(Cell::new(0));
    /// let s = started.clone();
    /// lp.set_task_factory(Some(Rc::new(move |_, body| {
    ///     s.set(s.get() + 1);
    ///     body
    /// })));
    /// assert_eq!(lp.run_until_complete(async { 1 }).unwrap(), 1);
    /// assert_eq!(started.get(), 1);
    /// ```
    pub fn set_task_factory(&self, factory: Option<TaskFactory>) {
        *self.inner.task_factory.borrow_mut() = factory;
    }

    /// The task factory, or `None` for the default.
    pub fn get_task_factory(&self) -> Option<TaskFactory> {
        self.inner.task_factory.borrow().clone()
    }

    /// The task being polled right now, if any (asyncio's `current_task`).
    pub fn current_task(&self) -> Option<AnyTask> {
        let t = self.inner.current_task.take();
        self.inner.current_task.set(t.clone());
        t
    }

    /// All tasks of this loop that are not done yet (asyncio's `all_tasks`).
    pub fn all_tasks(&self) -> Vec<AnyTask> {
        self.inner.tasks.borrow().all()
    }

    /// Queues a task's next step (local wake-up).
    pub(crate) fn schedule_task(&self, id: TaskId) {
        let task = self.inner.tasks.borrow().get(id).cloned();
        if let Some(t) = task {
            self.push_ready(t.into_callback());
        }
    }

    /// Moves everything other threads queued into the ready queue.
    pub(crate) fn drain_remote(&self) {
        let Some(items) = self.inner.shared.take() else { return };
        for item in items {
            match item {
                Remote::Call(f, th) => {
                    let h = Handle::once(
                        move |lp: &EventLoop| {
                            if th.start() {
                                f(lp)
                            }
                        },
                        false,
                    );
                    self.push_ready(h.inner);
                }
                Remote::Wake(id) => self.schedule_task(id),
            }
        }
    }

    /// Sets the exception handler, or restores the default with `None`.
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, testing::VirtualClock};
    /// # use std::{cell::RefCell, rc::Rc};
    /// let lp = EventLoop::new(VirtualClock::new());
    /// let seen = Rc::new(RefCell::new(String::new()));
    /// let s = seen.clone();
    /// lp.set_exception_handler(Some(Rc::new(move |_, ctx| *s.borrow_mut() = ctx.message.clone())));
    /// lp.call_soon(|_| panic!("boom")).unwrap();
    /// lp.call_soon(|lp| lp.stop()).unwrap();
    /// lp.run_forever().unwrap(); // the loop survives the panic
    /// assert!(seen.borrow().starts_with("Exception in callback"));
    /// ```
    pub fn set_exception_handler(&self, handler: Option<ExceptionHandler>) {
        *self.inner.exception_handler.borrow_mut() = handler;
    }

    /// The custom exception handler, or `None` if the default is in use.
    pub fn get_exception_handler(&self) -> Option<ExceptionHandler> {
        self.inner.exception_handler.borrow().clone()
    }

    /// The default exception handler: logs the context (the `log` crate at
    /// error level, or stderr when no logger is installed).
    pub fn default_exception_handler(&self, context: &ExceptionContext) {
        emit(log::Level::Error, format_args!("{context}"));
    }

    /// Calls the current exception handler with `context`. If a custom
    /// handler panics, the default handler reports both.
    pub fn call_exception_handler(&self, context: &ExceptionContext) {
        let handler = self.inner.exception_handler.borrow().clone();
        let Some(handler) = handler else {
            self.default_exception_handler(context);
            return;
        };
        if let Err(e) = crate::panic::catch(|| handler(self, context)) {
            let mut ctx = ExceptionContext::new(alloc::format!(
                "Unhandled error in exception handler, while handling:\n{context}"
            ));
            ctx.exception = Some(e);
            self.default_exception_handler(&ctx);
        }
    }

    /// Whether debug mode is on.
    pub fn get_debug(&self) -> bool {
        self.inner.debug.get()
    }

    /// Turns debug mode on or off. In debug mode the loop times every
    /// callback and warns about those taking at least
    /// [`slow_callback_duration`](Self::slow_callback_duration), and exception
    /// contexts carry the source location that scheduled the handle or task.
    pub fn set_debug(&self, enabled: bool) {
        self.inner.debug.set(enabled);
    }

    /// The debug-mode threshold for slow callbacks (default 100 ms).
    pub fn slow_callback_duration(&self) -> Duration {
        self.inner.slow_callback.get()
    }

    /// Sets the debug-mode threshold for slow callbacks.
    pub fn set_slow_callback_duration(&self, d: Duration) {
        self.inner.slow_callback.set(d);
    }
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("EventLoop")
            .field("running", &i.running.get())
            .field("closed", &i.closed.get())
            .field("debug", &i.debug.get())
            .field("ready", &i.ready.borrow().len())
            .field("timers", &i.timers.borrow().len())
            .field("tasks", &i.tasks.borrow().len())
            .finish()
    }
}

fn debug_from_env() -> bool {
    #[cfg(feature = "std")]
    {
        std::env::var_os("ANYLOOP_DEBUG").is_some_and(|v| !v.is_empty())
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}
