//! Helpers shared by the wasmtime tests: find the guests (a missing one
//! fails the test with the command that builds it), run them, parse what
//! they print, and the checks that run on both wasip1 and wasip2.

#![allow(dead_code)]

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyloop_wasi_runner::{BoundedPipe, Options, Outcome, Stdin, Target, example_path, guest_path, run, stdin_pipe};

/// The guest binary `name` for `target`; panics (fails the test) if it was
/// not built.
pub fn guest(target: Target, name: &str) -> PathBuf {
    let p = guest_path(target, name);
    assert!(
        p.exists(),
        "{} is missing: build the WASI guests first with `just test-wasi` (cargo build --release -p \
         anyloop-wasi-guests --target {})",
        p.display(),
        target.triple()
    );
    p
}

/// An example built for `target`; panics if it was not built.
pub fn example(target: Target, name: &str) -> PathBuf {
    let p = example_path(target, name);
    assert!(
        p.exists(),
        "{} is missing: build it first with `just test-wasi` (cargo build --release --example {name} --target {})",
        p.display(),
        target.triple()
    );
    p
}

/// Runs `probe CHECK ARGS…` and insists it exited 0 without trapping.
pub fn probe(target: Target, args: &[&str], mut opts: Options) -> Outcome {
    let path = guest(target, "probe");
    opts.args = args.iter().map(|a| a.to_string()).collect();
    let out = run(&path, opts).expect("the guest runs");
    assert!(
        out.trap.is_none() && out.code == 0,
        "probe {args:?} failed (code {}, trap {:?})\nstdout:\n{}\nstderr:\n{}",
        out.code,
        out.trap,
        out.stdout_text(),
        out.stderr_text()
    );
    out
}

/// The lines of stdout that start with `prefix` (without it).
pub fn lines_with(out: &Outcome, prefix: &str) -> Vec<String> {
    out.stdout_text().lines().filter_map(|l| l.strip_prefix(prefix)).map(str::to_string).collect()
}

/// `key=value` pairs of a line, as numbers where they are.
pub fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{key}="))).and_then(|v| v.parse().ok())
}

/// Timers fire in deadline order, FIFO among equals, never early on the
/// loop clock nor on the host clock.
pub fn timers(target: Target) {
    let out = probe(target, &["timers"], Options::default());
    let fired = lines_with(&out, "fired ");
    assert_eq!(fired.len(), 7, "{}", out.stdout_text());
    for l in &fired {
        let n: Vec<u64> = l.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        let (want, at_loop, at_host) = (n[1], n[2], n[3]);
        assert!(at_loop >= want, "fired early on the loop clock: {l}");
        assert!(at_host >= want, "fired early on the host clock: {l}");
    }
    assert_eq!(lines_with(&out, "order "), ["4,6,1,3,5,2,0"]);
    assert!(out.elapsed >= Duration::from_millis(80), "the run took {:?}", out.elapsed);
}

/// Cancelled handles never run.
pub fn cancel(target: Target) {
    let out = probe(target, &["cancel"], Options::default());
    assert_eq!(lines_with(&out, "ran "), ["kept"]);
    assert_eq!(lines_with(&out, "cancelled "), ["true true"]);
}

/// stop() inside a batch.
pub fn stop_batch(target: Target) {
    let out = probe(target, &["stop_batch"], Options::default());
    assert_eq!(lines_with(&out, "first "), ["a,b,c"]);
    assert_eq!(lines_with(&out, "second "), ["a,b,c,later"]);
}

/// Data that is there at once is read at once, then EOF.
pub fn stdin_ready(target: Target) {
    let out = probe(target, &["stdin"], Options { stdin: Stdin::Bytes(b"now\n".to_vec()), ..Default::default() });
    assert_eq!(lines_with(&out, "data "), ["0 \"now\\n\""], "{}", out.stdout_text());
    assert_eq!(lines_with(&out, "eof ").len(), 1);
    assert_eq!(lines_with(&out, "lost "), ["None"]);
}

/// An empty, closed stdin is EOF with no data.
pub fn stdin_empty(target: Target) {
    let out = probe(target, &["stdin"], Options::default());
    assert!(lines_with(&out, "data ").is_empty(), "{}", out.stdout_text());
    assert_eq!(lines_with(&out, "eof ").len(), 1);
    assert_eq!(lines_with(&out, "lost "), ["None"]);
}

/// A stdin with no data yet: the loop keeps running (its ticker ticks),
/// data is delivered when it comes, EOF when the writer closes.
pub fn stdin_late(target: Target) {
    anyloop_wasi_runner::precompile(&guest(target, "probe")).expect("compiles");
    let (mut w, pipe) = stdin_pipe().expect("a stdin pipe");
    let writer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(400));
        w.write(b"late\n").expect("write");
        thread::sleep(Duration::from_millis(200));
        w.write(b"more\n").expect("write");
        thread::sleep(Duration::from_millis(100));
        w.close().expect("close");
    });
    let out = probe(target, &["stdin"], Options { stdin: Stdin::Pipe(pipe), ..Default::default() });
    writer.join().expect("writer");
    let data = lines_with(&out, "data ");
    assert_eq!(data.len(), 2, "{}", out.stdout_text());
    let tick = |l: &str| l.split_whitespace().next().and_then(|t| t.parse::<u32>().ok()).unwrap_or(0);
    // 400 ms of 20 ms ticks went by before the first data: the loop was
    // not blocked in a read.
    assert!(tick(&data[0]) >= 8, "too few ticks before the late data: {}", data[0]);
    assert!(data[0].ends_with("\"late\\n\""), "{}", data[0]);
    assert!(tick(&data[1]) > tick(&data[0]), "{data:?}");
    assert!(data[1].ends_with("\"more\\n\""), "{}", data[1]);
    assert_eq!(lines_with(&out, "eof ").len(), 1);
    assert_eq!(lines_with(&out, "lost "), ["None"]);
}

/// stdout that does not drain: the transport buffers, pauses the
/// protocol, keeps the loop running, resumes when the reader catches up,
/// and every byte arrives in order.
pub fn stdout_backpressure(target: Target) {
    anyloop_wasi_runner::precompile(&guest(target, "probe")).expect("compiles");
    const TOTAL: usize = 2 << 20;
    const CAPACITY: usize = 64 * 1024;
    let pipe = BoundedPipe::new(CAPACITY);
    let reader_pipe = pipe.clone();
    let reader = thread::spawn(move || {
        thread::sleep(Duration::from_millis(500));
        let mut all = Vec::new();
        loop {
            let chunk = reader_pipe.read(1 << 20, Duration::from_millis(100));
            if chunk.is_empty() && reader_pipe.is_closed() && reader_pipe.is_empty() {
                break;
            }
            all.extend_from_slice(&chunk);
        }
        all
    });
    let total = TOTAL.to_string();
    let out = probe(target, &["stdout_flood", &total], Options { stdout: Some(pipe.clone()), ..Default::default() });
    let all = reader.join().expect("reader");
    assert_eq!(all.len(), TOTAL);
    assert!(all.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8), "bytes out of order");
    let stats = out.stderr_text();
    let n = |k| field(&stats, k).unwrap_or_else(|| panic!("no {k} in {stats:?}"));
    assert!(n("pauses") >= 1 && n("resumes") >= 1, "{stats}");
    assert_eq!(n("pauses"), n("resumes"), "{stats}");
    assert!(n("ticks_paused") >= 20, "the loop stalled while stdout was full: {stats}");
    assert!(n("max_buffer") > 64 * 1024, "{stats}");
    assert_eq!(n("sent") as usize, TOTAL, "{stats}");
    assert!(stats.contains("exc=None"), "{stats}");
    // The test pipe's capacity is soft (see BoundedPipe); it must still have
    // held back most of the 2 MiB, which stayed in the guest's buffer.
    assert!(pipe.high_water() <= 2 * CAPACITY, "{}", pipe.high_water());
}

/// The exception handler and the default one (stderr).
pub fn exception_handler(target: Target) {
    let out = probe(target, &["exception"], Options::default());
    assert_eq!(lines_with(&out, "handler "), ["Future exception was never retrieved / Some(\"boom\")"]);
    assert!(out.stderr_text().contains("default handler reached"), "{}", out.stderr_text());
}

/// WASI cannot: Unsupported, with the reason.
pub fn unsupported(target: Target, sock_reason: &str) {
    let out = probe(target, &["unsupported"], Options::default());
    for what in ["sock_accept", "sock_recv", "sock_sendall"] {
        let l = lines_with(&out, &format!("{what} "));
        assert_eq!(l.len(), 1, "{}", out.stdout_text());
        assert!(l[0].starts_with("Unsupported ") && l[0].contains(sock_reason), "{what}: {}", l[0]);
    }
    for what in ["subprocess_exec", "run_in_executor", "add_signal_handler"] {
        let l = lines_with(&out, &format!("{what} "));
        assert!(l.len() == 1 && l[0].starts_with("Unsupported "), "{what}: {l:?}");
    }
    assert!(lines_with(&out, "add_signal_handler ")[0].contains("no signals"));
    assert_eq!(lines_with(&out, "threadsafe ").len(), 1, "call_soon_threadsafe must work");
}

/// A panic aborts the module (wasm has no unwinding): it traps, the
/// message is on stderr, and nothing after it runs.
pub fn panic_traps(target: Target) {
    let path = guest(target, "probe");
    let out = run(&path, Options { args: vec!["panic".into()], ..Default::default() }).expect("runs");
    assert!(out.trap.is_some(), "a panic must trap: {out:?}");
    assert!(out.stderr_text().contains("probe panic in a callback"), "{}", out.stderr_text());
    assert!(!out.stdout_text().contains("survived"));
}

/// `wasi_stdin_echo` upper-cases lines from a stdin that arrives late.
pub fn stdin_echo_example(target: Target) {
    let path = example(target, "wasi_stdin_echo");
    anyloop_wasi_runner::precompile(&path).expect("compiles");
    let (mut w, pipe) = stdin_pipe().expect("a stdin pipe");
    let writer = thread::spawn(move || {
        w.write(b"hello\nwor").expect("write");
        thread::sleep(Duration::from_millis(100));
        w.write("ld\nünïcode\nlast".as_bytes()).expect("write");
        w.close().expect("close");
    });
    let out = run(&path, Options { stdin: Stdin::Pipe(pipe), ..Default::default() }).expect("runs");
    writer.join().expect("writer");
    assert_eq!((out.code, out.trap.as_deref()), (0, None), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "HELLO\nWORLD\nÜNÏCODE\nLAST");
    assert_eq!(out.stderr_text(), "");
}

/// A loop with nothing to wait for cannot sleep forever in WASI (nothing
/// could wake it): run_forever returns an error.
pub fn deadlock_is_an_error(target: Target) {
    let out = probe(target, &["deadlock"], Options::default());
    let l = lines_with(&out, "run_forever ");
    assert_eq!(l.len(), 1, "{}", out.stdout_text());
    assert!(l[0].starts_with("InvalidState ") && l[0].contains("wait forever"), "{}", l[0]);
}

/// One 2 s timer: the loop waits once, the guest makes a handful of host
/// calls (counted by wasmtime's call hook), and the figure is printed.
pub fn idle_host_calls(target: Target, poll_name: &str) {
    let path = guest(target, "probe");
    anyloop_wasi_runner::precompile(&path).expect("compiles");
    let out = run(&path, Options { args: vec!["idle".into(), "2".into()], count_calls: true, ..Default::default() })
        .expect("runs");
    assert_eq!((out.code, out.trap.as_deref()), (0, None), "{}", out.stderr_text());
    let total = out.calls.get("host_calls").copied().unwrap_or(0);
    let polls: u64 = lines_with(&out, "polls ")
        .first()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let secs = out.elapsed.as_secs_f64();
    eprintln!(
        "{target:?} idle loop with one 2 s timer: {polls} {poll_name} by the loop, {total} host calls in all \
         (start-up included) in {secs:.2} s = {:.1} host calls/s",
        total as f64 / secs
    );
    assert!(out.elapsed.as_millis() >= 2000, "{:?}", out.elapsed);
    assert_eq!(polls, 1, "the loop should wait once, for the whole 2 s");
    assert!((1..=60).contains(&total), "host calls: {total}");
}

/// Debug mode reports the one slow callback (and only it) on stderr.
pub fn debug_mode(target: Target) {
    let out = probe(target, &["debug"], Options::default());
    assert_eq!(lines_with(&out, "debug "), ["true"]);
    let err = out.stderr_text();
    let slow: Vec<&str> = err.lines().filter(|l| l.contains("Executing") && l.contains("took")).collect();
    assert_eq!(slow.len(), 1, "{err}");
    assert!(slow[0].contains("probe.rs"), "the warning names the callback's location: {}", slow[0]);
}
