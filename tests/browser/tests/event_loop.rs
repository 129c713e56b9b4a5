//! The browser host's loop in headless Chromium: scheduling order, timers
//! on one browser timer, yielding to the page, Promises both ways, and the
//! operations a page cannot do.
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use anyloop::host::{self, JsHost};
use anyloop::{ErrorKind, EventLoop, Protocol, net};
use anyloop_browser_tests::*;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const LIMIT: Duration = Duration::from_secs(10);

fn stats(lp: &EventLoop) -> host::DriverStats {
    lp.host::<JsHost>().map(JsHost::stats).unwrap_or_default()
}

#[wasm_bindgen_test]
async fn call_soon_runs_in_fifo_order() {
    let got = run_test(LIMIT, async |lp: EventLoop| {
        let log = Rc::new(RefCell::new(Vec::new()));
        for i in 0..10_000 {
            let log = log.clone();
            lp.call_soon(move |_| log.borrow_mut().push(i)).map_err(|e| e.to_string())?;
        }
        // A callback scheduled by a callback runs after everything queued before.
        let l = log.clone();
        lp.call_soon(move |lp| {
            let l2 = l.clone();
            let _ = lp.call_soon(move |_| l2.borrow_mut().push(-1));
        })
        .map_err(|e| e.to_string())?;
        let l = log.clone();
        lp.call_soon(move |_| l.borrow_mut().push(10_000)).map_err(|e| e.to_string())?;
        wait_until(&lp, LIMIT, "all callbacks", || log.borrow().len() == 10_002).await?;
        Ok(log.take())
    })
    .await
    .unwrap();
    let mut want: Vec<i32> = (0..=10_000).collect();
    want.push(-1);
    assert_eq!(got, want);
}

#[wasm_bindgen_test]
async fn call_later_fires_in_order_and_never_early() {
    let got = run_test(LIMIT, async |lp: EventLoop| {
        let log = Rc::new(RefCell::new(Vec::new()));
        // Out of order, with ties; deadlines up to 60 ms.
        let delays = [37u64, 5, 60, 0, 5, 21, 1, 13, 60, 2, 8, 34, 3, 55];
        for (seq, &ms) in delays.iter().enumerate() {
            let log = log.clone();
            let (t0, p0) = (lp.time(), now_ms());
            lp.call_later(Duration::from_millis(ms), move |lp| {
                log.borrow_mut().push((seq, ms, lp.time() - t0, now_ms() - p0));
            })
            .map_err(|e| e.to_string())?;
        }
        wait_until(&lp, LIMIT, "all timers", || log.borrow().len() == delays.len()).await?;
        Ok((delays, log.take()))
    })
    .await
    .unwrap();
    let (delays, log) = got;
    let mut want: Vec<(u64, usize)> = delays.iter().enumerate().map(|(i, &ms)| (ms, i)).collect();
    want.sort();
    let order: Vec<usize> = log.iter().map(|e| e.0).collect();
    assert_eq!(order, want.iter().map(|w| w.1).collect::<Vec<_>>(), "deadline order, ties in scheduling order");
    for (seq, ms, loop_elapsed, js_elapsed) in log {
        // The loop's own clock: never early at all.
        assert!(loop_elapsed >= Duration::from_millis(ms), "timer {seq} ({ms} ms) fired at {loop_elapsed:?}");
        // performance.now() read independently: allow 1 ms of rounding.
        assert!(js_elapsed >= ms as f64 - 1.0, "timer {seq} ({ms} ms) fired after {js_elapsed} ms");
    }
}

#[wasm_bindgen_test]
async fn one_browser_timer_for_all_loop_timers() {
    let lp = new_loop().unwrap();
    let fired = Rc::new(Cell::new(0));
    let mut handles = Vec::new();
    for i in 0..1000u64 {
        let f = fired.clone();
        handles.push(lp.call_later(Duration::from_millis(200 + i), move |_| f.set(f.get() + 1)).unwrap());
    }
    lp.run_forever().unwrap();
    js_sleep(20.0).await;
    // Idle: one browser timer, armed once, for the earliest deadline.
    let idle = stats(&lp);
    for h in &handles {
        h.cancel();
    }
    lp.call_soon(|_| {}).unwrap(); // one more step sees no timer left
    js_sleep(10.0).await;
    let none_left = stats(&lp);
    lp.stop();
    host::stopped(&lp).await;
    let stopped = !lp.is_running();
    lp.close().unwrap();
    assert!(idle.timer_armed, "no browser timer armed while loop timers are pending");
    assert_eq!(idle.timers_armed, 1, "armed {} browser timers for 1000 loop timers", idle.timers_armed);
    assert!(!none_left.timer_armed, "the browser timer stayed armed with no loop timer left");
    assert_eq!(none_left.timers_armed, 1);
    assert!(stopped);
    assert_eq!(fired.get(), 0);
}

#[wasm_bindgen_test]
async fn cancelled_callbacks_and_timers_never_run() {
    let ran = run_test(LIMIT, async |lp: EventLoop| {
        let ran = Rc::new(Cell::new(0));
        let r = ran.clone();
        let h = lp.call_soon(move |_| r.set(r.get() + 1)).map_err(|e| e.to_string())?;
        h.cancel();
        let r = ran.clone();
        let t = lp.call_later(Duration::from_millis(3), move |_| r.set(r.get() + 10)).map_err(|e| e.to_string())?;
        t.cancel();
        let r = ran.clone();
        let t2 = lp.call_later(Duration::from_millis(6), move |_| r.set(r.get() + 100)).map_err(|e| e.to_string())?;
        lp.call_later(Duration::from_millis(2), move |_| t2.cancel()).map_err(|e| e.to_string())?;
        sleep(&lp, Duration::from_millis(15)).await;
        ensure(h.cancelled() && t.cancelled(), || "handles do not say cancelled".into())?;
        Ok(ran.get())
    })
    .await
    .unwrap();
    assert_eq!(ran, 0);
}

#[wasm_bindgen_test]
async fn stop_inside_a_batch_lets_the_batch_finish() {
    let lp = new_loop().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    for name in ["a", "b", "c"] {
        let l = log.clone();
        lp.call_soon(move |lp| {
            l.borrow_mut().push(name);
            if name == "a" {
                lp.stop();
                let l2 = l.clone();
                let _ = lp.call_soon(move |_| l2.borrow_mut().push("later"));
            }
        })
        .unwrap();
    }
    host::run_forever(&lp).await.unwrap();
    let first = log.borrow().clone();
    let running_after = lp.is_running();
    lp.call_soon(|lp| lp.stop()).unwrap();
    host::run_forever(&lp).await.unwrap();
    lp.close().unwrap();
    assert_eq!(first, ["a", "b", "c"]);
    assert!(!running_after);
    assert_eq!(*log.borrow(), ["a", "b", "c", "later"]);
}

#[wasm_bindgen_test]
async fn run_forever_starts_the_loop_and_returns_at_once() {
    let lp = new_loop().unwrap();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    lp.call_soon(move |_| r.set(true)).unwrap();
    lp.run_forever().unwrap();
    let (running, ran_yet) = (lp.is_running(), ran.get());
    let again = lp.run_forever().map_err(|e| e.kind());
    // The page keeps the loop going: the callback runs once we yield.
    js_sleep(5.0).await;
    let ran_later = ran.get();
    lp.stop();
    host::run_forever(&lp).await.unwrap_err(); // still running: AlreadyRunning
    js_sleep(5.0).await; // the stop takes effect in the next step
    let stopped = !lp.is_running();
    lp.close().unwrap();
    assert!(running && !ran_yet, "run_forever must return before running callbacks");
    assert_eq!(again, Err(ErrorKind::AlreadyRunning));
    assert!(ran_later);
    assert!(stopped);
}

/// Queues a `setTimeout(0)`, then a burst of callbacks of `total_ms`;
/// returns (burst length, when the timeout ran relative to the burst start,
/// yields counted by the driver).
/// Pump durations: the mean and the longest.
type Pumps = (Duration, Duration);

async fn burst(lp: &EventLoop, chained: bool, total_ms: f64) -> Result<(f64, Option<f64>, u64, Pumps), String> {
    if let Some(h) = lp.host::<JsHost>() {
        h.reset_stats();
    }
    let timeout_at = Rc::new(Cell::new(None));
    let t = timeout_at.clone();
    let start = now_ms();
    js_set_timeout(0.0, move || t.set(Some(now_ms() - start)));
    let yields0 = stats(lp).yields;
    let end = Rc::new(Cell::new(None));
    if chained {
        // One callback at a time, each scheduling the next.
        fn step(lp: &EventLoop, start: f64, total: f64, end: Rc<Cell<Option<f64>>>) {
            busy_wait(0.25);
            let elapsed = now_ms() - start;
            if elapsed >= total {
                end.set(Some(elapsed));
            } else {
                let _ = lp.call_soon(move |lp| step(lp, start, total, end));
            }
        }
        let e = end.clone();
        lp.call_soon(move |lp| step(lp, start, total_ms, e)).map_err(|e| e.to_string())?;
    } else {
        // One batch: every callback queued up front.
        let n = (total_ms / 0.25).ceil() as usize + 1;
        for i in 0..n {
            let e = end.clone();
            lp.call_soon(move |_| {
                busy_wait(0.25);
                if i + 1 == n {
                    e.set(Some(now_ms() - start));
                }
            })
            .map_err(|e| e.to_string())?;
        }
    }
    wait_until(lp, LIMIT, "the burst", || end.get().is_some()).await?;
    let s = stats(lp);
    let typical = s.busy / s.pumps.max(1) as u32;
    Ok((end.get().unwrap_or(0.0), timeout_at.get(), s.yields - yields0, (typical, s.longest_pump)))
}

#[wasm_bindgen_test]
async fn a_long_burst_yields_to_the_browser() {
    let (chain, batch, unyielding) = run_test(LIMIT, async |lp: EventLoop| {
        let chain = burst(&lp, true, 60.0).await?;
        let batch = burst(&lp, false, 60.0).await?;
        // The control: with yielding off, the page gets no turn.
        let host = lp.host::<JsHost>().ok_or("not on the browser host")?;
        host.set_time_slice(Duration::from_secs(3600));
        sleep(&lp, Duration::from_millis(1)).await; // from the next pump on
        let unyielding = burst(&lp, true, 60.0).await?;
        host.set_time_slice(Duration::from_millis(5));
        Ok((chain, batch, unyielding))
    })
    .await
    .unwrap();
    let (length, timeout_at, yields, longest) = unyielding;
    assert!(timeout_at.is_none_or(|at| at >= length), "control: the timeout ran at {timeout_at:?} in {length} ms");
    assert_eq!(yields, 0, "control");
    let _ = longest; // the control's one pump is still running when it is read
    for (what, (length, timeout_at, yields, (typical, longest))) in [("chained", chain), ("one batch", batch)] {
        assert!(length > 50.0, "{what}: the burst lasted only {length} ms");
        let at = timeout_at.unwrap_or_else(|| panic!("{what}: setTimeout(0) did not run during a {length} ms burst"));
        assert!(at < length, "{what}: setTimeout(0) ran at {at} ms, after the {length} ms burst");
        // A 5 ms slice, overrun by at most one 0.25 ms callback: pumps of
        // 5.25 ms, the page never waits 8 ms. Wall-clock time on a shared
        // machine includes the moments the browser's thread waits for a
        // core, so the mean is held to 8 ms and a single pump to 20 ms.
        assert!(typical <= Duration::from_millis(8), "{what}: pumps took {typical:?} on average");
        assert!(longest <= Duration::from_millis(20), "{what}: a pump ran {longest:?} without yielding");
        assert!(yields >= 3, "{what}: only {yields} yields in {length} ms (timeout at {at} ms)");
    }
}

#[wasm_bindgen_test]
async fn run_until_complete_as_promise() {
    let lp = new_loop().unwrap();
    let l2 = lp.clone();
    let promise = host::run_until_complete_promise(&lp, async move {
        sleep(&l2, Duration::from_millis(5)).await;
        42u32
    });
    let value = JsFuture::from(promise).await;
    let running = lp.is_running();
    // A task that fails rejects the promise with a typed JS error.
    let l3 = lp.clone();
    let run = host::run_until_complete(&lp, async move {
        let fut = l3.create_future::<u32>();
        fut.cancel(Some("no answer"));
        fut.await
    });
    let failing = host::to_promise(async move { run.await? });
    let failed = JsFuture::from(failing).await;
    // Stopped before the future completed.
    let never = lp.create_future::<()>();
    lp.call_later(Duration::from_millis(2), |lp| lp.stop()).unwrap();
    let stopped = host::run_until_complete(&lp, never).await.map(|_| ()).map_err(|e| e.kind());
    lp.close().unwrap();
    assert_eq!(value.unwrap().as_f64(), Some(42.0));
    assert!(!running);
    let err = anyloop::host::error_from_js(failed.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err:?}");
    assert_eq!(err.message(), "no answer");
    assert_eq!(stopped, Err(ErrorKind::StoppedBeforeComplete));
}

#[wasm_bindgen_test]
async fn futures_resolved_from_js_callbacks() {
    let got = run_test(LIMIT, async |lp: EventLoop| {
        // A loop future resolved by a JS timer callback, outside any step.
        let fut = lp.create_future::<&'static str>();
        let f2 = fut.clone();
        js_set_timeout(3.0, move || drop(f2.set_result("from setTimeout")));
        let a = fut.await.map_err(|e| e.to_string())?;
        // A JS promise awaited by the task.
        let p = js_sys::Promise::new(&mut |resolve, _| {
            js_set_timeout(2.0, move || drop(resolve.call1(&JsValue::NULL, &JsValue::from_str("from a promise"))));
        });
        let b = host::promise_future(p).await.map_err(|e| e.to_string())?.as_string().unwrap_or_default();
        // A rejected promise becomes a typed error.
        let rejected = js_sys::Promise::reject(&js_sys::Error::new("nope").into());
        let c = host::promise_future(rejected).await.map_err(|e| e.kind());
        Ok((a, b, c))
    })
    .await
    .unwrap();
    assert_eq!(got.0, "from setTimeout");
    assert_eq!(got.1, "from a promise");
    assert_eq!(got.2.unwrap_err(), ErrorKind::Other);
}

#[wasm_bindgen_test]
async fn a_task_as_a_js_promise() {
    let lp = new_loop().unwrap();
    lp.run_forever().unwrap();
    let l2 = lp.clone();
    let task = lp
        .create_task(async move {
            sleep(&l2, Duration::from_millis(3)).await;
            Ok::<_, anyloop::Error>(String::from("task done"))
        })
        .unwrap();
    // The Task's output is a Result: flatten it into the promise's outcome.
    let promise = host::to_promise(async move { task.await? });
    let value = JsFuture::from(promise).await;
    lp.stop();
    host::stopped(&lp).await;
    lp.close().unwrap();
    assert_eq!(value.unwrap().as_string().as_deref(), Some("task done"));
}

struct Nothing;
impl anyloop::BaseProtocol for Nothing {}
impl Protocol for Nothing {
    fn data_received(&mut self, _: &[u8]) {}
}

#[wasm_bindgen_test]
async fn what_a_page_cannot_do_is_unsupported() {
    let errors = run_test(LIMIT, async |lp: EventLoop| {
        let mut errors = Vec::new();
        errors.push(("call_soon_threadsafe", lp.call_soon_threadsafe(|_| {}).map(|_| ()).unwrap_err()));
        errors.push(("handle", lp.handle().map(|_| ()).unwrap_err()));
        errors.push(("add_reader", lp.add_reader(0, |_| {}).unwrap_err()));
        errors.push(("add_writer", lp.add_writer(1, |_| {}).unwrap_err()));
        errors.push(("add_signal_handler", lp.add_signal_handler(2, |_| {}).unwrap_err()));
        errors.push(("sock_recv", lp.sock_recv(3, 10).await.map(|_| ()).unwrap_err()));
        errors.push((
            "create_connection",
            lp.create_connection(|| Nothing, "127.0.0.1", 80, net::ConnectOptions::default())
                .await
                .map(|_| ())
                .unwrap_err(),
        ));
        errors.push((
            "create_server",
            lp.create_server(|| Nothing, Some("127.0.0.1"), 0, net::ServerOptions::default())
                .await
                .map(|_| ())
                .unwrap_err(),
        ));
        errors.push((
            "getaddrinfo",
            lp.getaddrinfo(Some("localhost"), None, net::AddrInfoHints::default()).await.map(|_| ()).unwrap_err(),
        ));
        errors.push(("connect_read_pipe", lp.connect_read_pipe(|| Nothing, 0).await.map(|_| ()).unwrap_err()));
        errors.push((
            "subprocess_exec",
            lp.subprocess_exec(|| NoProcess, "true", &[], net::SubprocessOptions::default())
                .await
                .map(|_| ())
                .unwrap_err(),
        ));
        errors.push(("run_in_executor", lp.run_in_executor(|| 1).await.map(|_| ()).unwrap_err()));
        errors.push(("remove_reader", lp.remove_reader(0).map(|_| ()).unwrap_err()));
        Ok(errors)
    })
    .await
    .unwrap();
    for (what, e) in &errors {
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{what}: {e:?}");
        let m = e.message();
        assert!(m.contains("not supported") && m.len() > 40, "{what}: the message must say why: {m}");
    }
    let threads = &errors[0].1;
    assert!(threads.message().contains("wasm atomics"), "{threads:?}");
    assert!(errors[2].1.message().contains("file descriptors"), "{:?}", errors[2].1);
    let lp = new_loop().unwrap();
    let blocking = lp.run_until_complete(async {}).unwrap_err();
    lp.close().unwrap();
    assert_eq!(blocking.kind(), ErrorKind::Unsupported);
}

#[derive(Default)]
struct NoProcess;
impl anyloop::BaseProtocol for NoProcess {}
impl anyloop::SubprocessProtocol for NoProcess {}

#[wasm_bindgen_test]
async fn close_releases_the_browser_timer() {
    let lp = new_loop().unwrap();
    lp.call_later(Duration::from_secs(3600), |_| {}).unwrap();
    lp.call_later(Duration::from_millis(5), |lp| lp.stop()).unwrap();
    host::run_forever(&lp).await.unwrap();
    let armed_while_stopped = stats(&lp).timer_armed;
    lp.close().unwrap();
    let after_close = stats(&lp).timer_armed;
    let closed_err = lp.call_soon(|_| {}).map(|_| ()).unwrap_err().kind();
    assert!(!armed_while_stopped, "a stopped loop keeps no browser timer");
    assert!(!after_close);
    assert_eq!(closed_err, ErrorKind::Closed);
}

#[wasm_bindgen_test]
async fn the_clock_is_performance_now() {
    let lp = new_loop().unwrap();
    let (a, p, b) = (lp.time(), now_ms(), lp.time());
    lp.close().unwrap();
    let p = Duration::from_secs_f64(p / 1000.0);
    let (a, b) = (a - anyloop::Instant::ZERO, b - anyloop::Instant::ZERO);
    assert!(a <= b);
    assert!(a <= p + Duration::from_millis(1) && p <= b + Duration::from_millis(1), "{a:?} {p:?} {b:?}");
}
