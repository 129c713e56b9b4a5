//! The WASI host on wasm32-wasip1 (`poll_oneoff`), under the embedded
//! wasmtime: loop semantics, stdin/stdout pipes, host-call counts, and
//! what wasip1 cannot do. The guests are built by `just test-wasi`.

mod common;

use anyloop_wasi_runner::{Options, Target, run};
use common::*;

const P1: Target = Target::P1;

#[test]
fn timers_fire_in_order_and_never_early() {
    timers(P1);
}

#[test]
fn cancelled_handles_never_run() {
    cancel(P1);
}

#[test]
fn stop_inside_a_batch_lets_the_batch_finish() {
    stop_batch(P1);
}

#[test]
fn stdin_with_data_ready_is_read_at_once() {
    stdin_ready(P1);
}

#[test]
fn stdin_closed_and_empty_is_eof() {
    stdin_empty(P1);
}

#[test]
fn stdin_late_data_arrives_while_the_loop_runs() {
    stdin_late(P1);
}

#[test]
fn stdout_backpressure_pauses_and_resumes_writing() {
    stdout_backpressure(P1);
}

#[test]
fn exception_handler_gets_unretrieved_errors() {
    exception_handler(P1);
}

#[test]
fn a_panic_traps_the_module() {
    panic_traps(P1);
}

#[test]
fn sockets_signals_processes_and_threads_are_unsupported_with_a_reason() {
    unsupported(P1, "wasmtime 48 no longer implements wasip1 sockets");
}

/// An idle loop with one 2 s timer: one `poll_oneoff` that sleeps the two
/// seconds (the loop's own count), a handful of host calls in all as
/// wasmtime's call hook counts them — never a busy loop.
#[test]
fn an_idle_loop_makes_a_handful_of_host_calls() {
    idle_host_calls(P1, "poll_oneoff");
}

#[test]
fn hello_world_prints_exactly_what_it_prints_natively() {
    let out = run(&example(P1, "hello_world"), Options::default()).expect("runs");
    assert_eq!((out.code, out.trap.as_deref()), (0, None));
    assert_eq!(out.stdout_text(), "Hello World\n");
    assert_eq!(out.stderr_text(), "");
}

#[test]
fn display_date_prints_five_dates_a_second_apart() {
    let out = run(&example(P1, "display_date"), Options::default()).expect("runs");
    assert_eq!((out.code, out.trap.as_deref()), (0, None));
    assert_eq!(out.stderr_text(), "");
    let text = out.stdout_text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    for l in &lines {
        // YYYY-MM-DD HH:MM:SS.ffffff
        let b = l.as_bytes();
        assert_eq!(b.len(), 26, "{l}");
        assert!(b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[19] == b'.', "{l}");
    }
    assert!(out.elapsed.as_secs_f64() >= 4.0, "{:?}", out.elapsed);
}

#[test]
fn wasi_stdin_echo_upper_cases_lines_until_eof() {
    stdin_echo_example(P1);
}

#[test]
fn a_loop_with_nothing_to_wait_for_returns_an_error() {
    deadlock_is_an_error(P1);
}

/// add_reader / add_writer on stdin and stdout; a bad fd is InvalidInput.
#[test]
fn fd_watchers_on_stdin_and_stdout() {
    anyloop_wasi_runner::precompile(&guest(P1, "probe")).expect("compiles");
    let (mut w, pipe) = anyloop_wasi_runner::stdin_pipe().expect("a stdin pipe");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        w.write(b"one").expect("write");
        std::thread::sleep(std::time::Duration::from_millis(200));
        w.write(b"two").expect("write");
        w.close().expect("close");
    });
    let out = probe(P1, &["watch"], Options { stdin: anyloop_wasi_runner::Stdin::Pipe(pipe), ..Default::default() });
    writer.join().expect("writer");
    let bad = lines_with(&out, "add_reader(99) ");
    assert!(bad.len() == 1 && bad[0].starts_with("InvalidInput "), "{bad:?}");
    assert_eq!(lines_with(&out, "add_writer(1) "), ["ok"]);
    assert_eq!(lines_with(&out, "writable").len(), 1, "a removed writer must not run again");
    assert_eq!(lines_with(&out, "reader "), ["\"one\"", "\"two\"", "eof removed=Ok(true)"]);
    assert_eq!(lines_with(&out, "removed again "), ["Ok(false)"]);
}

/// A watcher wasmtime cannot wait for (a reader on stdout) is woken once,
/// switched off and reported to the exception handler; no busy loop.
#[test]
fn an_unwatchable_fd_is_reported_not_spun_on() {
    let out = probe(P1, &["watch_unwatchable"], Options::default());
    assert_eq!(lines_with(&out, "add_reader(1) "), ["ok"]);
    let l = lines_with(&out, "woken ");
    let n: Vec<u64> =
        l.first().map(|l| l.split_whitespace().filter_map(|w| w.parse().ok()).collect()).unwrap_or_default();
    assert_eq!(n.first(), Some(&1), "{l:?}");
    assert!(n.get(1).is_some_and(|p| *p <= 5), "the loop spun: {l:?}");
    let h = lines_with(&out, "handler ");
    assert!(h.len() == 1 && h[0].contains("cannot be waited for"), "{h:?}");
}

#[test]
fn debug_mode_reports_slow_callbacks() {
    debug_mode(P1);
}
