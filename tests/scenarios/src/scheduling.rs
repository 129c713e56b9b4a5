//! Scheduling scenarios: call_soon order, timers, cancel, stop, tasks.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use anyloop::EventLoop;

use crate::{Done, Scenario, check};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario { name: "call_soon_fifo", start: call_soon_fifo },
    Scenario { name: "timers_ordered_never_early", start: timers_ordered_never_early },
    Scenario { name: "cancelled_timer_never_runs", start: cancelled_timer_never_runs },
    Scenario { name: "stop_inside_batch", start: stop_inside_batch },
    Scenario { name: "task_awaits_future", start: task_awaits_future },
    // wasm targets abort on panic: there is nothing to catch there.
    #[cfg(panic = "unwind")]
    Scenario { name: "panic_reaches_exception_handler", start: panic_reaches_exception_handler },
];

fn call_soon_fifo(lp: &EventLoop, done: Done) {
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..100 {
        let log = log.clone();
        let _ = lp.call_soon(move |_| log.borrow_mut().push(i));
    }
    let _ = lp.call_soon(move |lp| {
        let got = log.borrow().clone();
        done.finish(lp, check(got == (0..100).collect::<Vec<_>>(), || format!("order: {got:?}")));
    });
}

fn timers_ordered_never_early(lp: &EventLoop, done: Done) {
    let start = lp.time();
    let log = Rc::new(RefCell::new(Vec::new()));
    // Deliberately scheduled out of order; two share a deadline.
    for (i, ms) in [(0, 30u64), (1, 10), (2, 20), (3, 10), (4, 0)] {
        let log = log.clone();
        let _ = lp.call_later(Duration::from_millis(ms), move |lp| {
            log.borrow_mut().push((i, ms, lp.time() - start));
        });
    }
    let _ = lp.call_later(Duration::from_millis(40), move |lp| {
        let got = log.borrow().clone();
        let order: Vec<usize> = got.iter().map(|e| e.0).collect();
        let early: Vec<_> = got.iter().filter(|(_, ms, at)| *at < Duration::from_millis(*ms)).collect();
        let v = check(order == [4, 1, 3, 2, 0], || format!("order {order:?}"))
            .and(check(early.is_empty(), || format!("fired early: {early:?}")));
        done.finish(lp, v);
    });
}

fn cancelled_timer_never_runs(lp: &EventLoop, done: Done) {
    let ran = Rc::new(RefCell::new(false));
    let r = ran.clone();
    let h = lp.call_later(Duration::from_millis(5), move |_| *r.borrow_mut() = true);
    if let Ok(h) = &h {
        h.cancel();
    }
    let _ = lp.call_later(Duration::from_millis(20), move |lp| {
        let cancelled = h.as_ref().map(|h| h.cancelled()).unwrap_or(false);
        done.finish(lp, check(!*ran.borrow() && cancelled, || "cancelled timer ran".into()));
    });
}

fn stop_inside_batch(lp: &EventLoop, done: Done) {
    // Three callbacks in one batch; the first stops the loop. The other two
    // still run; one scheduled by the batch waits for the next run.
    let log = Rc::new(RefCell::new(Vec::new()));
    let l1 = log.clone();
    let _ = lp.call_soon(move |lp| {
        l1.borrow_mut().push("a");
        lp.stop();
        let l = l1.clone();
        let _ = lp.call_soon(move |_| l.borrow_mut().push("later"));
    });
    let l2 = log.clone();
    let _ = lp.call_soon(move |_| l2.borrow_mut().push("b"));
    let l3 = log.clone();
    let _ = lp.call_soon(move |lp| {
        l3.borrow_mut().push("c");
        // Checked in the next run of the loop, after the stop took effect.
        let log = l3.clone();
        let _ = lp.call_soon(move |lp| {
            let got = log.borrow().clone();
            done.finish(lp, check(got == ["a", "b", "c", "later"], || format!("{got:?}")));
        });
    });
}

fn task_awaits_future(lp: &EventLoop, done: Done) {
    let fut = lp.create_future::<u32>();
    let setter = fut.clone();
    let _ = lp.call_later(Duration::from_millis(5), move |_| {
        let _ = setter.set_result(21);
    });
    let task = lp.create_task(async move { fut.await.map(|v| v * 2) });
    match task {
        Ok(task) => {
            task.add_done_callback(move |lp, t| {
                let v = match t.exception() {
                    Ok(None) => Ok(()),
                    other => Err(format!("task failed: {other:?}")),
                };
                done.finish(lp, v);
            });
        }
        Err(e) => done.finish(lp, Err(format!("create_task: {e}"))),
    }
}

#[cfg(panic = "unwind")]
fn panic_reaches_exception_handler(lp: &EventLoop, done: Done) {
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    lp.set_exception_handler(Some(Rc::new(move |_, ctx| {
        *s.borrow_mut() = Some(ctx.message.clone());
    })));
    let _ = lp.call_soon(|_| panic!("scenario panic"));
    let _ = lp.call_soon(move |lp| {
        let msg = seen.borrow().clone();
        let v = check(msg.as_deref().is_some_and(|m| m.starts_with("Exception in callback")), || {
            format!("handler saw {msg:?}")
        });
        done.finish(lp, v);
    });
}
