//! Tasks: futures driven by the loop (asyncio's `Task`).
//!
//! A task is one `Rc` allocation holding its header (name, state, done
//! callbacks), the future (pinned in place: the allocation never moves and
//! the future is dropped where it lies), and its output until someone takes
//! it. The loop keeps every pending task in a registry (a slab indexed by
//! [`TaskId`]), which is what lets `Send + Sync` wakers name a `!Send` task:
//! a waker carries only the id and the loop's thread-safe queue.
//!
//! Waking follows asyncio: a task woken on the loop's own thread is appended
//! to the ready queue at once (where asyncio's `call_soon(task.__step)`
//! would put it); a wake from another thread goes through the thread-safe
//! queue and wakes the host. A task is queued at most once however often it
//! is woken before it runs.
//!
//! Cancellation is Rust's: [`AnyTask::cancel`] schedules the task, and its
//! next step drops the future instead of polling it. A panic while polling
//! (with `std`) ends the task with an [`ErrorKind::Panic`] error, which is
//! reported to the exception handler if nobody retrieves it ("Task exception
//! was never retrieved").

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};
use core::fmt;
use core::future::Future;
use core::panic::Location;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};

use crate::event_loop::Inner;
use crate::handle::Callback;
pub(crate) use crate::registry::Registry;
pub use crate::registry::TaskId;
use crate::remote::{Remote, Shared};
use crate::{Error, ErrorKind, EventLoop, ExceptionContext};

/// The `Send + Sync` half of a task: what its `Waker` points to.
pub(crate) struct TaskWaker {
    id: TaskId,
    shared: Arc<Shared>,
    /// Set while the task sits in a queue, so repeated wakes queue it once.
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        #[cfg(feature = "std")]
        if crate::context::schedule_local(&self.shared, self.id) {
            return;
        }
        // Another thread (or no running loop here): a closed loop drops it.
        let _ = self.shared.push(Remote::Wake(self.id));
    }
}

/// Where a task is in its life.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum State {
    Pending,
    Running,
    Done,
}

type DoneCallback = Box<dyn FnOnce(&EventLoop, &AnyTask)>;

/// Everything about a task except its future and output.
pub(crate) struct Header {
    id: TaskId,
    name: RefCell<Cow<'static, str>>,
    state: Cell<State>,
    cancel_requests: Cell<u32>,
    cancel_message: RefCell<Option<String>>,
    /// `None`: finished normally; `Some`: the error it ended with.
    error: RefCell<Option<Error>>,
    error_retrieved: Cell<bool>,
    handle_alive: Cell<bool>,
    waker_arc: Arc<TaskWaker>,
    waker: Waker,
    join_waker: RefCell<Option<Waker>>,
    callbacks: RefCell<Vec<(u64, DoneCallback)>>,
    next_callback_id: Cell<u64>,
    lp: Weak<Inner>,
    location: &'static Location<'static>,
}

/// The type-erased operations the loop needs on any task. A task is also a
/// [`Callback`]: queueing it runs its next step.
pub(crate) trait RawTask: Callback {
    fn header(&self) -> &Header;
    /// One step: drop the future if cancellation was requested, else poll it.
    fn step(self: Rc<Self>, lp: &EventLoop);
    /// Drops the future in place (loop closing); the task ends cancelled.
    fn destroy(self: Rc<Self>, lp: &EventLoop);
}

/// Typed access to the output, for [`Task<T>`].
trait TypedTask<T>: RawTask {
    fn take_output(&self) -> Option<T>;
}

/// The task allocation. `F` ends in `Ok(output)` or in the task's error.
struct TaskCell<T, F> {
    /// This task's own allocation, for the ready queue's `&self` calls.
    me: Weak<TaskCell<T, F>>,
    header: Header,
    future: RefCell<Option<F>>,
    output: RefCell<Option<T>>,
}

impl<T: 'static, F: Future<Output = Result<T, Error>> + 'static> TaskCell<T, F> {
    fn finish(self: &Rc<Self>, lp: &EventLoop, outcome: Result<T, Error>) {
        let h = &self.header;
        h.state.set(State::Done);
        match outcome {
            Ok(v) => *self.output.borrow_mut() = Some(v),
            Err(e) => *h.error.borrow_mut() = Some(e),
        }
        complete(lp, self.clone());
    }
}

/// Bookkeeping once a task is done: out of the registry, join waker woken,
/// done callbacks scheduled, and an unretrieved exception reported if no
/// handle can ever retrieve it.
fn complete(lp: &EventLoop, task: Rc<dyn RawTask>) {
    let h = task.header();
    let any = AnyTask { raw: task.clone() };
    let removed = lp.inner.tasks.borrow_mut().remove(h.id);
    drop(removed);
    if let Some(w) = h.join_waker.borrow_mut().take() {
        w.wake();
    }
    let callbacks = core::mem::take(&mut *h.callbacks.borrow_mut());
    for (_, cb) in callbacks {
        let t = any.clone();
        // A closed loop cannot run them; asyncio drops them too.
        let _ = lp.call_soon(move |lp| cb(lp, &t));
    }
    if !h.handle_alive.get() {
        report_unretrieved(lp, &any);
    }
}

fn report_unretrieved(lp: &EventLoop, task: &AnyTask) {
    let h = task.raw.header();
    let err = h.error.borrow().clone();
    if let Some(err) = err
        && !err.is_cancelled()
        && !h.error_retrieved.replace(true)
    {
        let mut ctx = ExceptionContext::new("Task exception was never retrieved");
        ctx.exception = Some(err);
        ctx.task = Some(task.clone());
        ctx.source_location = Some(h.location);
        lp.call_exception_handler(&ctx);
    }
}

impl<T: 'static, F: Future<Output = Result<T, Error>> + 'static> RawTask for TaskCell<T, F> {
    fn header(&self) -> &Header {
        &self.header
    }

    fn step(self: Rc<Self>, lp: &EventLoop) {
        let h = &self.header;
        if h.state.get() != State::Pending {
            return;
        }
        h.waker_arc.queued.store(false, Ordering::Release);
        if h.cancel_requests.get() > 0 {
            self.future.borrow_mut().take();
            let msg = h.cancel_message.borrow_mut().take();
            self.finish(lp, Err(Error::cancelled(msg.as_deref())));
            return;
        }
        h.state.set(State::Running);
        let previous = lp.inner.current_task.replace(Some(AnyTask { raw: self.clone() }));
        let result = {
            let mut slot = self.future.borrow_mut();
            let Some(fut) = slot.as_mut() else {
                drop(slot);
                lp.inner.current_task.replace(previous);
                return;
            };
            // SAFETY: the future lives inside this task's `Rc` allocation and is
            // never moved out of it: it is only ever dropped in place (by
            // assigning `None` to the slot), so pinning it here is sound.
            let fut = unsafe { Pin::new_unchecked(fut) };
            let mut cx = Context::from_waker(&h.waker);
            let r = crate::panic::catch(|| fut.poll(&mut cx));
            if !matches!(r, Ok(Poll::Pending)) {
                *slot = None;
            }
            r
        };
        lp.inner.current_task.replace(previous);
        h.state.set(State::Pending);
        match result {
            Ok(Poll::Pending) => {
                if h.cancel_requests.get() > 0 {
                    h.waker.wake_by_ref();
                }
            }
            Ok(Poll::Ready(outcome)) => self.finish(lp, outcome),
            Err(panic) => self.finish(lp, Err(panic)),
        }
    }

    fn destroy(self: Rc<Self>, lp: &EventLoop) {
        let h = &self.header;
        if h.state.get() == State::Done {
            return;
        }
        let fut = self.future.borrow_mut().take();
        drop(fut);
        h.state.set(State::Done);
        *h.error.borrow_mut() = Some(Error::new(ErrorKind::Cancelled, "the event loop was closed"));
        if let Some(w) = h.join_waker.borrow_mut().take() {
            w.wake();
        }
        let _ = lp;
    }
}

impl<T: 'static, F: Future<Output = Result<T, Error>> + 'static> Callback for TaskCell<T, F> {
    #[inline]
    fn run(&self, lp: &EventLoop) {
        if let Some(me) = self.me.upgrade() {
            me.step(lp);
        }
    }
    fn cancel(&self) {
        if let Some(me) = self.me.upgrade() {
            AnyTask { raw: me }.cancel(None);
        }
    }
    fn is_cancelled(&self) -> bool {
        false
    }
    fn location(&self) -> Option<&'static Location<'static>> {
        Some(self.header.location)
    }
    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.me.upgrade() {
            Some(me) => fmt::Debug::fmt(&AnyTask { raw: me }, f),
            None => f.write_str("<Task>"),
        }
    }
}

impl<T: 'static, F: Future<Output = Result<T, Error>> + 'static> TypedTask<T> for TaskCell<T, F> {
    fn take_output(&self) -> Option<T> {
        self.output.borrow_mut().take()
    }
}

/// A type-erased reference to a task: what exception contexts, done
/// callbacks and [`EventLoop::all_tasks`] hand out. Cloning is cheap.
#[derive(Clone)]
pub struct AnyTask {
    raw: Rc<dyn RawTask>,
}

impl AnyTask {
    pub(crate) fn into_callback(self) -> Rc<dyn Callback> {
        self.raw
    }

    pub(crate) fn destroy(self, lp: &EventLoop) {
        self.raw.destroy(lp);
    }

    pub(crate) fn is_pending(&self) -> bool {
        self.h().state.get() != State::Done
    }

    fn h(&self) -> &Header {
        self.raw.header()
    }

    /// The task's id within its loop.
    pub fn id(&self) -> TaskId {
        self.h().id
    }

    /// The task's name (`Task-N` unless set).
    pub fn get_name(&self) -> String {
        String::from(&**self.h().name.borrow())
    }

    /// Renames the task.
    pub fn set_name(&self, name: impl Into<Cow<'static, str>>) {
        *self.h().name.borrow_mut() = name.into();
    }

    /// Whether the task finished (with a result, an error, or cancelled).
    pub fn done(&self) -> bool {
        self.h().state.get() == State::Done
    }

    /// Whether the task ended cancelled.
    pub fn cancelled(&self) -> bool {
        self.done() && self.h().error.borrow().as_ref().is_some_and(Error::is_cancelled)
    }

    /// Requests cancellation: at its next step the task's future is dropped
    /// and the task ends with a `Cancelled` error carrying `msg`. Returns
    /// false if the task is already done (asyncio's `Task.cancel`).
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        let h = self.h();
        if h.state.get() == State::Done {
            return false;
        }
        h.cancel_requests.set(h.cancel_requests.get() + 1);
        if let Some(m) = msg {
            *h.cancel_message.borrow_mut() = Some(String::from(m));
        }
        h.waker.wake_by_ref();
        true
    }

    /// The number of pending cancellation requests (asyncio's `cancelling`).
    pub fn cancelling(&self) -> u32 {
        self.h().cancel_requests.get()
    }

    /// Withdraws one cancellation request; returns the number left. A task
    /// whose requests drop to zero before its next step is not cancelled.
    pub fn uncancel(&self) -> u32 {
        let h = self.h();
        let n = h.cancel_requests.get().saturating_sub(1);
        h.cancel_requests.set(n);
        n
    }

    /// The error the task ended with (`None` if it succeeded); an error if
    /// it is not done yet. Marks the error as retrieved.
    pub fn exception(&self) -> Result<Option<Error>, Error> {
        if !self.done() {
            return Err(Error::new(ErrorKind::InvalidState, "Exception is not set."));
        }
        self.h().error_retrieved.set(true);
        Ok(self.h().error.borrow().clone())
    }

    /// Calls `f` (via `call_soon`) once the task is done — at once if it
    /// already is. Returns an id for [`remove_done_callback`](Self::remove_done_callback).
    pub fn add_done_callback(&self, f: impl FnOnce(&EventLoop, &AnyTask) + 'static) -> u64 {
        let h = self.h();
        let id = h.next_callback_id.get();
        h.next_callback_id.set(id + 1);
        if self.done() {
            if let Some(inner) = h.lp.upgrade() {
                let lp = EventLoop { inner };
                let t = self.clone();
                let _ = lp.call_soon(move |lp| f(lp, &t));
            }
        } else {
            h.callbacks.borrow_mut().push((id, Box::new(f)));
        }
        id
    }

    /// Removes a done callback; returns how many were removed (0 or 1).
    pub fn remove_done_callback(&self, id: u64) -> usize {
        let mut cbs = self.h().callbacks.borrow_mut();
        let before = cbs.len();
        cbs.retain(|(i, _)| *i != id);
        before - cbs.len()
    }

    /// Where the task was created (`create_task`'s caller).
    pub fn source_location(&self) -> &'static Location<'static> {
        self.h().location
    }

    /// Whether two references name the same task.
    pub fn ptr_eq(&self, other: &AnyTask) -> bool {
        Rc::ptr_eq(&self.raw, &other.raw)
    }
}

impl fmt::Debug for AnyTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.h();
        let state = match (h.state.get(), &*h.error.borrow()) {
            (State::Done, Some(e)) if e.is_cancelled() => "cancelled",
            (State::Done, Some(_)) => "finished with error",
            (State::Done, None) => "finished",
            _ => "pending",
        };
        write!(f, "<Task {} name={:?} {}:{}>", state, &**h.name.borrow(), h.location.file(), h.location.line())
    }
}

/// A task returned by [`EventLoop::create_task`]: await it for the output,
/// or use it like asyncio's `Task` (name, cancel, done callbacks).
///
/// Awaiting gives `Ok(output)`, or the error the task ended with
/// (`Cancelled`, or `Panic` with `std`). The output is moved out on the
/// first retrieval; [`AnyTask`] (from [`Task::as_any`]) is the shareable,
/// output-less view.
///
/// Dropping a `Task` detaches it: it keeps running. If it ends with an error
/// nobody retrieved, the loop's exception handler hears about it.
///
/// ```
/// # use anyloop_core::{EventLoop, testing::VirtualClock};
/// let lp = EventLoop::new(VirtualClock::new());
/// let task = lp.create_task(async { 6 * 7 }).unwrap();
/// task.set_name("answer");
/// let out = lp.run_until_complete(task).unwrap();
/// assert_eq!(out.unwrap(), 42);
/// ```
pub struct Task<T> {
    raw: Rc<dyn TypedTask<T>>,
}

impl<T: 'static> Task<T> {
    /// The output-less view of this task, cheap to clone and store.
    pub fn as_any(&self) -> AnyTask {
        AnyTask { raw: self.raw.clone() }
    }

    /// The output, if the task is done and it was not taken yet; the task's
    /// error if it failed; `InvalidState` if it is still running.
    pub fn result(&self) -> Result<T, Error> {
        let h = self.raw.header();
        if h.state.get() != State::Done {
            return Err(Error::new(ErrorKind::InvalidState, "Result is not set."));
        }
        if let Some(e) = h.error.borrow().clone() {
            h.error_retrieved.set(true);
            return Err(e);
        }
        self.raw.take_output().ok_or_else(|| Error::new(ErrorKind::InvalidState, "the task's result was already taken"))
    }

    /// See [`AnyTask::get_name`].
    pub fn get_name(&self) -> String {
        self.as_any().get_name()
    }
    /// See [`AnyTask::set_name`].
    pub fn set_name(&self, name: impl Into<Cow<'static, str>>) {
        self.as_any().set_name(name)
    }
    /// See [`AnyTask::done`].
    pub fn done(&self) -> bool {
        self.raw.header().state.get() == State::Done
    }
    /// See [`AnyTask::cancelled`].
    pub fn cancelled(&self) -> bool {
        self.as_any().cancelled()
    }
    /// See [`AnyTask::cancel`].
    pub fn cancel(&self, msg: Option<&str>) -> bool {
        self.as_any().cancel(msg)
    }
    /// See [`AnyTask::cancelling`].
    pub fn cancelling(&self) -> u32 {
        self.raw.header().cancel_requests.get()
    }
    /// See [`AnyTask::uncancel`].
    pub fn uncancel(&self) -> u32 {
        self.as_any().uncancel()
    }
    /// See [`AnyTask::exception`].
    pub fn exception(&self) -> Result<Option<Error>, Error> {
        self.as_any().exception()
    }
    /// See [`AnyTask::add_done_callback`].
    pub fn add_done_callback(&self, f: impl FnOnce(&EventLoop, &AnyTask) + 'static) -> u64 {
        self.as_any().add_done_callback(f)
    }
    /// See [`AnyTask::remove_done_callback`].
    pub fn remove_done_callback(&self, id: u64) -> usize {
        self.as_any().remove_done_callback(id)
    }
    /// See [`AnyTask::id`].
    pub fn id(&self) -> TaskId {
        self.raw.header().id
    }
}

impl<T: 'static> Future for Task<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let h = self.raw.header();
        if h.state.get() == State::Done {
            return Poll::Ready(self.result());
        }
        let mut slot = h.join_waker.borrow_mut();
        match slot.as_ref() {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        let h = self.raw.header();
        h.handle_alive.set(false);
        if h.state.get() == State::Done
            && let Some(inner) = h.lp.upgrade()
        {
            let lp = EventLoop { inner };
            report_unretrieved(&lp, &AnyTask { raw: self.raw.clone() });
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&AnyTask { raw: self.raw.clone() }, f)
    }
}

/// Creates a task on `lp` (which must not be closed) and queues its first
/// step. Used by [`EventLoop::create_task`] after the factory ran.
#[track_caller]
pub(crate) fn spawn<T, F>(lp: &EventLoop, fut: F, name: Option<Cow<'static, str>>) -> Task<T>
where
    T: 'static,
    F: Future<Output = Result<T, Error>> + 'static,
{
    let inner = &lp.inner;
    let id = inner.tasks.borrow_mut().reserve();
    let waker_arc = Arc::new(TaskWaker { id, shared: inner.shared.clone(), queued: AtomicBool::new(true) });
    let name = name.unwrap_or_else(|| {
        let n = inner.task_counter.get() + 1;
        inner.task_counter.set(n);
        Cow::Owned(alloc::format!("Task-{n}"))
    });
    let cell = Rc::new_cyclic(|me| TaskCell {
        me: me.clone(),
        header: Header {
            id,
            name: RefCell::new(name),
            state: Cell::new(State::Pending),
            cancel_requests: Cell::new(0),
            cancel_message: RefCell::new(None),
            error: RefCell::new(None),
            error_retrieved: Cell::new(false),
            handle_alive: Cell::new(true),
            waker: Waker::from(waker_arc.clone()),
            waker_arc,
            join_waker: RefCell::new(None),
            callbacks: RefCell::new(Vec::new()),
            next_callback_id: Cell::new(0),
            lp: Rc::downgrade(inner),
            location: Location::caller(),
        },
        future: RefCell::new(Some(fut)),
        output: RefCell::new(None),
    });
    let any = AnyTask { raw: cell.clone() };
    inner.tasks.borrow_mut().fill(id, any.clone());
    lp.push_ready(any.into_callback());
    Task { raw: cell }
}
