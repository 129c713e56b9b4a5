//! Running, stopping and closing: asyncio's lifecycle rules, on the
//! deterministic virtual clock.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use anyloop_core::testing::VirtualClock;
use anyloop_core::{ErrorKind, EventLoop, get_running_loop};

fn new_loop() -> EventLoop {
    EventLoop::new(VirtualClock::new())
}

type Log = Rc<RefCell<Vec<&'static str>>>;

fn push(log: &Log, s: &'static str) -> impl FnOnce(&EventLoop) + 'static {
    let log = log.clone();
    move |_| log.borrow_mut().push(s)
}

#[test]
fn stop_inside_a_batch_runs_the_rest_of_the_batch_then_returns() {
    let lp = new_loop();
    let log: Log = Rc::default();
    let l = log.clone();
    lp.call_soon(move |lp| {
        l.borrow_mut().push("a");
        lp.stop();
        // Scheduled by the batch: must wait for the next run.
        lp.call_soon(push(&l, "next-run")).unwrap();
    })
    .unwrap();
    lp.call_soon(push(&log, "b")).unwrap();
    lp.call_soon(push(&log, "c")).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["a", "b", "c"]);
    assert!(!lp.is_running());
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["a", "b", "c", "next-run"]);
}

#[test]
fn stop_before_run_forever_gives_one_zero_timeout_iteration() {
    let lp = new_loop();
    let log: Log = Rc::default();
    lp.call_soon(push(&log, "ready")).unwrap();
    lp.call_later(Duration::from_secs(1), push(&log, "timer")).unwrap();
    lp.stop();
    let before = lp.time();
    lp.run_forever().unwrap();
    // The ready callback ran, the clock did not move (zero timeout), the
    // timer that is not due yet did not run.
    assert_eq!(*log.borrow(), ["ready"]);
    assert_eq!(lp.time(), before);
    assert_eq!(lp.host::<VirtualClock>().unwrap().waits(), 0);
    // The stop was consumed: the next run goes on until the timer.
    lp.call_later(Duration::from_secs(2), |lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["ready", "timer"]);
}

#[test]
fn stop_before_run_forever_runs_already_due_timers() {
    let lp = new_loop();
    let log: Log = Rc::default();
    lp.call_at(lp.time(), push(&log, "due")).unwrap();
    lp.stop();
    lp.run_forever().unwrap();
    assert_eq!(*log.borrow(), ["due"]);
}

#[test]
fn run_until_complete_reports_a_stop_before_completion() {
    let lp = new_loop();
    let fut = lp.create_future::<u8>();
    lp.call_soon(|lp| lp.stop()).unwrap();
    let err = lp.run_until_complete(fut.clone()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StoppedBeforeComplete);
    assert_eq!(err.to_string(), "Event loop stopped before Future completed.");
    // The future (and the task waiting on it) are still usable.
    fut.set_result(5).unwrap();
    assert_eq!(lp.run_until_complete(fut).unwrap().unwrap(), 5);
}

#[test]
fn run_until_complete_returns_the_output() {
    let lp = new_loop();
    assert_eq!(lp.run_until_complete(async { "out" }).unwrap(), "out");
    assert!(!lp.is_running());
}

#[test]
fn a_running_loop_cannot_be_run_again_or_closed() {
    let lp = new_loop();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    lp.call_soon(move |lp| {
        assert!(lp.is_running());
        s.borrow_mut().push(lp.run_forever().unwrap_err().kind());
        s.borrow_mut().push(lp.run_until_complete(async {}).unwrap_err().kind());
        let e = lp.close().unwrap_err();
        assert_eq!(e.to_string(), "Cannot close a running event loop");
        s.borrow_mut().push(e.kind());
        lp.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*seen.borrow(), [ErrorKind::AlreadyRunning; 3]);
}

#[test]
fn two_loops_cannot_run_on_one_thread_at_once() {
    let a = new_loop();
    let b = new_loop();
    let err = Rc::new(Cell::new(None));
    let e = err.clone();
    a.call_soon(move |a| {
        e.set(Some(b.run_forever().unwrap_err().kind()));
        a.stop();
    })
    .unwrap();
    a.run_forever().unwrap();
    assert_eq!(err.get(), Some(ErrorKind::AlreadyRunning));
}

#[test]
fn everything_after_close_is_a_closed_error() {
    let lp = new_loop();
    lp.close().unwrap();
    assert!(lp.is_closed());
    let closed = |k: ErrorKind| assert_eq!(k, ErrorKind::Closed);
    closed(lp.call_soon(|_| ()).unwrap_err().kind());
    closed(lp.call_later(Duration::ZERO, |_| ()).unwrap_err().kind());
    closed(lp.call_at(lp.time(), |_| ()).unwrap_err().kind());
    closed(lp.call_soon_threadsafe(|_| ()).unwrap_err().kind());
    closed(lp.create_task(async {}).unwrap_err().kind());
    closed(lp.run_forever().unwrap_err().kind());
    closed(lp.run_until_complete(async {}).unwrap_err().kind());
    closed(lp.step().unwrap_err().kind());
    let e = lp.call_soon(|_| ()).unwrap_err();
    assert_eq!(e.to_string(), "Event loop is closed");
}

#[test]
fn close_is_idempotent_and_discards_pending_callbacks() {
    let lp = new_loop();
    let ran = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    struct OnDrop(Rc<Cell<bool>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let r = ran.clone();
    let guard = OnDrop(dropped.clone());
    lp.call_soon(move |_| {
        let _g = &guard;
        r.set(true);
    })
    .unwrap();
    let r = ran.clone();
    lp.call_later(Duration::from_secs(1), move |_| r.set(true)).unwrap();
    lp.close().unwrap();
    lp.close().unwrap();
    assert!(!ran.get());
    assert!(dropped.get(), "close drops the discarded closures");
}

#[test]
fn a_closure_dropped_by_close_may_call_the_loop() {
    // Dropping a discarded closure runs user code; it must find the loop
    // closed, not borrowed.
    let lp = new_loop();
    struct Reschedule(EventLoop, Rc<Cell<Option<ErrorKind>>>);
    impl Drop for Reschedule {
        fn drop(&mut self) {
            self.1.set(self.0.call_soon(|_| ()).err().map(|e| e.kind()));
        }
    }
    let seen = Rc::new(Cell::new(None));
    let r = Reschedule(lp.clone(), seen.clone());
    lp.call_soon(move |_| drop(r)).unwrap();
    lp.close().unwrap();
    assert_eq!(seen.get(), Some(ErrorKind::Closed));
}

#[test]
fn get_running_loop_works_inside_callbacks_and_tasks_only() {
    assert_eq!(get_running_loop().unwrap_err().kind(), ErrorKind::NoRunningLoop);
    let lp = new_loop();
    let same = Rc::new(Cell::new(false));
    let s = same.clone();
    let lp2 = lp.clone();
    lp.call_soon(move |_| s.set(get_running_loop().unwrap().ptr_eq(&lp2))).unwrap();
    let in_task = lp.run_until_complete(async { get_running_loop().is_ok() }).unwrap();
    assert!(same.get());
    assert!(in_task);
    assert!(get_running_loop().is_err());
}

#[test]
fn a_panicking_callback_reaches_the_exception_handler_and_the_loop_goes_on() {
    let lp = new_loop();
    let contexts = Rc::new(RefCell::new(Vec::new()));
    let c = contexts.clone();
    lp.set_exception_handler(Some(Rc::new(move |_, ctx| c.borrow_mut().push(ctx.clone()))));
    let after = Rc::new(Cell::new(false));
    lp.call_soon(|_| panic!("boom")).unwrap();
    let a = after.clone();
    lp.call_soon(move |lp| {
        a.set(true);
        lp.stop();
    })
    .unwrap();
    lp.run_forever().unwrap();
    assert!(after.get());
    let ctx = contexts.borrow();
    assert_eq!(ctx.len(), 1);
    assert!(ctx[0].message.starts_with("Exception in callback <Handle"), "{}", ctx[0].message);
    let exc = ctx[0].exception.as_ref().unwrap();
    assert_eq!(exc.kind(), ErrorKind::Panic);
    assert!(exc.to_string().contains("boom"));
    assert!(ctx[0].handle.is_some());
}

#[test]
fn a_host_error_ends_run_forever_and_leaves_the_loop_usable() {
    // The virtual clock refuses to block forever: nothing scheduled.
    let lp = new_loop();
    let err = lp.run_forever().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(!lp.is_running());
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
}

#[test]
fn debug_repr_names_the_callback_and_in_debug_mode_where_it_was_scheduled() {
    let lp = new_loop();
    let h = lp.call_soon(|_| ()).unwrap();
    let text = format!("{h:?}");
    // Outside debug mode: the closure's type (its defining function).
    assert!(text.starts_with("<Handle lifecycle::debug_repr"), "{text}");
    assert!(h.source_location().is_none());
    lp.set_debug(true);
    let h = lp.call_soon(|_| ()).unwrap();
    let line = line!() - 1;
    let loc = h.source_location().expect("recorded in debug mode");
    assert!(loc.file().ends_with("lifecycle.rs") && loc.line() == line, "{loc:?}");
    assert!(format!("{h:?}").contains(&format!("created at {}:{line}", loc.file())), "{h:?}");
    let t = lp.call_later(Duration::from_secs(1), |_| ()).unwrap();
    assert!(format!("{t:?}").starts_with("<TimerHandle "), "{t:?}");
    t.cancel();
    assert!(format!("{t:?}").contains(" cancelled>"), "{t:?}");
}
