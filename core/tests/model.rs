//! Property test: random programs of call_soon / call_later / cancel /
//! stop, run on the real loop (virtual clock) and on a small reference
//! model of asyncio's `_run_once`; the order and time of every callback,
//! and the outcome of every `run_forever`, must agree.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use anyloop_core::testing::VirtualClock;
use anyloop_core::{EventLoop, Handle, TimerHandle};
use proptest::prelude::*;

/// One callback of a generated program.
#[derive(Clone, Debug)]
struct Node {
    /// Who schedules it: `None` = scheduled before the loop runs.
    parent: Option<usize>,
    /// `None`: call_soon; `Some(ms)`: call_later.
    delay_ms: Option<u64>,
    /// Cancels this node's handle when it runs (if it exists by then).
    cancel: Option<usize>,
    /// Calls stop() when it runs.
    stop: bool,
}

fn program() -> impl Strategy<Value = Vec<Node>> {
    (1usize..40).prop_flat_map(|n| {
        let nodes: Vec<_> = (0..n)
            .map(move |i| {
                let parent = if i == 0 { Just(None).boxed() } else { proptest::option::weighted(0.7, 0..i).boxed() };
                (
                    parent,
                    proptest::option::weighted(0.5, 0u64..30),
                    proptest::option::weighted(0.2, 0..n),
                    proptest::bool::weighted(0.15),
                )
                    .prop_map(|(parent, delay_ms, cancel, stop)| Node {
                        parent,
                        delay_ms,
                        cancel,
                        stop,
                    })
            })
            .collect();
        nodes
    })
}

fn children(prog: &[Node], of: Option<usize>) -> Vec<usize> {
    (0..prog.len()).filter(|&i| prog[i].parent == of).collect()
}

/// What a run produced: `(node, ms)` per callback, and per `run_forever`
/// whether it returned normally (`true`) or because nothing was left.
type Trace = (Vec<(usize, u64)>, Vec<bool>);

const MAX_RUNS: usize = 60;

// ---------- the real loop ----------

enum AnyHandle {
    Soon(Handle),
    Timer(TimerHandle),
}

struct Real {
    prog: Vec<Node>,
    handles: RefCell<HashMap<usize, AnyHandle>>,
    log: RefCell<Vec<(usize, u64)>>,
}

fn schedule_real(r: &Rc<Real>, lp: &EventLoop, id: usize) {
    let r2 = r.clone();
    let cb = move |lp: &EventLoop| run_real(&r2, lp, id);
    let h = match r.prog[id].delay_ms {
        None => AnyHandle::Soon(lp.call_soon(cb).unwrap()),
        Some(ms) => AnyHandle::Timer(lp.call_later(Duration::from_millis(ms), cb).unwrap()),
    };
    r.handles.borrow_mut().insert(id, h);
}

fn run_real(r: &Rc<Real>, lp: &EventLoop, id: usize) {
    let ms = lp.time().as_nanos() / 1_000_000;
    r.log.borrow_mut().push((id, ms));
    if let Some(t) = r.prog[id].cancel {
        match r.handles.borrow().get(&t) {
            Some(AnyHandle::Soon(h)) => h.cancel(),
            Some(AnyHandle::Timer(h)) => h.cancel(),
            None => {}
        }
    }
    for c in children(&r.prog, Some(id)) {
        schedule_real(r, lp, c);
    }
    if r.prog[id].stop {
        lp.stop();
    }
}

fn real_trace(prog: &[Node]) -> Trace {
    let lp = EventLoop::new(VirtualClock::new());
    let r = Rc::new(Real { prog: prog.to_vec(), handles: RefCell::default(), log: RefCell::default() });
    for c in children(prog, None) {
        schedule_real(&r, &lp, c);
    }
    let mut runs = Vec::new();
    for _ in 0..MAX_RUNS {
        let ok = lp.run_forever().is_ok();
        runs.push(ok);
        if !ok {
            break;
        }
    }
    lp.close().unwrap();
    let log = r.log.borrow().clone();
    (log, runs)
}

// ---------- the model ----------

#[derive(Default)]
struct Model {
    now_ms: u64,
    seq: u64,
    ready: VecDeque<usize>,
    timers: BTreeSet<(u64, u64, usize)>,
    scheduled: HashSet<usize>,
    done: HashSet<usize>,
    cancelled: HashSet<usize>,
    stopping: bool,
    log: Vec<(usize, u64)>,
}

impl Model {
    fn schedule(&mut self, prog: &[Node], id: usize) {
        self.scheduled.insert(id);
        match prog[id].delay_ms {
            None => self.ready.push_back(id),
            Some(ms) => {
                self.seq += 1;
                self.timers.insert((self.now_ms + ms, self.seq, id));
            }
        }
    }

    fn run(&mut self, prog: &[Node], id: usize) {
        self.done.insert(id);
        self.log.push((id, self.now_ms));
        if let Some(t) = prog[id].cancel
            && self.scheduled.contains(&t)
            && !self.done.contains(&t)
        {
            self.cancelled.insert(t);
        }
        for c in children(prog, Some(id)) {
            self.schedule(prog, c);
        }
        if prog[id].stop {
            self.stopping = true;
        }
    }

    /// One `_run_once`; `false` if the loop would block forever.
    fn iteration(&mut self, prog: &[Node]) -> bool {
        while let Some(&first) = self.timers.first() {
            if !self.cancelled.contains(&first.2) {
                break;
            }
            self.timers.pop_first();
        }
        if self.ready.is_empty() && !self.stopping {
            match self.timers.first() {
                Some(&(when, _, _)) => self.now_ms = self.now_ms.max(when),
                None => return false,
            }
        }
        while let Some(&(when, _, id)) = self.timers.first() {
            if when > self.now_ms {
                break;
            }
            self.timers.pop_first();
            if !self.cancelled.contains(&id) {
                self.ready.push_back(id);
            }
        }
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else { break };
            if self.cancelled.contains(&id) || self.done.contains(&id) {
                continue;
            }
            self.run(prog, id);
        }
        true
    }

    fn run_forever(&mut self, prog: &[Node]) -> bool {
        loop {
            if !self.iteration(prog) {
                return false;
            }
            if self.stopping {
                self.stopping = false;
                return true;
            }
        }
    }
}

fn model_trace(prog: &[Node]) -> Trace {
    let mut m = Model::default();
    for c in children(prog, None) {
        m.schedule(prog, c);
    }
    let mut runs = Vec::new();
    for _ in 0..MAX_RUNS {
        let ok = m.run_forever(prog);
        runs.push(ok);
        if !ok {
            break;
        }
    }
    (m.log, runs)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_loop_matches_the_reference_model(prog in program()) {
        prop_assert_eq!(real_trace(&prog), model_trace(&prog));
    }
}

#[test]
fn the_model_itself_sees_ties_in_fifo_order() {
    // Sanity check of the model (so the property cannot pass vacuously).
    let prog = vec![
        Node { parent: None, delay_ms: Some(5), cancel: None, stop: false },
        Node { parent: None, delay_ms: Some(5), cancel: None, stop: false },
        Node { parent: None, delay_ms: None, cancel: Some(1), stop: true },
    ];
    let (log, runs) = model_trace(&prog);
    assert_eq!(log, [(2, 0), (0, 5)]);
    assert_eq!(runs, [true, false]);
    assert_eq!(real_trace(&prog), (log, runs));
}
