//! Time for `async` code: [`Sleep`], [`Timeout`], [`Interval`].
//!
//! Each is a future backed by one loop timer (`call_at`) that wakes the
//! awaiting task. The timer is armed on first poll and cancelled when the
//! future is dropped, so cancelling a sleeping task removes its timer.
//! Deadlines are checked against the loop's clock on every poll: like the
//! callbacks underneath, these futures never complete early.
//!
//! The loop is either given (`lp.sleep(d)`) or, with `std`, the running
//! loop found at first poll (`anyloop::sleep(d)`). Polled outside any
//! anyloop loop, a `Sleep` cannot ever complete: it reports that once
//! through the diagnostics channel and stays pending.

use alloc::rc::Rc;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;

use crate::{Error, ErrorKind, EventLoop, Instant, TimerHandle};

/// When the deadline is known: an absolute instant, or a delay measured
/// from the first poll (when the loop, and so its clock, is known).
#[derive(Copy, Clone, Debug)]
enum Deadline {
    At(Instant),
    After(Duration),
}

/// The timer behind a [`Sleep`]: armed on first poll, cancelled on drop.
#[derive(Debug)]
struct Alarm {
    lp: Option<EventLoop>,
    deadline: Deadline,
    timer: Option<TimerHandle>,
    waker: Rc<RefCell<Option<Waker>>>,
    reported: bool,
}

impl Alarm {
    fn new(lp: Option<EventLoop>, deadline: Deadline) -> Alarm {
        Alarm { lp, deadline, timer: None, waker: Rc::default(), reported: false }
    }

    fn lp(&mut self) -> Option<&EventLoop> {
        #[cfg(feature = "std")]
        if self.lp.is_none() {
            self.lp = crate::get_running_loop().ok();
        }
        self.lp.as_ref()
    }

    /// `Ready` once the deadline passed on the loop's clock.
    fn poll_alarm(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(lp) = self.lp().cloned() else {
            if !self.reported {
                self.reported = true;
                crate::exception::emit(
                    log::Level::Error,
                    format_args!("an anyloop timer future was polled outside of an anyloop event loop"),
                );
            }
            return Poll::Pending;
        };
        let when = match self.deadline {
            Deadline::At(t) => t,
            Deadline::After(d) => {
                let t = lp.time() + d;
                self.deadline = Deadline::At(t);
                t
            }
        };
        if lp.time() >= when {
            return Poll::Ready(());
        }
        {
            let mut slot = self.waker.borrow_mut();
            match slot.as_ref() {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        if self.timer.is_none() {
            let waker = self.waker.clone();
            // On a closed loop nothing can run any more; the task owning
            // this future is being torn down with it.
            self.timer = lp
                .call_at(when, move |_| {
                    if let Some(w) = waker.borrow_mut().take() {
                        w.wake();
                    }
                })
                .ok();
        }
        Poll::Pending
    }

    fn reset(&mut self, deadline: Deadline) {
        if let Some(t) = self.timer.take() {
            t.cancel();
        }
        self.deadline = deadline;
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.cancel();
        }
    }
}

/// A future that completes at a deadline (asyncio's `sleep`). See
/// [`sleep`](crate::sleep), [`EventLoop::sleep`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    alarm: Alarm,
}

impl Sleep {
    /// The deadline, once known (a relative sleep learns it at first poll).
    pub fn deadline(&self) -> Option<Instant> {
        match self.alarm.deadline {
            Deadline::At(t) => Some(t),
            Deadline::After(_) => None,
        }
    }

    /// Moves the deadline; the sleep can be awaited again.
    pub fn reset(&mut self, deadline: Instant) {
        self.alarm.reset(Deadline::At(deadline));
    }
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.alarm.poll_alarm(cx)
    }
}

/// Completes after `duration` on the running loop's clock (asyncio's
/// `asyncio.sleep`). Dropping it cancels its timer.
///
/// ```
/// # use anyloop_core::{EventLoop, testing::VirtualClock};
/// # use core::time::Duration;
/// let lp = EventLoop::new(VirtualClock::new());
/// let start = lp.time();
/// lp.run_until_complete(async { anyloop_core::sleep(Duration::from_secs(5)).await }).unwrap();
/// assert!(lp.time() - start >= Duration::from_secs(5));
/// ```
#[cfg(feature = "std")]
pub fn sleep(duration: Duration) -> Sleep {
    Sleep { alarm: Alarm::new(None, Deadline::After(duration)) }
}

/// Completes at `deadline` on the running loop's clock.
#[cfg(feature = "std")]
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep { alarm: Alarm::new(None, Deadline::At(deadline)) }
}

/// The future of [`timeout`](crate::timeout): the inner future's output, or
/// a `TimedOut` error once the deadline passed (the inner future is then
/// dropped, which cancels whatever it was doing).
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    inner: Option<F>,
    alarm: Alarm,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of
        // `self` while pinned — only polled in place or dropped in place
        // (by assigning `None`). `alarm` is not pinned (it is `Unpin`) and is
        // only accessed by `&mut`.
        let this = unsafe { self.get_unchecked_mut() };
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(Err(Error::new(ErrorKind::InvalidState, "Timeout polled after completion")));
        };
        // SAFETY: see above; `inner` stays where it is until dropped.
        let inner = unsafe { Pin::new_unchecked(inner) };
        if let Poll::Ready(v) = inner.poll(cx) {
            this.inner = None;
            return Poll::Ready(Ok(v));
        }
        if this.alarm.lp().is_none() {
            return Poll::Ready(Err(Error::from_kind(ErrorKind::NoRunningLoop)));
        }
        match this.alarm.poll_alarm(cx) {
            Poll::Ready(()) => {
                this.inner = None;
                Poll::Ready(Err(Error::new(ErrorKind::TimedOut, "timed out")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Runs `fut` with a time limit (asyncio's `wait_for` / `asyncio.timeout`):
/// its output, or `ErrorKind::TimedOut` after `duration`, when `fut` is
/// dropped (cancelled).
///
/// ```
/// # use anyloop_core::{EventLoop, ErrorKind, testing::VirtualClock};
/// # use core::time::Duration;
/// let lp = EventLoop::new(VirtualClock::new());
/// let never = lp.create_future::<()>();
/// let r = lp.run_until_complete(anyloop_core::timeout(Duration::from_secs(1), never)).unwrap();
/// assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
/// ```
#[cfg(feature = "std")]
pub fn timeout<F: Future>(duration: Duration, fut: F) -> Timeout<F> {
    Timeout { inner: Some(fut), alarm: Alarm::new(None, Deadline::After(duration)) }
}

/// asyncio's name for [`timeout`].
#[cfg(feature = "std")]
pub fn wait_for<F: Future>(fut: F, duration: Duration) -> Timeout<F> {
    timeout(duration, fut)
}

/// Ticks at a fixed period: `start`, `start + period`, … If the loop falls
/// behind, missed ticks complete at once, one after another, until it has
/// caught up ("burst", like tokio's default).
#[derive(Debug)]
pub struct Interval {
    alarm: Alarm,
    period: Duration,
}

impl Interval {
    /// Waits for the next tick and returns its scheduled time.
    ///
    /// ```
    /// # use anyloop_core::{EventLoop, testing::VirtualClock};
    /// # use core::time::Duration;
    /// let lp = EventLoop::new(VirtualClock::new());
    /// let ticks = lp
    ///     .run_until_complete(async {
    ///         let mut every = anyloop_core::interval(Duration::from_millis(10));
    ///         let first = every.tick().await;
    ///         let second = every.tick().await;
    ///         second - first
    ///     })
    ///     .unwrap();
    /// assert_eq!(ticks, Duration::from_millis(10));
    /// ```
    pub async fn tick(&mut self) -> Instant {
        core::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        match self.alarm.poll_alarm(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let Deadline::At(now_tick) = self.alarm.deadline else { return Poll::Pending };
                self.alarm.timer = None;
                self.alarm.deadline = Deadline::At(now_tick + self.period);
                Poll::Ready(now_tick)
            }
        }
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }
}

/// An [`Interval`] whose first tick is immediate.
#[cfg(feature = "std")]
pub fn interval(period: Duration) -> Interval {
    Interval { alarm: Alarm::new(None, Deadline::After(Duration::ZERO)), period }
}

/// Yields to the loop once: the task is queued behind everything already
/// ready and resumes in the next iteration.
///
/// ```
/// # use anyloop_core::{EventLoop, testing::VirtualClock};
/// let lp = EventLoop::new(VirtualClock::new());
/// lp.run_until_complete(async { anyloop_core::yield_now().await }).unwrap();
/// ```
pub async fn yield_now() {
    let mut yielded = false;
    core::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

impl EventLoop {
    /// A [`Sleep`] of `duration` on this loop.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        Sleep { alarm: Alarm::new(Some(self.clone()), Deadline::After(duration)) }
    }

    /// A [`Sleep`] until `deadline` on this loop.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep { alarm: Alarm::new(Some(self.clone()), Deadline::At(deadline)) }
    }

    /// [`timeout`](crate::timeout) on this loop.
    pub fn timeout<F: Future>(&self, duration: Duration, fut: F) -> Timeout<F> {
        Timeout { inner: Some(fut), alarm: Alarm::new(Some(self.clone()), Deadline::After(duration)) }
    }

    /// An [`Interval`] on this loop, first tick immediate.
    pub fn interval(&self, period: Duration) -> Interval {
        Interval { alarm: Alarm::new(Some(self.clone()), Deadline::After(Duration::ZERO)), period }
    }
}
