//! Conformance scenarios, written once against the `anyloop` facade and
//! compiled for every host: natively (`cargo test -p anyloop-tests`), as a
//! WASI module under wasmtime, and in headless Chromium.
//!
//! A scenario never blocks: it sets work up on a fresh loop and eventually
//! calls [`Done::finish`], which records the verdict and stops the loop. A
//! blocking host runs it with [`run_blocking`]; the browser starts the loop
//! and awaits the verdict instead (`run_driven`, in browser builds).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use anyloop::{EventLoop, Instant};

mod aio;
mod net;
mod scheduling;

/// A scenario's verdict.
pub type Verdict = Result<(), String>;

/// How a scenario reports its verdict.
#[derive(Clone, Default)]
pub struct Done(Rc<RefCell<Option<Verdict>>>);

impl Done {
    /// Records the verdict (the first one wins) and stops the loop.
    pub fn finish(&self, lp: &EventLoop, verdict: Verdict) {
        let mut slot = self.0.borrow_mut();
        if slot.is_none() {
            *slot = Some(verdict);
        }
        lp.stop();
    }

    /// The verdict, once finished.
    pub fn verdict(&self) -> Option<Verdict> {
        self.0.borrow().clone()
    }
}

/// One scenario.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// A unique name, used to select it from a runner.
    pub name: &'static str,
    /// Sets the scenario up on the loop.
    pub start: fn(&EventLoop, Done),
}

/// Every scenario for every host (scheduling, tasks, timers), in a stable
/// order.
pub fn all() -> Vec<Scenario> {
    scheduling::SCENARIOS.iter().chain(aio::SCENARIOS).copied().collect()
}

/// The networking scenarios, for hosts with TCP sockets (native, WASI
/// preview 2): one protocol and one stream program over each host's sockets.
pub fn net() -> Vec<Scenario> {
    net::SCENARIOS.to_vec()
}

/// Finds a scenario by name, among [`all`] and [`net`].
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().chain(net()).find(|s| s.name == name)
}

/// Runs a scenario on a blocking host: a fresh loop, `run_forever` until
/// the scenario finishes (or `limit` of loop time passes), then `close`.
pub fn run_blocking(s: Scenario, limit: Duration) -> Verdict {
    let lp = anyloop::new_event_loop().map_err(|e| format!("new_event_loop: {e}"))?;
    let done = Done::default();
    (s.start)(&lp, done.clone());
    let deadline = lp.time() + limit;
    let timed_out = Rc::new(Cell::new(false));
    let t = timed_out.clone();
    let guard = lp.call_at(deadline, move |lp| {
        t.set(true);
        lp.stop();
    });
    let mut result = Ok(());
    while done.verdict().is_none() && !timed_out.get() {
        if let Err(e) = lp.run_forever() {
            result = Err(format!("run_forever failed: {e}"));
            break;
        }
    }
    if let Ok(g) = guard {
        g.cancel();
    }
    let _ = lp.close();
    result?;
    match done.verdict() {
        Some(v) => v,
        None => Err(format!("{}: not finished within {limit:?}", s.name)),
    }
}

/// Runs a scenario on a driven host (the browser): a fresh loop, awaiting
/// `anyloop::host::run_forever` (which resolves when the loop stops) until
/// the scenario finishes or `limit` of loop time passes, then `close`.
/// The driven twin of [`run_blocking`], with the same verdicts.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub async fn run_driven(s: Scenario, limit: Duration) -> Verdict {
    let lp = anyloop::new_event_loop().map_err(|e| format!("new_event_loop: {e}"))?;
    let done = Done::default();
    (s.start)(&lp, done.clone());
    let deadline = lp.time() + limit;
    let timed_out = Rc::new(Cell::new(false));
    let t = timed_out.clone();
    let guard = lp.call_at(deadline, move |lp| {
        t.set(true);
        lp.stop();
    });
    let mut result = Ok(());
    while done.verdict().is_none() && !timed_out.get() {
        if let Err(e) = anyloop::host::run_forever(&lp).await {
            result = Err(format!("run_forever failed: {e}"));
            break;
        }
    }
    if let Ok(g) = guard {
        g.cancel();
    }
    let _ = lp.close();
    result?;
    match done.verdict() {
        Some(v) => v,
        None => Err(format!("{}: not finished within {limit:?}", s.name)),
    }
}

/// `Err` with a message unless `cond`.
pub fn check(cond: bool, msg: impl FnOnce() -> String) -> Verdict {
    if cond { Ok(()) } else { Err(msg()) }
}

/// The loop time elapsed since `start`.
pub fn since(lp: &EventLoop, start: Instant) -> Duration {
    lp.time() - start
}
