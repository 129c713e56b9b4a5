//! Futures and tasks: create_future, create_task, names, cancellation,
//! done callbacks, task factories, unretrieved errors.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyloop_core::testing::VirtualClock;
use anyloop_core::{ErrorKind, EventLoop, ExceptionContext};

fn new_loop() -> EventLoop {
    EventLoop::new(VirtualClock::new())
}

/// Collects what reaches the exception handler.
fn capture(lp: &EventLoop) -> Rc<RefCell<Vec<ExceptionContext>>> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    lp.set_exception_handler(Some(Rc::new(move |_, ctx| s.borrow_mut().push(ctx.clone()))));
    seen
}

/// Yields to the loop once.
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn future_result_exception_and_state_errors() {
    let lp = new_loop();
    let f = lp.create_future::<i32>();
    assert!(!f.done());
    assert_eq!(f.result().unwrap_err().kind(), ErrorKind::InvalidState);
    assert_eq!(f.exception().unwrap_err().kind(), ErrorKind::InvalidState);
    f.set_result(3).unwrap();
    assert!(f.done());
    assert_eq!(f.result().unwrap(), 3);
    assert!(f.exception().unwrap().is_none());
    assert_eq!(f.set_result(4).unwrap_err().kind(), ErrorKind::InvalidState);
    assert!(!f.cancel(None));

    let g = lp.create_future::<i32>();
    g.set_exception(anyloop_core::Error::new(ErrorKind::Other, "bad")).unwrap();
    assert_eq!(g.result().unwrap_err().to_string(), "bad");
    assert_eq!(g.exception().unwrap().unwrap().to_string(), "bad");

    let c = lp.create_future::<i32>();
    assert!(c.cancel(Some("stop it")));
    assert!(c.cancelled());
    let e = c.result().unwrap_err();
    assert!(e.is_cancelled());
    assert_eq!(e.message(), "stop it");
}

#[test]
fn future_done_callbacks_run_in_order_through_call_soon() {
    let lp = new_loop();
    let f = lp.create_future::<&str>();
    let log = Rc::new(RefCell::new(Vec::new()));
    for i in 0..3 {
        let log = log.clone();
        f.add_done_callback(move |_, f| log.borrow_mut().push((i, f.result().unwrap())));
    }
    let removed = f.add_done_callback(|_, _| unreachable!());
    assert_eq!(f.remove_done_callback(removed), 1);
    assert_eq!(f.remove_done_callback(removed), 0);
    f.set_result("x").unwrap();
    assert!(log.borrow().is_empty(), "done callbacks are scheduled, not called inline");
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(*log.borrow(), [(0, "x"), (1, "x"), (2, "x")]);
    // Added after completion: scheduled at once.
    let l = log.clone();
    f.add_done_callback(move |_, _| l.borrow_mut().push((9, "late")));
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(log.borrow().last(), Some(&(9, "late")));
}

#[test]
fn tasks_have_names_results_and_done_callbacks() {
    let lp = new_loop();
    let a = lp.create_task(async { 1 }).unwrap();
    let b = lp.create_task_named(async { 2 }, "worker").unwrap();
    assert!(a.get_name().starts_with("Task-"));
    assert_eq!(b.get_name(), "worker");
    b.set_name("renamed");
    assert_eq!(b.get_name(), "renamed");
    assert_eq!(a.result().unwrap_err().kind(), ErrorKind::InvalidState);
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    a.add_done_callback(move |_, t| o.borrow_mut().push(t.get_name()));
    let out = lp.run_until_complete(async move { a.await.unwrap() + b.await.unwrap() }).unwrap();
    assert_eq!(out, 3);
    assert_eq!(order.borrow().len(), 1);
}

#[test]
fn cancelling_a_task_drops_its_future_at_its_next_step() {
    let lp = new_loop();
    let dropped = Rc::new(Cell::new(false));
    struct Guard(Rc<Cell<bool>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let g = Guard(dropped.clone());
    let never = lp.create_future::<()>();
    let task = lp
        .create_task(async move {
            let _g = g;
            never.await.unwrap();
            unreachable!()
        })
        .unwrap();
    let t = task.as_any();
    lp.call_soon(move |_| {
        assert!(t.cancel(Some("enough")));
        assert_eq!(t.cancelling(), 1);
    })
    .unwrap();
    let err = lp.run_until_complete(task).unwrap().unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.message(), "enough");
    assert!(dropped.get());
}

#[test]
fn cancel_on_a_done_task_returns_false_and_uncancel_withdraws() {
    let lp = new_loop();
    let t = lp.create_task(async { 5 }).unwrap();
    let any = t.as_any();
    assert_eq!(lp.run_until_complete(t).unwrap().unwrap(), 5);
    assert!(any.done());
    assert!(!any.cancel(None));
    assert!(!any.cancelled());

    let t = lp.create_task(YieldOnce(false)).unwrap();
    assert!(t.cancel(None));
    assert_eq!(t.uncancel(), 0);
    lp.run_until_complete(t).unwrap().unwrap(); // not cancelled after all
}

#[test]
fn a_task_may_cancel_itself() {
    let lp = new_loop();
    let out = lp.run_until_complete(async {
        let lp = anyloop_core::get_running_loop().unwrap();
        let me = lp.current_task().unwrap();
        me.cancel(None);
        YieldOnce(false).await;
        unreachable!("the step after cancel drops the future");
    });
    assert!(out.unwrap_err().is_cancelled());
}

#[test]
fn current_task_and_all_tasks() {
    let lp = new_loop();
    assert!(lp.current_task().is_none());
    let t = lp.create_task_named(YieldOnce(false), "bg").unwrap();
    assert_eq!(lp.all_tasks().len(), 1);
    let name = lp
        .run_until_complete(async {
            let lp = anyloop_core::get_running_loop().unwrap();
            lp.current_task().unwrap().get_name()
        })
        .unwrap();
    assert!(name.starts_with("Task-"));
    assert!(t.done());
    assert!(lp.all_tasks().is_empty());
}

#[test]
fn a_panicking_task_ends_with_a_panic_error() {
    let lp = new_loop();
    let seen = capture(&lp);
    let t = lp.create_task(async { panic!("task boom") }).unwrap();
    let err = lp.run_until_complete(t).unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Panic);
    assert!(err.to_string().contains("task boom"));
    assert!(seen.borrow().is_empty(), "retrieved, so not reported");
}

#[test]
fn an_unretrieved_task_error_reaches_the_exception_handler() {
    let lp = new_loop();
    let seen = capture(&lp);
    // Detached at once: reported when it fails.
    drop(lp.create_task(async { panic!("detached") }).unwrap());
    // Kept, then dropped without retrieving: reported at drop.
    let kept = lp.create_task(async { panic!("kept") }).unwrap();
    lp.call_later(Duration::from_millis(1), |lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(seen.borrow().len(), 1);
    drop(kept);
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2);
    for ctx in seen.iter() {
        assert_eq!(ctx.message, "Task exception was never retrieved");
        assert_eq!(ctx.exception.as_ref().unwrap().kind(), ErrorKind::Panic);
        assert!(ctx.task.is_some());
    }
}

#[test]
fn an_unretrieved_future_error_is_reported_when_dropped() {
    let lp = new_loop();
    let seen = capture(&lp);
    let f = lp.create_future::<()>();
    f.set_exception(anyloop_core::Error::new(ErrorKind::Other, "lost")).unwrap();
    drop(f);
    assert_eq!(seen.borrow().len(), 1);
    assert_eq!(seen.borrow()[0].message, "Future exception was never retrieved");
    let g = lp.create_future::<()>();
    g.set_exception(anyloop_core::Error::new(ErrorKind::Other, "seen")).unwrap();
    let _ = g.exception();
    drop(g);
    assert_eq!(seen.borrow().len(), 1);
}

#[test]
fn the_task_factory_wraps_every_task_body() {
    let lp = new_loop();
    assert!(lp.get_task_factory().is_none());
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    lp.set_task_factory(Some(Rc::new(move |_, body| {
        let p = p.clone();
        Box::pin(async move {
            p.set(p.get() + 1);
            body.await
        })
    })));
    assert!(lp.get_task_factory().is_some());
    assert_eq!(lp.run_until_complete(async { 40 + 2 }).unwrap(), 42);
    let t = lp.create_task(async { "x" }).unwrap();
    assert_eq!(lp.run_until_complete(t).unwrap().unwrap(), "x");
    // Three tasks: two run_until_complete wrappers and `t` itself.
    assert_eq!(polls.get(), 3);
    // A factory that drops the body: the task fails clearly.
    lp.set_task_factory(Some(Rc::new(|_, _body| Box::pin(async {}))));
    let err = lp.run_until_complete(async { 1 }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    lp.set_task_factory(None);
    assert_eq!(lp.run_until_complete(async { 1 }).unwrap(), 1);
}

#[test]
fn close_reports_and_drops_pending_tasks() {
    let lp = new_loop();
    let seen = capture(&lp);
    let never = lp.create_future::<()>();
    let t = lp.create_task(never).unwrap();
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    lp.close().unwrap();
    assert!(t.done());
    assert!(t.cancelled());
    assert_eq!(seen.borrow().len(), 1);
    assert_eq!(seen.borrow()[0].message, "Task was destroyed but it is pending!");
}

#[test]
fn a_task_woken_from_another_thread_runs_on_the_loop() {
    let lp = new_loop();
    let out = lp.run_until_complete(async {
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None::<u32>));
        let s = slot.clone();
        std::future::poll_fn(move |cx| {
            if let Some(v) = s.lock().unwrap().take() {
                return Poll::Ready(v);
            }
            let waker = cx.waker().clone();
            let s = s.clone();
            std::thread::spawn(move || {
                *s.lock().unwrap() = Some(7);
                waker.wake();
            })
            .join()
            .unwrap();
            Poll::Pending
        })
        .await
    });
    assert_eq!(out.unwrap(), 7);
}

#[test]
fn a_handler_that_panics_falls_back_to_the_default_handler() {
    let lp = new_loop();
    lp.set_exception_handler(Some(Rc::new(|_, _| panic!("handler bug"))));
    assert!(lp.get_exception_handler().is_some());
    // Must not propagate: the default handler reports both.
    lp.call_exception_handler(&ExceptionContext::new("first problem"));
    lp.set_exception_handler(None);
    assert!(lp.get_exception_handler().is_none());
}
