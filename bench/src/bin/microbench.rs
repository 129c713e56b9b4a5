//! `just bench`: the core's scheduling costs next to a raw baseline.
//!
//! Workloads (those of ../shared/bench/README.md):
//! * `call_soon` — 1,000 self-rescheduling callbacks until 1,000,000 ran;
//! * `call_later_fire` — 200,000 `call_later` with uniform random delays in
//!   [0, 100 ms], run until all fired;
//! * `call_later_cancel` — the same, then cancel 90%, run until the rest
//!   fired.
//!
//! "ours" is anyloop's loop on the native host; "baseline" is a plain
//! `VecDeque<Box<dyn FnOnce>>` + `BinaryHeap` loop doing the same work in
//! the same process, with one `epoll_wait` per iteration like a real I/O
//! loop. Figures are process CPU ns per scheduled callback, the median of
//! interleaved repetitions. Bars: ratio ≤ 1.5 (call_soon), ≤ 2.0 (timers).

use std::cell::Cell;
use std::time::Duration;

use anyloop::EventLoop;
use anyloop_bench::{median, process_cpu, xorshift};

const CALL_SOON_N: u64 = 1_000_000;
const CALL_SOON_BATCH: u64 = 1_000;
const TIMERS_N: usize = 200_000;
const REPS: usize = 15;

struct Counters {
    count: Cell<u64>,
    remaining: Cell<u64>,
    target: Cell<u64>,
    sink: Cell<u64>,
}

fn counters() -> &'static Counters {
    // One leak per run keeps closures to a plain reference (like the
    // baseline's `&mut Loop`) instead of an `Rc` clone per callback.
    Box::leak(Box::new(Counters {
        count: Cell::new(0),
        remaining: Cell::new(0),
        target: Cell::new(0),
        sink: Cell::new(0),
    }))
}

fn ours_soon(lp: &EventLoop, c: &'static Counters, id: u64) {
    c.count.set(c.count.get() + 1);
    c.sink.set(c.sink.get().wrapping_add(id));
    if c.remaining.get() > 0 {
        c.remaining.set(c.remaining.get() - 1);
        let _ = lp.call_soon(move |lp| ours_soon(lp, c, id + 1));
    } else if c.count.get() == c.target.get() {
        lp.stop();
    }
}

fn ours_timer(lp: &EventLoop, c: &'static Counters, id: u64) {
    c.count.set(c.count.get() + 1);
    c.sink.set(c.sink.get().wrapping_add(id));
    if c.count.get() == c.target.get() {
        lp.stop();
    }
}

/// CPU ns per scheduled callback for our loop.
fn run_ours(workload: &str, delays: &[u64]) -> f64 {
    let lp = anyloop::new_event_loop().expect("event loop");
    let c = counters();
    let cpu0 = process_cpu();
    let n = match workload {
        "call_soon" => {
            c.target.set(CALL_SOON_N);
            c.remaining.set(CALL_SOON_N - CALL_SOON_BATCH);
            for i in 0..CALL_SOON_BATCH {
                let _ = lp.call_soon(move |lp| ours_soon(lp, c, i));
            }
            lp.run_forever().expect("run");
            CALL_SOON_N
        }
        _ => {
            let cancel = workload == "call_later_cancel";
            c.target.set(if cancel { TIMERS_N.div_ceil(10) as u64 } else { TIMERS_N as u64 });
            let mut handles = Vec::with_capacity(delays.len());
            for (i, &d) in delays.iter().enumerate() {
                let id = i as u64;
                handles.push(lp.call_later(Duration::from_nanos(d), move |lp| ours_timer(lp, c, id)).expect("timer"));
            }
            if cancel {
                for (i, h) in handles.iter().enumerate() {
                    if i % 10 != 0 {
                        h.cancel();
                    }
                }
            }
            drop(handles);
            lp.run_forever().expect("run");
            delays.len() as u64
        }
    };
    let cpu = process_cpu() - cpu0;
    assert_eq!(c.count.get(), c.target.get(), "{workload}: not every callback ran");
    std::hint::black_box(c.sink.get());
    lp.close().expect("close");
    cpu.as_nanos() as f64 / n as f64
}

mod baseline {
    //! The raw loop of ../shared/bench/rust/rs_microbench, in-process.
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, VecDeque};
    use std::time::Instant;

    type Cb = Box<dyn FnOnce(&mut Loop)>;

    struct Slot {
        cb: Option<Cb>,
        generation: u32,
    }

    #[derive(Clone, Copy)]
    pub struct TimerHandle {
        slot: u32,
        generation: u32,
    }

    pub struct Loop {
        ready: VecDeque<Cb>,
        heap: BinaryHeap<Reverse<(u64, u64, u32, u32)>>,
        slots: Vec<Slot>,
        free: Vec<u32>,
        seq: u64,
        base: Instant,
        #[cfg(target_os = "linux")]
        epfd: i32,
        pub stop: bool,
        pub count: u64,
        pub remaining: u64,
        pub target: u64,
        pub sink: u64,
    }

    impl Loop {
        pub fn new() -> Loop {
            Loop {
                ready: VecDeque::with_capacity(4096),
                heap: BinaryHeap::new(),
                slots: Vec::new(),
                free: Vec::new(),
                seq: 0,
                base: Instant::now(),
                // SAFETY: plain syscall; the fd is closed in Drop.
                #[cfg(target_os = "linux")]
                epfd: unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
                stop: false,
                count: 0,
                remaining: 0,
                target: 0,
                sink: 0,
            }
        }
        fn now_ns(&self) -> u64 {
            self.base.elapsed().as_nanos() as u64
        }
        pub fn call_soon(&mut self, cb: Cb) {
            self.ready.push_back(cb);
        }
        pub fn call_later(&mut self, delay_ns: u64, cb: Cb) -> TimerHandle {
            let deadline = self.now_ns() + delay_ns;
            let slot = match self.free.pop() {
                Some(i) => {
                    self.slots[i as usize].cb = Some(cb);
                    i
                }
                None => {
                    self.slots.push(Slot { cb: Some(cb), generation: 0 });
                    (self.slots.len() - 1) as u32
                }
            };
            let generation = self.slots[slot as usize].generation;
            self.seq += 1;
            self.heap.push(Reverse((deadline, self.seq, slot, generation)));
            TimerHandle { slot, generation }
        }
        pub fn cancel(&mut self, h: TimerHandle) {
            let s = &mut self.slots[h.slot as usize];
            if s.generation == h.generation {
                s.cb = None;
            }
        }
        fn poll(&self, timeout_ms: i32) {
            #[cfg(target_os = "linux")]
            {
                // SAFETY: `evs` is a valid buffer of 8 events.
                let mut evs: [libc::epoll_event; 8] = unsafe { std::mem::zeroed() };
                // SAFETY: valid epoll fd and buffer.
                unsafe { libc::epoll_wait(self.epfd, evs.as_mut_ptr(), 8, timeout_ms) };
            }
            #[cfg(not(target_os = "linux"))]
            std::thread::sleep(std::time::Duration::from_millis(timeout_ms as u64));
        }
        fn run_once(&mut self) {
            if self.ready.is_empty() {
                if let Some(Reverse((d, ..))) = self.heap.peek() {
                    let now = self.now_ns();
                    if *d > now {
                        self.poll((*d - now).div_ceil(1_000_000) as i32);
                    }
                }
            } else {
                self.poll(0);
            }
            let now = self.now_ns();
            while let Some(Reverse((d, _, slot, generation))) = self.heap.peek().copied() {
                if d > now {
                    break;
                }
                self.heap.pop();
                let s = &mut self.slots[slot as usize];
                if s.generation != generation {
                    continue;
                }
                let cb = s.cb.take();
                s.generation = s.generation.wrapping_add(1);
                self.free.push(slot);
                if let Some(cb) = cb {
                    self.ready.push_back(cb);
                }
            }
            for _ in 0..self.ready.len() {
                let Some(cb) = self.ready.pop_front() else { break };
                cb(self);
            }
        }
        pub fn run_forever(&mut self) {
            while !self.stop {
                self.run_once();
            }
            self.stop = false;
        }
    }

    impl Drop for Loop {
        fn drop(&mut self) {
            #[cfg(target_os = "linux")]
            // SAFETY: closing the fd this loop created.
            unsafe {
                libc::close(self.epfd);
            }
        }
    }
}

fn base_soon(l: &mut baseline::Loop, id: u64) {
    l.count += 1;
    l.sink = l.sink.wrapping_add(id);
    if l.remaining > 0 {
        l.remaining -= 1;
        l.call_soon(Box::new(move |l| base_soon(l, id + 1)));
    } else if l.count == l.target {
        l.stop = true;
    }
}

fn base_timer(l: &mut baseline::Loop, id: u64) {
    l.count += 1;
    l.sink = l.sink.wrapping_add(id);
    if l.count == l.target {
        l.stop = true;
    }
}

fn run_baseline(workload: &str, delays: &[u64]) -> f64 {
    let mut l = baseline::Loop::new();
    let cpu0 = process_cpu();
    let n = match workload {
        "call_soon" => {
            l.target = CALL_SOON_N;
            l.remaining = CALL_SOON_N - CALL_SOON_BATCH;
            for i in 0..CALL_SOON_BATCH {
                l.call_soon(Box::new(move |l| base_soon(l, i)));
            }
            l.run_forever();
            CALL_SOON_N
        }
        _ => {
            let cancel = workload == "call_later_cancel";
            l.target = if cancel { TIMERS_N.div_ceil(10) as u64 } else { TIMERS_N as u64 };
            let mut handles = Vec::with_capacity(delays.len());
            for (i, &d) in delays.iter().enumerate() {
                let id = i as u64;
                handles.push(l.call_later(d, Box::new(move |l| base_timer(l, id))));
            }
            if cancel {
                for (i, h) in handles.iter().enumerate() {
                    if i % 10 != 0 {
                        l.cancel(*h);
                    }
                }
            }
            l.run_forever();
            delays.len() as u64
        }
    };
    let cpu = process_cpu() - cpu0;
    assert_eq!(l.count, l.target, "{workload}: baseline did not finish");
    std::hint::black_box(l.sink);
    cpu.as_nanos() as f64 / n as f64
}

fn main() {
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    // Delays in [0, 100 ms], generated before any timing.
    let delays: Vec<u64> = (0..TIMERS_N).map(|_| xorshift(&mut rng) % 100_000_001).collect();
    println!("# anyloop microbench: process CPU ns per scheduled callback, median of {REPS} interleaved reps");
    for (workload, bar) in [("call_soon", 1.5), ("call_later_fire", 2.0), ("call_later_cancel", 2.0)] {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for rep in 0..REPS {
            // Alternate which goes first, so neither always runs on a cold cache.
            if rep % 2 == 0 {
                ours.push(run_ours(workload, &delays));
                base.push(run_baseline(workload, &delays));
            } else {
                base.push(run_baseline(workload, &delays));
                ours.push(run_ours(workload, &delays));
            }
        }
        let (o, b) = (median(&mut ours), median(&mut base));
        let ratio = o / b;
        let verdict = if ratio <= bar { "" } else { " FAIL" };
        println!("{workload} ours={o:.1} baseline={b:.1} ratio={ratio:.2} (bar <= {bar}){verdict}");
    }
}
