//! The async/await layer on the virtual clock: sleep, timeout, interval,
//! yield_now, spawn, and combinators from the `futures` crate.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use anyloop_core::testing::VirtualClock;
use anyloop_core::{ErrorKind, EventLoop, interval, sleep, sleep_until, spawn, timeout, yield_now};

fn new_loop() -> EventLoop {
    EventLoop::new(VirtualClock::new())
}

#[test]
fn sleep_never_completes_early() {
    let lp = new_loop();
    let start = lp.time();
    let took = lp
        .run_until_complete(async move {
            let lp = anyloop_core::get_running_loop().unwrap();
            sleep(Duration::from_millis(1500)).await;
            let mid = lp.time();
            sleep_until(start + Duration::from_secs(3)).await;
            (mid - start, lp.time() - start)
        })
        .unwrap();
    assert!(took.0 >= Duration::from_millis(1500));
    assert!(took.1 >= Duration::from_secs(3));
}

#[test]
fn cancelling_a_sleeping_task_removes_its_timer() {
    let lp = new_loop();
    let t = lp.create_task(async { sleep(Duration::from_secs(3600)).await }).unwrap();
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(lp.timer_stats(), (1, 0), "the sleep armed one timer");
    t.cancel(None);
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert!(t.cancelled());
    let (len, dead) = lp.timer_stats();
    assert_eq!(len - dead, 0, "no live timer is left behind");
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(lp.timer_stats(), (0, 0));
}

#[test]
fn timeout_passes_output_through_or_times_out_and_drops_the_inner_future() {
    let lp = new_loop();
    let ok = lp.run_until_complete(timeout(Duration::from_secs(1), async { 5 })).unwrap();
    assert_eq!(ok.unwrap(), 5);

    let dropped = Rc::new(RefCell::new(false));
    struct Guard(Rc<RefCell<bool>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            *self.0.borrow_mut() = true;
        }
    }
    let g = Guard(dropped.clone());
    let start = lp.time();
    let slow = async move {
        let _g = g;
        sleep(Duration::from_secs(10)).await;
        "too late"
    };
    let r = lp.run_until_complete(anyloop_core::wait_for(slow, Duration::from_secs(2))).unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(*dropped.borrow(), "the inner future is dropped at the timeout");
    let elapsed = lp.time() - start;
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(10), "{elapsed:?}");
    // Both timers are gone: the inner sleep's (dropped) and the timeout's.
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(lp.timer_stats(), (0, 0));
}

#[test]
fn interval_ticks_on_schedule_and_bursts_when_late() {
    let lp = new_loop();
    let ticks = lp
        .run_until_complete(async {
            let lp = anyloop_core::get_running_loop().unwrap();
            let mut every = interval(Duration::from_millis(100));
            let mut at = Vec::new();
            for i in 0..5 {
                let t = every.tick().await;
                at.push((t, lp.time()));
                if i == 1 {
                    // Fall 250 ms behind: two ticks are due at once.
                    lp.host::<VirtualClock>().unwrap().advance(Duration::from_millis(250));
                }
            }
            at
        })
        .unwrap();
    let start = ticks[0].0;
    for (i, (scheduled, fired)) in ticks.iter().enumerate() {
        assert_eq!(*scheduled - start, Duration::from_millis(100 * i as u64));
        assert!(fired >= scheduled, "tick {i} early");
    }
    // Ticks 2 and 3 came late, back to back.
    assert_eq!(ticks[2].1, ticks[3].1);
}

#[test]
fn yield_now_lets_ready_callbacks_run_first() {
    let lp = new_loop();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let out = lp.run_until_complete(async move {
        let lp = anyloop_core::get_running_loop().unwrap();
        let l2 = l.clone();
        lp.call_soon(move |_| l2.borrow_mut().push("callback")).unwrap();
        l.borrow_mut().push("before");
        yield_now().await;
        l.borrow_mut().push("after");
    });
    out.unwrap();
    assert_eq!(*log.borrow(), ["before", "callback", "after"]);
}

#[test]
fn spawn_needs_a_running_loop() {
    assert_eq!(spawn(async {}).unwrap_err().kind(), ErrorKind::NoRunningLoop);
    let lp = new_loop();
    let v = lp.run_until_complete(async { spawn(async { 3 }).unwrap().await.unwrap() }).unwrap();
    assert_eq!(v, 3);
}

#[test]
fn timeout_outside_a_loop_is_a_typed_error() {
    let r = futures::executor::block_on(timeout(Duration::from_secs(1), std::future::pending::<()>()));
    assert_eq!(r.unwrap_err().kind(), ErrorKind::NoRunningLoop);
}

#[test]
fn futures_combinators_work_with_tasks_and_timers() {
    let lp = new_loop();
    let start = lp.time();
    let (a, b) = lp
        .run_until_complete(async {
            let t1 = spawn(async {
                sleep(Duration::from_millis(30)).await;
                1
            })
            .unwrap();
            let t2 = spawn(async {
                sleep(Duration::from_millis(20)).await;
                2
            })
            .unwrap();
            futures::join!(t1, t2)
        })
        .unwrap();
    assert_eq!((a.unwrap(), b.unwrap()), (1, 2));
    assert_eq!(lp.time() - start, Duration::from_millis(30), "joined tasks ran concurrently");

    let winner = lp
        .run_until_complete(async {
            let slow = std::pin::pin!(sleep(Duration::from_secs(5)));
            let fast = std::pin::pin!(sleep(Duration::from_secs(1)));
            match futures::future::select(slow, fast).await {
                futures::future::Either::Left(_) => "slow",
                futures::future::Either::Right(_) => "fast",
            }
        })
        .unwrap();
    assert_eq!(winner, "fast");
    let all = lp
        .run_until_complete(async {
            let tasks: Vec<_> = (0..10u64)
                .map(|i| {
                    spawn(async move {
                        sleep(Duration::from_millis(10 * (10 - i))).await;
                        i
                    })
                    .unwrap()
                })
                .collect();
            futures::future::join_all(tasks).await
        })
        .unwrap();
    assert_eq!(all.into_iter().map(Result::unwrap).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
}
