//! `EventLoop::step_yielding`: a driven host (the browser) may end a step in
//! the middle of a batch, and the order of callbacks must be exactly the one
//! an unbroken batch gives. Checked against the same program run with plain
//! `step` on a driven host whose clock the test moves by hand.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use anyloop::{Error, EventLoop, Host, HostMode, HostWaker, Instant, NoopWaker, Step};

/// A driven host with a hand-moved clock that counts `notify` calls.
#[derive(Default)]
struct Manual {
    now: Cell<Instant>,
    notified: Cell<u32>,
}

impl Host for Manual {
    fn now(&self) -> Instant {
        self.now.get()
    }
    fn wait(&self, _: &EventLoop, _: Option<Duration>) -> Result<(), Error> {
        unreachable!("a driven host is never asked to wait")
    }
    fn remote_waker(&self) -> Result<Arc<dyn HostWaker>, Error> {
        Ok(Arc::new(NoopWaker))
    }
    fn mode(&self) -> HostMode {
        HostMode::Driven
    }
    fn notify(&self, _: &EventLoop) {
        self.notified.set(self.notified.get() + 1);
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

type Log = Rc<RefCell<Vec<String>>>;

/// Ten callbacks in one batch; each schedules a follow-up; the fifth moves
/// the clock past a timer's deadline; the third calls `stop()` if asked.
fn program(lp: &EventLoop, log: &Log, stop_in_batch: bool) {
    let l = log.clone();
    lp.call_later(Duration::from_millis(1), move |_| l.borrow_mut().push("timer".into())).unwrap();
    for i in 0..10 {
        let l = log.clone();
        lp.call_soon(move |lp| {
            l.borrow_mut().push(format!("cb{i}"));
            if i == 4 {
                let h = lp.host::<Manual>().unwrap();
                h.now.set(h.now.get() + Duration::from_millis(2));
            }
            if i == 2 && stop_in_batch {
                lp.stop();
            }
            let l2 = l.clone();
            lp.call_soon(move |_| l2.borrow_mut().push(format!("next{i}"))).unwrap();
        })
        .unwrap();
    }
}

/// Runs until the log stops growing or the loop stops; returns the log and
/// how many steps it took.
fn drive(yield_every: Option<u32>, stop_in_batch: bool) -> (Vec<String>, u32, Step) {
    let lp = EventLoop::new(Manual::default());
    let log: Log = Rc::default();
    program(&lp, &log, stop_in_batch);
    lp.run_forever().unwrap();
    assert!(lp.is_running(), "a driven loop keeps running after run_forever returns");
    let mut steps = 0;
    let mut n = 0;
    let last = loop {
        steps += 1;
        let step = match yield_every {
            Some(k) => lp
                .step_yielding(&mut || {
                    n += 1;
                    n % k == 0
                })
                .unwrap(),
            None => lp.step().unwrap(),
        };
        match step {
            Step::Ready => continue,
            other => break other,
        }
    };
    if lp.is_running() {
        lp.stop();
        assert_eq!(lp.step().unwrap(), Step::Stopped);
    }
    lp.close().unwrap();
    let out = log.borrow().clone();
    (out, steps, last)
}

#[test]
fn yielding_mid_batch_keeps_asyncio_order() {
    let (plain, plain_steps, _) = drive(None, false);
    assert_eq!(plain.len(), 21);
    // Batch 1: cb0..cb9; batch 2: the timer came due *after* the follow-ups
    // were queued, so it runs after them (asyncio appends due timers).
    assert_eq!(plain[..10], (0..10).map(|i| format!("cb{i}")).collect::<Vec<_>>()[..]);
    assert_eq!(plain[20], "timer");
    for k in [1, 2, 3, 7] {
        let (yielded, steps, last) = drive(Some(k), false);
        assert_eq!(yielded, plain, "yield every {k}");
        assert!(steps > plain_steps, "yield every {k}: {steps} steps");
        assert_eq!(last, Step::Idle(None));
    }
}

#[test]
fn stop_inside_a_yielded_batch_finishes_the_batch_first() {
    for k in [None, Some(1), Some(4)] {
        let (log, _, last) = drive(k, true);
        assert_eq!(last, Step::Stopped, "yield every {k:?}");
        // The whole first batch ran, nothing it scheduled did.
        assert_eq!(log, (0..10).map(|i| format!("cb{i}")).collect::<Vec<_>>(), "yield every {k:?}");
    }
}

#[test]
fn driven_loop_notifies_only_between_steps() {
    let lp = EventLoop::new(Manual::default());
    lp.call_soon(|lp| {
        // Inside a step: no notify.
        lp.call_soon(|_| {}).unwrap();
    })
    .unwrap();
    let host = || lp.host::<Manual>().unwrap().notified.get();
    assert_eq!(host(), 0, "not running: no notify");
    lp.run_forever().unwrap();
    assert_eq!(host(), 1, "run_forever asks for the first step");
    assert_eq!(lp.step().unwrap(), Step::Ready);
    assert_eq!(host(), 1);
    assert_eq!(lp.step().unwrap(), Step::Idle(None));
    lp.call_later(Duration::from_secs(1), |_| {}).unwrap();
    assert_eq!(host(), 2, "a timer added between steps");
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let mut yields = 0;
    lp.call_soon(move |_| r.set(true)).unwrap();
    assert_eq!(host(), 3, "a callback added between steps");
    assert_eq!(
        lp.step_yielding(&mut || {
            yields += 1;
            true
        })
        .unwrap(),
        Step::Idle(Some(Instant::ZERO + Duration::from_secs(1)))
    );
    assert!(ran.get());
    assert_eq!(yields, 0, "never asked after the last callback of a batch");
    lp.stop();
    assert_eq!(host(), 4, "stop between steps");
    assert_eq!(lp.step().unwrap(), Step::Stopped);
    assert!(!lp.is_running());
    lp.close().unwrap();
}
