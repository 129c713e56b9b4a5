//! Conformance scenarios, written once against the `anyloop` facade and
//! compiled for every host: natively (`cargo test -p anyloop-tests`), as a
//! WASI module under wasmtime, and in headless Chromium.
//!
//! A scenario never blocks: it sets work up on a fresh loop and eventually
//! calls [`Done::finish`], which records the verdict and stops the loop. A
//! blocking host runs it with [`run_blocking`]; the browser starts the loop
//! and awaits the verdict instead.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use anyloop::{EventLoop, Instant};

// Hosts with sockets: native, and WASI preview 2.
#[cfg(any(not(target_family = "wasm"), all(target_os = "wasi", target_env = "p2")))]
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

/// Every scenario, in a stable order.
pub fn all() -> Vec<Scenario> {
    let mut all = scheduling::SCENARIOS.to_vec();
    #[cfg(any(not(target_family = "wasm"), all(target_os = "wasi", target_env = "p2")))]
    all.extend_from_slice(net::SCENARIOS);
    all
}

/// Finds a scenario by name.
pub fn find(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
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

/// `Err` with a message unless `cond`.
pub fn check(cond: bool, msg: impl FnOnce() -> String) -> Verdict {
    if cond { Ok(()) } else { Err(msg()) }
}

/// The loop time elapsed since `start`.
pub fn since(lp: &EventLoop, start: Instant) -> Duration {
    lp.time() - start
}
