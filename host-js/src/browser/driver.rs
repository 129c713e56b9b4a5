//! The driver: what makes a driven loop go in a page.
//!
//! The loop never blocks here; the browser calls it. Two browser event
//! sources do, both owned by the driver:
//!
//! * a private `MessageChannel`. Posting a message queues a macrotask that
//!   *pumps* the loop (runs [`EventLoop::step_yielding`] until nothing is
//!   ready or the time slice is used up). A macrotask, because a microtask
//!   chain would keep the browser from rendering and handling input until
//!   the loop ran dry; a message, because `setTimeout(0)` is clamped to 4 ms
//!   once timeouts nest five deep. At most one message is in flight.
//! * **one** `setTimeout`, for the loop's earliest deadline, re-armed when
//!   the deadline changes and cleared when there is none. When it fires it
//!   posts a message rather than pumping from inside the timer task: the
//!   pump re-arms the timer, and a `setTimeout` called from a timer task
//!   counts as nested and gets clamped, a ticker of 1 ms would become 4 ms.
//!
//! Yielding: the pump asks after each callback whether its time slice is
//! over. Reading `performance.now()` costs a call into JS, so the question
//! is answered from a countdown, and the clock is read every `stride`
//! callbacks; the stride doubles while callbacks are quick (up to
//! [`MAX_STRIDE`]) and falls back to 1 as soon as they are not, so a burst of
//! slow callbacks overruns its slice by at most one callback, and a burst of
//! trivial ones does not pay for a clock read each.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::task::Waker;
use std::time::Duration;

use anyloop_core::{Error, EventLoop, Instant, Step, WeakLoop};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{MessageChannel, MessagePort};

use crate::browser::js;

/// How long one pump may run callbacks before yielding to the browser:
/// 5 ms, as React's scheduler, well inside a 60 Hz frame's 16 ms.
pub(crate) const DEFAULT_TIME_SLICE: Duration = Duration::from_millis(5);

/// Most callbacks run between two reads of the clock.
const MAX_STRIDE: u32 = 32;

/// Clock reads closer together than this (ms) mean "callbacks are quick".
const QUICK_MS: f64 = 0.02;

/// Counters of what the driver did, for tests and diagnostics
/// ([`JsHost::stats`](crate::JsHost::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Macrotasks that ran loop steps.
    pub pumps: u64,
    /// Pumps that ended by yielding to the browser with callbacks still
    /// ready (the time slice was used up).
    pub yields: u64,
    /// `setTimeout` calls: one per arming of the loop's single timer.
    pub timers_armed: u64,
    /// Whether the browser timer is armed right now.
    pub timer_armed: bool,
    /// The longest a pump kept the browser waiting: the page's worst
    /// stall caused by the loop (a time slice plus the callback that
    /// overran it).
    pub longest_pump: Duration,
    /// Time spent in pumps, all told (`busy / pumps` is the typical stall).
    pub busy: Duration,
}

struct ArmedTimer {
    id: JsValue,
    deadline: Instant,
}

pub(crate) struct Driver {
    lp: RefCell<Option<WeakLoop>>,
    /// The running loop keeps itself alive: a page that calls
    /// `run_forever()` and drops its last `EventLoop` still has a loop
    /// until `stop()` (then this reference goes, and the loop with it).
    keep_alive: RefCell<Option<EventLoop>>,
    receiver: MessagePort,
    sender: MessagePort,
    /// Kept alive for JS, which calls it; never called from Rust.
    _on_message: Closure<dyn FnMut()>,
    on_timer: Closure<dyn FnMut()>,
    posted: Cell<bool>,
    timer: RefCell<Option<ArmedTimer>>,
    slice: Cell<Duration>,
    shut_down: Cell<bool>,
    stop_waiters: RefCell<Vec<Waker>>,
    stats: Cell<DriverStats>,
}

impl Driver {
    pub(crate) fn new() -> Result<Rc<Driver>, Error> {
        let channel = MessageChannel::new().map_err(|e| {
            crate::error_from_js(e).context("the browser host needs MessageChannel, which this JS environment lacks")
        })?;
        Ok(Rc::new_cyclic(|me: &Weak<Driver>| {
            let m = me.clone();
            let on_message = Closure::<dyn FnMut()>::new(move || {
                if let Some(d) = m.upgrade() {
                    d.pump();
                }
            });
            let t = me.clone();
            let on_timer = Closure::<dyn FnMut()>::new(move || {
                if let Some(d) = t.upgrade() {
                    d.timer.borrow_mut().take();
                    d.post();
                }
            });
            let receiver = channel.port1();
            // Setting `onmessage` also starts the port.
            receiver.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            Driver {
                lp: RefCell::new(None),
                keep_alive: RefCell::new(None),
                receiver,
                sender: channel.port2(),
                _on_message: on_message,
                on_timer,
                posted: Cell::new(false),
                timer: RefCell::new(None),
                slice: Cell::new(DEFAULT_TIME_SLICE),
                shut_down: Cell::new(false),
                stop_waiters: RefCell::new(Vec::new()),
                stats: Cell::new(DriverStats::default()),
            }
        }))
    }

    fn bump(&self, f: impl FnOnce(&mut DriverStats)) {
        let mut s = self.stats.get();
        f(&mut s);
        self.stats.set(s);
    }

    pub(crate) fn stats(&self) -> DriverStats {
        let mut s = self.stats.get();
        s.timer_armed = self.timer.borrow().is_some();
        s
    }

    pub(crate) fn reset_stats(&self) {
        self.stats.set(DriverStats::default());
    }

    pub(crate) fn time_slice(&self) -> Duration {
        self.slice.get()
    }

    pub(crate) fn set_time_slice(&self, slice: Duration) {
        self.slice.set(slice);
    }

    /// The loop asked for a step (work arrived, `run_forever`, `stop`).
    pub(crate) fn notify(&self, lp: &EventLoop) {
        if self.lp.borrow().is_none() {
            *self.lp.borrow_mut() = Some(lp.downgrade());
        }
        if lp.is_running() && self.keep_alive.borrow().is_none() {
            *self.keep_alive.borrow_mut() = Some(lp.clone());
        }
        self.post();
    }

    /// Queues one pump macrotask, unless one is queued already.
    fn post(&self) {
        if self.shut_down.get() || self.posted.replace(true) {
            return;
        }
        if let Err(e) = self.sender.post_message(&JsValue::UNDEFINED) {
            // Only a closed port throws; fall back on the timer.
            self.posted.set(false);
            report(&crate::error_from_js(e).context("anyloop: MessagePort.postMessage failed"));
            self.arm(Some(js::now()));
        }
    }

    /// Runs the loop for one time slice.
    fn pump(&self) {
        self.posted.set(false);
        let lp = self.lp.borrow().as_ref().and_then(WeakLoop::upgrade);
        let Some(lp) = lp else { return };
        if self.shut_down.get() {
            return;
        }
        self.bump(|s| s.pumps += 1);
        let start = js::performance_now();
        let end = start + self.slice.get().as_secs_f64() * 1000.0;
        let mut budget = Budget { end, last: start, stride: 1, countdown: 1, expired: false };
        self.run_slice(&lp, &mut budget);
        let took = Duration::from_secs_f64((js::performance_now() - start).max(0.0) / 1000.0);
        self.bump(|s| {
            s.longest_pump = s.longest_pump.max(took);
            s.busy += took;
        });
    }

    fn run_slice(&self, lp: &EventLoop, budget: &mut Budget) {
        loop {
            match lp.step_yielding(&mut || budget.used_up()) {
                Ok(Step::Ready) => {
                    // Between steps as within them: the clock is read
                    // every `stride` callbacks.
                    if budget.used_up() {
                        self.bump(|s| s.yields += 1);
                        self.post();
                        return;
                    }
                }
                Ok(Step::Idle(deadline)) => {
                    self.arm(deadline);
                    return;
                }
                Ok(Step::Stopped) => {
                    self.arm(None);
                    self.wake_stop_waiters();
                    // May drop the loop, and with it this driver (the
                    // closure calling us holds it until we return).
                    let lp = self.keep_alive.borrow_mut().take();
                    drop(lp);
                    return;
                }
                Err(e) => {
                    self.arm(None);
                    report(&e.context("anyloop: the loop failed to step"));
                    self.wake_stop_waiters();
                    let lp = self.keep_alive.borrow_mut().take();
                    drop(lp);
                    return;
                }
            }
        }
    }

    /// Arms the one browser timer for `deadline`, or clears it (`None`).
    fn arm(&self, deadline: Option<Instant>) {
        let mut timer = self.timer.borrow_mut();
        if let (Some(t), Some(d)) = (timer.as_ref(), deadline)
            && t.deadline == d
        {
            return;
        }
        if let Some(t) = timer.take() {
            js::clear_timeout(&t.id);
        }
        let Some(deadline) = deadline else { return };
        if self.shut_down.get() {
            return;
        }
        // Round up: a timer must never make the loop look early. If the
        // browser fires a hair early anyway (its clock is coarsened), the
        // step finds nothing due and the timer is armed again.
        let ms = (deadline.saturating_duration_since(js::now()).as_nanos() as f64 / 1_000_000.0).ceil();
        let id = js::set_timeout(self.on_timer.as_ref().unchecked_ref(), ms);
        *timer = Some(ArmedTimer { id, deadline });
        drop(timer);
        self.bump(|s| s.timers_armed += 1);
    }

    pub(crate) fn add_stop_waiter(&self, waker: &Waker) {
        let mut w = self.stop_waiters.borrow_mut();
        if !w.iter().any(|x| x.will_wake(waker)) {
            w.push(waker.clone());
        }
    }

    fn wake_stop_waiters(&self) {
        let waiters = std::mem::take(&mut *self.stop_waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }

    /// The loop is closing: release the timer and the message listener.
    pub(crate) fn shutdown(&self) {
        if self.shut_down.replace(true) {
            return;
        }
        self.arm(None);
        self.receiver.set_onmessage(None);
        self.receiver.close();
        self.sender.close();
        self.wake_stop_waiters();
        let lp = self.keep_alive.borrow_mut().take();
        drop(lp);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The closures die with the driver: JS must not call them after.
        self.shutdown();
    }
}

/// The time slice of one pump, checked cheaply (see the module docs).
struct Budget {
    end: f64,
    last: f64,
    stride: u32,
    countdown: u32,
    /// Once used up, it stays used up (a step that yielded mid-batch
    /// returns `Ready`, and the pump asks again).
    expired: bool,
}

impl Budget {
    fn used_up(&mut self) -> bool {
        if self.expired {
            return true;
        }
        self.countdown -= 1;
        if self.countdown > 0 {
            return false;
        }
        let now = js::performance_now();
        if now >= self.end {
            self.expired = true;
            return true;
        }
        self.stride = if now - self.last < QUICK_MS { (self.stride * 2).min(MAX_STRIDE) } else { 1 };
        self.last = now;
        self.countdown = self.stride;
        false
    }
}

/// Reports an error the loop cannot hand to anyone: the browser console.
pub(crate) fn report(e: &Error) {
    web_sys::console::error_1(&JsValue::from_str(&e.to_string()));
}
