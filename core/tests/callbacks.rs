//! call_soon, call_later, call_at, handles and the timer heap, on the
//! deterministic virtual clock.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use anyloop_core::testing::VirtualClock;
use anyloop_core::{EventLoop, Instant};

fn new_loop() -> EventLoop {
    EventLoop::new(VirtualClock::new())
}

/// Runs the loop until `run_forever` returns (a callback stops it).
fn run(lp: &EventLoop) {
    lp.run_forever().unwrap();
}

#[test]
fn callbacks_run_fifo_each_exactly_once() {
    let lp = new_loop();
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..1000 {
        let log = log.clone();
        lp.call_soon(move |_| log.borrow_mut().push(i)).unwrap();
    }
    lp.call_soon(|lp| lp.stop()).unwrap();
    run(&lp);
    assert_eq!(*log.borrow(), (0..1000).collect::<Vec<_>>());
    // Nothing runs twice.
    lp.call_soon(|lp| lp.stop()).unwrap();
    run(&lp);
    assert_eq!(log.borrow().len(), 1000);
}

#[test]
fn a_callback_scheduled_by_a_callback_runs_in_the_next_iteration() {
    let lp = new_loop();
    let iteration_of = Rc::new(RefCell::new(Vec::new()));
    // A sentinel re-scheduling itself marks iterations: the child of the
    // first callback must run after the second top-level callback.
    let log = iteration_of.clone();
    lp.call_soon(move |lp| {
        log.borrow_mut().push("parent");
        let l = log.clone();
        lp.call_soon(move |lp| {
            l.borrow_mut().push("child");
            lp.stop();
        })
        .unwrap();
    })
    .unwrap();
    let log = iteration_of.clone();
    lp.call_soon(move |_| log.borrow_mut().push("sibling")).unwrap();
    run(&lp);
    assert_eq!(*iteration_of.borrow(), ["parent", "sibling", "child"]);
}

#[test]
fn cancelled_callbacks_never_run_and_drop_their_closure_at_once() {
    let lp = new_loop();
    let token = Rc::new(());
    let t = token.clone();
    let h = lp.call_soon(move |_| drop(t)).unwrap();
    assert_eq!(Rc::strong_count(&token), 2);
    h.cancel();
    assert!(h.cancelled());
    assert_eq!(Rc::strong_count(&token), 1, "cancel drops the closure");
    h.cancel(); // no effect
    lp.call_soon(|lp| lp.stop()).unwrap();
    run(&lp);
    // A handle that already ran cannot be cancelled any more.
    let ran = lp.call_soon(|lp| lp.stop()).unwrap();
    run(&lp);
    ran.cancel();
    assert!(!ran.cancelled());
}

#[test]
fn timers_never_fire_early_and_ties_keep_scheduling_order() {
    let lp = new_loop();
    let start = lp.time();
    let log = Rc::new(RefCell::new(Vec::new()));
    let delays = [50u64, 10, 30, 10, 0, 30, 10];
    for (i, ms) in delays.iter().copied().enumerate() {
        let log = log.clone();
        lp.call_later(Duration::from_millis(ms), move |lp| log.borrow_mut().push((i, lp.time() - start))).unwrap();
    }
    lp.call_later(Duration::from_millis(60), |lp| lp.stop()).unwrap();
    run(&lp);
    let got = log.borrow();
    let order: Vec<usize> = got.iter().map(|e| e.0).collect();
    assert_eq!(order, [4, 1, 3, 6, 2, 5, 0]);
    for (i, at) in got.iter() {
        assert!(*at >= Duration::from_millis(delays[*i]), "timer {i} fired at {at:?}");
    }
}

#[test]
fn call_at_in_the_past_runs_in_the_next_iteration() {
    let lp = new_loop();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    lp.host::<VirtualClock>().unwrap().advance(Duration::from_secs(10));
    lp.call_soon(move |lp| {
        l.borrow_mut().push("first");
        let l2 = l.clone();
        lp.call_at(Instant::ZERO, move |_| l2.borrow_mut().push("past")).unwrap();
        let l3 = l.clone();
        lp.call_soon(move |lp| {
            l3.borrow_mut().push("soon");
            lp.stop();
        })
        .unwrap();
    })
    .unwrap();
    run(&lp);
    // Both were scheduled during iteration 1 and run in iteration 2: due
    // timers join the ready queue after what was already queued.
    assert_eq!(*log.borrow(), ["first", "soon", "past"]);
}

#[test]
fn timer_handle_when_is_absolute() {
    let lp = new_loop();
    lp.host::<VirtualClock>().unwrap().advance(Duration::from_secs(3));
    let t = lp.call_later(Duration::from_millis(1500), |_| ()).unwrap();
    assert_eq!(t.when(), Instant::from_nanos(4_500_000_000));
    let at = lp.call_at(Instant::from_nanos(7), |_| ()).unwrap();
    assert_eq!(at.when(), Instant::from_nanos(7));
}

#[test]
fn huge_delays_saturate_instead_of_panicking() {
    let lp = new_loop();
    let t = lp.call_later(Duration::MAX, |_| unreachable!()).unwrap();
    assert_eq!(t.when(), Instant::FAR_FUTURE);
    lp.call_soon(|lp| lp.stop()).unwrap();
    run(&lp);
}

#[test]
fn cancelled_timers_never_hold_more_than_half_the_heap() {
    let lp = new_loop();
    let handles: Vec<_> =
        (0..1000).map(|i| lp.call_later(Duration::from_secs(100 + i), |_| unreachable!()).unwrap()).collect();
    let keep = lp.call_later(Duration::from_secs(5000), |lp| lp.stop()).unwrap();
    assert_eq!(lp.timer_stats(), (1001, 0));
    // Cancelling is O(1): entries stay until the next iteration...
    for h in &handles[..600] {
        h.cancel();
    }
    assert_eq!(lp.timer_stats(), (1001, 600));
    // ...which purges them once they are more than half of the heap.
    lp.call_soon(|lp| lp.stop()).unwrap();
    run(&lp);
    assert_eq!(lp.timer_stats(), (401, 0));
    // Below half, they stay (but never run).
    for h in &handles[600..700] {
        h.cancel();
    }
    lp.call_soon(|lp| lp.stop()).unwrap();
    run(&lp);
    let (len, dead) = lp.timer_stats();
    assert!(dead * 2 <= len, "{dead} of {len} cancelled");
    for h in &handles[700..] {
        h.cancel();
    }
    run(&lp); // runs until `keep`
    assert_eq!(lp.timer_stats(), (0, 0));
    assert!(!keep.cancelled());
}

#[test]
fn cancelling_a_due_timer_that_waits_in_the_ready_queue_works() {
    let lp = new_loop();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let victim = Rc::new(RefCell::new(None));
    let v = victim.clone();
    // Both due at the same instant: the first cancels the second, which is
    // already out of the heap and in the ready queue.
    lp.call_later(Duration::from_millis(1), move |_| {
        if let Some(h) = v.borrow().as_ref() {
            anyloop_core::TimerHandle::cancel(h);
        }
    })
    .unwrap();
    *victim.borrow_mut() = Some(lp.call_later(Duration::from_millis(1), move |_| r.set(true)).unwrap());
    lp.call_later(Duration::from_millis(2), |lp| lp.stop()).unwrap();
    run(&lp);
    assert!(!ran.get());
    assert_eq!(lp.timer_stats(), (0, 0), "a cancel outside the heap is not counted");
}

#[test]
fn call_soon_threadsafe_on_the_loop_thread_keeps_call_soon_order() {
    let lp = new_loop();
    let log = Rc::new(RefCell::new(Vec::new()));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let l = log.clone();
    lp.call_soon(move |lp| {
        let s = s.clone();
        lp.call_soon_threadsafe(move |_| s.lock().unwrap().push(1)).unwrap();
        let l = l.clone();
        lp.call_soon(move |lp| {
            l.borrow_mut().push(2);
            lp.stop();
        })
        .unwrap();
    })
    .unwrap();
    run(&lp);
    assert_eq!(*seen.lock().unwrap(), [1]);
    assert_eq!(*log.borrow(), [2]);
}

#[test]
fn threadsafe_handles_can_be_cancelled_from_another_thread() {
    let lp = new_loop();
    let remote = lp.handle().unwrap();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = ran.clone();
    std::thread::spawn(move || {
        let h = remote.call_soon_threadsafe(move |_| r.store(true, std::sync::atomic::Ordering::SeqCst)).unwrap();
        h.cancel();
        assert!(h.cancelled());
        remote.call_soon_threadsafe(|lp| lp.stop()).unwrap();
    })
    .join()
    .unwrap();
    run(&lp);
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    lp.close().unwrap();
    let remote = lp.handle().unwrap();
    assert!(remote.is_closed());
    assert_eq!(remote.call_soon_threadsafe(|_| ()).unwrap_err().kind(), anyloop_core::ErrorKind::Closed);
}

#[test]
fn repeating_handles_run_once_per_schedule_until_cancelled() {
    let lp = new_loop();
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    let h = anyloop_core::Handle::repeating(move |_| n2.set(n2.get() + 1));
    for _ in 0..3 {
        lp.schedule_handle(&h).unwrap();
    }
    lp.call_soon(|lp| lp.stop()).unwrap();
    run(&lp);
    assert_eq!(n.get(), 3);
    h.cancel();
    lp.schedule_handle(&h).unwrap();
    lp.call_soon(|lp| lp.stop()).unwrap();
    run(&lp);
    assert_eq!(n.get(), 3);
}
