//! Async scenarios: tasks awaiting sleeps, timeouts, spawned tasks.

use std::time::Duration;

use anyloop::{ErrorKind, EventLoop};

use crate::{Done, Scenario, check};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario { name: "task_sleep_never_early", start: task_sleep_never_early },
    Scenario { name: "timeout_cancels_inner_future", start: timeout_cancels_inner_future },
    Scenario { name: "spawned_tasks_join", start: spawned_tasks_join },
];

/// Spawns `fut` and reports its verdict when it finishes.
fn run_task(lp: &EventLoop, done: Done, fut: impl std::future::Future<Output = Result<(), String>> + 'static) {
    match lp.create_task(fut) {
        Ok(t) => {
            t.add_done_callback(move |lp, t| {
                let v = match t.exception() {
                    Ok(None) => Ok(()),
                    other => Err(format!("task failed: {other:?}")),
                };
                done.finish(lp, v);
            });
            // Detached: the verdict comes through the done callback.
            drop(t);
        }
        Err(e) => done.finish(lp, Err(format!("create_task: {e}"))),
    }
}

fn task_sleep_never_early(lp: &EventLoop, done: Done) {
    let lp2 = lp.clone();
    run_task(lp, done, async move {
        let start = lp2.time();
        for ms in [0u64, 1, 5, 20] {
            let t0 = lp2.time();
            lp2.sleep(Duration::from_millis(ms)).await;
            let took = lp2.time() - t0;
            check(took >= Duration::from_millis(ms), || format!("sleep({ms} ms) took {took:?}"))?;
        }
        check(lp2.time() - start >= Duration::from_millis(26), || "total too short".into())
    });
}

fn timeout_cancels_inner_future(lp: &EventLoop, done: Done) {
    let lp2 = lp.clone();
    run_task(lp, done, async move {
        let fast = lp2.timeout(Duration::from_millis(200), async { 7 }).await;
        check(matches!(fast, Ok(7)), || format!("fast: {fast:?}"))?;
        let never = lp2.create_future::<()>();
        let slow = lp2.timeout(Duration::from_millis(10), never).await;
        check(slow.as_ref().is_err_and(|e| e.kind() == ErrorKind::TimedOut), || format!("slow: {slow:?}"))?;
        Ok(())
    });
}

fn spawned_tasks_join(lp: &EventLoop, done: Done) {
    let lp2 = lp.clone();
    run_task(lp, done, async move {
        let mut tasks = Vec::new();
        for i in 0..5u64 {
            let l = lp2.clone();
            let t = lp2
                .create_task(async move {
                    l.sleep(Duration::from_millis(5 * (5 - i))).await;
                    i * 10
                })
                .map_err(|e| e.to_string())?;
            tasks.push(t);
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.map_err(|e| e.to_string())?);
        }
        check(got == [0, 10, 20, 30, 40], || format!("{got:?}"))
    });
}
