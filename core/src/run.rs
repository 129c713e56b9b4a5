//! Running the loop: one iteration (asyncio's `_run_once`), `run_forever`,
//! `run_until_complete`, `stop`, `close`, and the driven-host `step`.
//!
//! One iteration, exactly as asyncio orders it:
//!
//! 1. drop cancelled timers at the top of the heap (compacting it if they
//!    are more than half of it);
//! 2. wait for I/O: zero timeout if callbacks are ready or the loop is
//!    stopping, else until the earliest timer, else indefinitely (a busy
//!    iteration right after one that polled skips the zero-timeout poll,
//!    so I/O is polled at least every other iteration);
//! 3. queue the handles of I/O that became ready (the host does this),
//!    and callbacks other threads sent;
//! 4. move every timer whose deadline has passed to the ready queue;
//! 5. run as many callbacks as were ready at this point — callbacks they
//!    schedule wait for the next iteration, which is what makes `stop()`
//!    inside a batch let the rest of the batch run.

use alloc::vec::Vec;
use core::future::Future;
use core::time::Duration;

use crate::event_loop::{Item, closed_error};
use crate::exception::emit;
use crate::{Error, ErrorKind, EventLoop, ExceptionContext, HostMode, Step};

/// Asked after each callback of a batch whether to yield to the platform.
type ShouldYield<'a> = Option<&'a mut dyn FnMut() -> bool>;

impl EventLoop {
    /// One iteration. `poll_io`: wait in the host (blocking hosts).
    /// `should_yield` (driven hosts): may end the iteration in the middle of
    /// its batch; the rest of the batch runs first in the next call.
    fn run_once(&self, poll_io: bool, should_yield: ShouldYield<'_>) -> Result<(), Error> {
        let inner = &*self.inner;
        inner.in_iteration.set(true);
        inner.notify.set(false);
        let result = self.run_once_inner(poll_io, should_yield);
        inner.in_iteration.set(false);
        inner.notify.set(inner.mode == HostMode::Driven && inner.running.get() && !inner.stopping.get());
        result
    }

    fn run_once_inner(&self, poll_io: bool, should_yield: ShouldYield<'_>) -> Result<(), Error> {
        let inner = &*self.inner;
        // A batch a driven host yielded in the middle of waits in `spare`:
        // finish it before looking at I/O or timers, so the order is what
        // it would have been.
        let resume = inner.partial_batch.replace(false);
        if !resume {
            self.collect_ready(poll_io)?;
        }
        // Swap the ready queue for an empty one: the batch is exactly what
        // was ready now, and what it schedules lands in the fresh queue for
        // the next iteration — without a RefCell round trip per callback.
        let mut batch = core::mem::take(&mut *inner.spare.borrow_mut());
        if !resume {
            core::mem::swap(&mut batch, &mut *inner.ready.borrow_mut());
        }
        let debug = inner.debug.get();
        match should_yield {
            None if !debug => self.run_batch(&mut batch),
            None => {
                for item in batch.drain(..) {
                    self.run_item_timed(&item);
                }
            }
            Some(should_yield) => {
                let mut i = 0;
                while i < batch.len() {
                    if debug {
                        self.run_item_timed(&batch[i]);
                    } else {
                        self.run_item(&batch[i]);
                    }
                    i += 1;
                    if i < batch.len() && should_yield() {
                        inner.partial_batch.set(true);
                        break;
                    }
                }
                // What ran goes; the rest (if we yielded) waits in `spare`.
                batch.drain(..i);
            }
        }
        *inner.spare.borrow_mut() = batch;
        Ok(())
    }

    /// Steps 1–4 of an iteration: wait for I/O (blocking hosts), take in
    /// other threads' callbacks, and move due timers to the ready queue.
    fn collect_ready(&self, poll_io: bool) -> Result<(), Error> {
        let inner = &*self.inner;
        self.drain_remote();
        let next_timer = inner.timers.borrow_mut().next_deadline();
        let busy = inner.stopping.get() || !inner.ready.borrow().is_empty();
        // A busy iteration right after one that asked the host for I/O does
        // not ask again: the kernel was polled a moment ago, and one system
        // call per callback hand-off (an I/O callback waking a task, say)
        // would double the cost of the commonest pattern. I/O is still
        // polled at least every other iteration, and every idle wait blocks.
        let poll_io = poll_io && !(busy && inner.polled_last.get());
        inner.polled_last.set(poll_io);
        if poll_io {
            let mut timeout = if busy {
                Some(Duration::ZERO)
            } else {
                next_timer.map(|when| when.saturating_duration_since(inner.host.now()))
            };
            let sleeping = timeout != Some(Duration::ZERO);
            if sleeping && !inner.shared.prepare_sleep() {
                timeout = Some(Duration::ZERO);
            }
            let waited = inner.host.wait(self, timeout);
            if sleeping {
                inner.shared.end_sleep();
            }
            waited?;
            self.drain_remote();
        }
        if next_timer.is_some() {
            let now = inner.host.now();
            let mut ready = inner.ready.borrow_mut();
            inner.timers.borrow_mut().pop_due(now, |cb| ready.push(cb));
        }
        Ok(())
    }

    /// Runs (and empties) `batch`, dropping each item as soon as it has run
    /// so its memory is reused at once. One `catch_unwind` covers the whole
    /// batch: a panic is reported with the callback that raised it, and the
    /// rest of the batch carries on in a fresh `catch_unwind`.
    fn run_batch(&self, batch: &mut Vec<Item>) {
        let mut items = batch.drain(..);
        let mut current: Option<Item> = None;
        loop {
            let outcome = crate::panic::catch(|| {
                for item in items.by_ref() {
                    current.insert(item).run(self);
                }
            });
            match outcome {
                Ok(()) => break,
                Err(e) => match current.take() {
                    Some(item) => self.report_callback_panic(crate::Handle::from_rc(item), e),
                    None => self.report_callback_panic_unknown(e),
                },
            }
        }
    }

    #[inline]
    fn run_item(&self, item: &Item) {
        if let Err(e) = crate::panic::catch(|| item.run(self)) {
            self.report_callback_panic(crate::Handle::from_rc(item.clone()), e);
        }
    }

    #[cold]
    fn report_callback_panic_unknown(&self, e: Error) {
        let mut ctx = ExceptionContext::new("Exception in a loop callback");
        ctx.exception = Some(e);
        self.call_exception_handler(&ctx);
    }

    #[cold]
    fn report_callback_panic(&self, h: crate::Handle, e: Error) {
        let mut ctx = ExceptionContext::new(alloc::format!("Exception in callback {h:?}"));
        ctx.exception = Some(e);
        if self.get_debug() {
            ctx.source_location = h.source_location();
        }
        ctx.handle = Some(h);
        self.call_exception_handler(&ctx);
    }

    /// Debug mode: run and time one item, warning if it was slow.
    fn run_item_timed(&self, item: &Item) {
        let what = alloc::format!("{:?}", crate::Handle::from_rc(item.clone()));
        let t0 = self.inner.host.now();
        self.run_item(item);
        let took = self.inner.host.now() - t0;
        if took >= self.slow_callback_duration() {
            emit(log::Level::Warn, format_args!("Executing {what} took {:.3} seconds", took.as_secs_f64()));
        }
    }

    fn start_running(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err(closed_error());
        }
        if inner.running.get() {
            return Err(Error::from_kind(ErrorKind::AlreadyRunning));
        }
        #[cfg(feature = "std")]
        crate::context::enter(self)?;
        inner.running.set(true);
        // The first iteration of a run always polls (the spec: `stop()`
        // before `run_forever()` still polls the selector once).
        inner.polled_last.set(false);
        Ok(())
    }

    fn finish_running(&self) {
        let inner = &*self.inner;
        inner.stopping.set(false);
        inner.running.set(false);
        inner.notify.set(false);
        #[cfg(feature = "std")]
        crate::context::exit(self);
    }

    /// Runs the loop until [`stop`](Self::stop) is called.
    ///
    /// If `stop` was called before, the loop runs one iteration with a zero
    /// I/O timeout — everything already scheduled, plus I/O that is ready —
    /// and returns. If `stop` is called while it runs, the current batch of
    /// callbacks finishes, then it returns; callbacks scheduled by that
    /// batch run the next time the loop runs.
    ///
    /// Errors: `Closed`; `AlreadyRunning` if this loop (or, with `std`,
    /// another loop on this thread) is running; a host error from waiting.
    ///
    /// On a driven host (the browser) this starts the loop and returns at
    /// once; the host keeps it going until `stop`.
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, testing::VirtualClock};
    /// let lp = EventLoop::new(VirtualClock::new());
    /// lp.call_soon(|lp| {
    ///     println!("Hello World");
    ///     lp.stop();
    /// })
    /// .unwrap();
    /// lp.run_forever().unwrap();
    /// lp.close().unwrap();
    /// ```
    pub fn run_forever(&self) -> Result<(), Error> {
        self.start_running()?;
        if self.inner.mode == HostMode::Driven {
            self.inner.notify.set(true);
            self.inner.host.notify(self);
            return Ok(());
        }
        let result = loop {
            if let Err(e) = self.run_once(true, None) {
                break Err(e);
            }
            if self.inner.stopping.get() {
                break Ok(());
            }
        };
        self.finish_running();
        result
    }

    /// Driven hosts: runs one iteration without waiting (I/O is delivered by
    /// the host's own callbacks) and says when to step next. Returns
    /// [`Step::Stopped`] once `stop` took effect, or if the loop is not
    /// running.
    pub fn step(&self) -> Result<Step, Error> {
        self.step_inner(None)
    }

    /// Driven hosts: [`step`](Self::step), asking `should_yield` after each
    /// callback whether to give the platform its turn (a browser keeps its
    /// page responsive this way through a long batch). When it answers
    /// `true` the step ends there and returns [`Step::Ready`]; the rest of
    /// the batch runs first in the next step, before timers that came due
    /// meanwhile and before callbacks the batch scheduled — the order is the
    /// one an unbroken batch would have had. `stop()` takes effect once the
    /// whole batch has run.
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, Host, HostMode, HostWaker, Instant, NoopWaker, Step, Error};
    /// # use std::{any::Any, cell::RefCell, rc::Rc, sync::Arc, time::Duration};
    /// # struct Driven;
    /// # impl Host for Driven {
    /// #     fn now(&self) -> Instant { Instant::ZERO }
    /// #     fn wait(&self, _: &EventLoop, _: Option<Duration>) -> Result<(), Error> { Ok(()) }
    /// #     fn remote_waker(&self) -> Result<Arc<dyn HostWaker>, Error> { Ok(Arc::new(NoopWaker)) }
    /// #     fn mode(&self) -> HostMode { HostMode::Driven }
    /// #     fn as_any(&self) -> &dyn Any { self }
    /// # }
    /// let lp = EventLoop::new(Driven);
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// for i in 0..4 {
    ///     let log = log.clone();
    ///     lp.call_soon(move |_| log.borrow_mut().push(i)).unwrap();
    /// }
    /// lp.run_forever().unwrap(); // a driven loop: starts and returns
    /// // Yield after every second callback.
    /// let mut n = 0;
    /// let mut every_other = || { n += 1; n % 2 == 0 };
    /// assert_eq!(lp.step_yielding(&mut every_other).unwrap(), Step::Ready);
    /// assert_eq!(*log.borrow(), [0, 1]);
    /// lp.stop(); // takes effect after the batch
    /// assert_eq!(lp.step_yielding(&mut every_other).unwrap(), Step::Stopped);
    /// assert_eq!(*log.borrow(), [0, 1, 2, 3]);
    /// ```
    pub fn step_yielding(&self, should_yield: &mut dyn FnMut() -> bool) -> Result<Step, Error> {
        self.step_inner(Some(should_yield))
    }

    fn step_inner(&self, should_yield: ShouldYield<'_>) -> Result<Step, Error> {
        let inner = &*self.inner;
        if inner.closed.get() {
            return Err(closed_error());
        }
        if !inner.running.get() {
            return Ok(Step::Stopped);
        }
        self.run_once(false, should_yield)?;
        if inner.partial_batch.get() {
            return Ok(Step::Ready);
        }
        if inner.stopping.get() {
            self.finish_running();
            return Ok(Step::Stopped);
        }
        if !inner.ready.borrow().is_empty() {
            return Ok(Step::Ready);
        }
        self.drain_remote();
        if !inner.ready.borrow().is_empty() {
            return Ok(Step::Ready);
        }
        Ok(Step::Idle(inner.timers.borrow_mut().next_deadline()))
    }

    /// Runs `fut` as a task until it completes and returns its output
    /// (asyncio's `run_until_complete`).
    ///
    /// Errors: `Closed`, `AlreadyRunning`; `StoppedBeforeComplete` ("Event
    /// loop stopped before Future completed.") if [`stop`](Self::stop) ended
    /// the loop first — the task stays scheduled and continues the next time
    /// the loop runs; the task's own error if it was cancelled or panicked;
    /// `Unsupported` on a driven host, which cannot block (the browser host
    /// offers an async variant).
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, ErrorKind, testing::VirtualClock};
    /// let lp = EventLoop::new(VirtualClock::new());
    /// assert_eq!(lp.run_until_complete(async { "done" }).unwrap(), "done");
    ///
    /// let never = lp.create_future::<()>();
    /// lp.call_soon(|lp| lp.stop()).unwrap();
    /// let err = lp.run_until_complete(never).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::StoppedBeforeComplete);
    /// ```
    #[track_caller]
    pub fn run_until_complete<F>(&self, fut: F) -> Result<F::Output, Error>
    where
        F: Future + 'static,
    {
        if self.inner.closed.get() {
            return Err(closed_error());
        }
        if self.inner.running.get() {
            return Err(Error::from_kind(ErrorKind::AlreadyRunning));
        }
        if self.inner.mode == HostMode::Driven {
            return Err(Error::unsupported(
                "run_until_complete",
                "a driven host cannot block; await the future from a task, or use the host's async run_until_complete",
            ));
        }
        let task = self.create_task(fut)?;
        let cb = task.add_done_callback(|lp, _| lp.stop());
        let ran = self.run_forever();
        task.remove_done_callback(cb);
        ran?;
        if !task.done() {
            return Err(Error::from_kind(ErrorKind::StoppedBeforeComplete));
        }
        task.result()
    }

    /// Asks the loop to stop after the current batch of callbacks. Before
    /// `run_forever`, the next run does one iteration and returns.
    pub fn stop(&self) {
        let inner = &*self.inner;
        inner.stopping.set(true);
        if inner.notify.get() {
            inner.host.notify(self);
        }
    }

    /// Whether the loop is running.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether the loop was closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Closes the loop: discards pending callbacks and timers, drops the
    /// futures of tasks that are still pending (reporting each as "Task was
    /// destroyed but it is pending!"), and releases the host's resources.
    /// Idempotent; `AlreadyRunning` if the loop is running.
    pub fn close(&self) -> Result<(), Error> {
        let inner = &*self.inner;
        if inner.running.get() {
            return Err(Error::new(ErrorKind::AlreadyRunning, "Cannot close a running event loop"));
        }
        if inner.closed.replace(true) {
            return Ok(());
        }
        // Take everything out first, then drop it: dropping a closure runs
        // user code, which must find the loop closed, not borrowed.
        let remote = inner.shared.close();
        let ready = core::mem::take(&mut *inner.ready.borrow_mut());
        let timers = inner.timers.borrow_mut().take_all();
        let tasks = inner.tasks.borrow_mut().take_all();
        drop(remote);
        drop(ready);
        drop(timers);
        for task in tasks {
            if task.is_pending() {
                let mut ctx = ExceptionContext::new("Task was destroyed but it is pending!");
                ctx.source_location = Some(task.source_location());
                ctx.task = Some(task.clone());
                self.call_exception_handler(&ctx);
            }
            task.destroy(self);
        }
        self.drop_executor();
        inner.host.close(self);
        let handler = inner.exception_handler.borrow_mut().take();
        let factory = inner.task_factory.borrow_mut().take();
        drop((handler, factory));
        Ok(())
    }
}

impl EventLoop {
    /// asyncio's `asyncio.run` on this loop: runs `fut` to completion, then
    /// cancels the tasks still pending and lets them finish, shuts the
    /// default executor down, and closes the loop. Returns `fut`'s output
    /// (or the first error, with the loop closed either way).
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, testing::VirtualClock};
    /// # use core::time::Duration;
    /// let lp = EventLoop::new(VirtualClock::new());
    /// let out = lp.clone().run_and_close(async {
    ///     anyloop_core::spawn(anyloop_core::sleep(Duration::from_secs(9))).unwrap(); // left over
    ///     "done"
    /// });
    /// assert_eq!(out.unwrap(), "done");
    /// assert!(lp.is_closed());
    /// ```
    #[track_caller]
    pub fn run_and_close<F>(self, fut: F) -> Result<F::Output, Error>
    where
        F: Future + 'static,
    {
        let result = self.run_until_complete(fut);
        let cancelled = self.cancel_all_tasks();
        let executor = if self.is_closed() {
            Ok(())
        } else {
            let lp = self.clone();
            self.run_until_complete(async move { lp.shutdown_default_executor().await }).and_then(|r| r)
        };
        let closed = self.close();
        let out = result?;
        cancelled?;
        executor?;
        closed?;
        Ok(out)
    }

    /// Cancels every pending task and runs the loop until they are done
    /// (the first half of `asyncio.run`'s cleanup).
    pub fn cancel_all_tasks(&self) -> Result<(), Error> {
        if self.is_closed() || self.all_tasks().is_empty() {
            return Ok(());
        }
        let done = self.cancel_tasks();
        self.run_until_complete(done)?
    }

    /// Cancels every pending task; the returned future completes once all
    /// of them are done. Await it (or run it) to let them finish — the
    /// non-blocking form of [`cancel_all_tasks`](Self::cancel_all_tasks)
    /// for driven hosts.
    pub fn cancel_tasks(&self) -> crate::LoopFuture<()> {
        let done = self.create_future::<()>();
        let tasks = self.all_tasks();
        if tasks.is_empty() {
            let _ = done.set_result(());
            return done;
        }
        let left = alloc::rc::Rc::new(core::cell::Cell::new(tasks.len()));
        for t in &tasks {
            t.cancel(None);
            let left = left.clone();
            let done = done.clone();
            t.add_done_callback(move |_, _| {
                left.set(left.get() - 1);
                if left.get() == 0 {
                    let _ = done.set_result(());
                }
            });
        }
        done
    }
}
