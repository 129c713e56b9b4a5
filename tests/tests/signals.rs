//! `add_signal_handler` / `remove_signal_handler` on the native host, with
//! real signals sent to this test process.
//!
//! This file is a test binary of its own, so the signals it sends reach no
//! other tests. Its tests run in parallel threads, so each uses signals no
//! other test here uses; what must kill a process runs in the `child`
//! program.
#![cfg(unix)]

use std::cell::{Cell, RefCell};
use std::process::Command;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use anyloop::host::signal::*;
use anyloop::{ErrorKind, EventLoop};

fn kill_self(signum: i32) {
    // SAFETY: kill() on our own pid has no memory-safety preconditions.
    let r = unsafe { libc::kill(libc::getpid(), signum) };
    assert_eq!(r, 0, "kill failed: {}", std::io::Error::last_os_error());
}

/// Stops the loop after `secs` and returns the flag saying it did.
fn deadline(lp: &EventLoop, secs: u64) -> Rc<Cell<bool>> {
    let hit = Rc::new(Cell::new(false));
    let h = hit.clone();
    lp.call_later(Duration::from_secs(secs), move |lp| {
        h.set(true);
        lp.stop();
    })
    .unwrap();
    hit
}

#[test]
fn kill_getpid_reaches_the_handler_on_the_loop() {
    let lp = anyloop::new_event_loop().unwrap();
    let me = thread::current().id();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    lp.add_signal_handler(SIGUSR1, move |lp| {
        // A callback on the loop: the running loop is set, and it may call
        // any loop method.
        assert_eq!(thread::current().id(), me);
        assert!(anyloop::get_running_loop().is_ok());
        c.set(c.get() + 1);
        lp.call_soon(|lp| lp.stop()).unwrap();
    })
    .unwrap();
    lp.call_soon(|_| kill_self(SIGUSR1)).unwrap();
    let timed_out = deadline(&lp, 10);
    lp.run_forever().unwrap();
    assert!(!timed_out.get(), "the handler never ran");
    assert_eq!(calls.get(), 1);
    assert!(lp.remove_signal_handler(SIGUSR1).unwrap());
    lp.close().unwrap();
}

#[test]
fn no_signal_of_a_burst_is_lost() {
    let lp = anyloop::new_event_loop().unwrap();
    let seen: Rc<RefCell<Vec<i32>>> = Rc::default();
    for signum in [SIGUSR2, SIGHUP, SIGALRM] {
        let s = seen.clone();
        lp.add_signal_handler(signum, move |lp| {
            s.borrow_mut().push(signum);
            lp.stop();
        })
        .unwrap();
    }
    let timed_out = deadline(&lp, 20);
    for round in 0..50 {
        seen.borrow_mut().clear();
        // Three different signals, and one of them many times, all before
        // the loop looks: every signal is handled, each burst at least once.
        lp.call_soon(|_| {
            for _ in 0..20 {
                kill_self(SIGUSR2);
            }
            kill_self(SIGHUP);
            kill_self(SIGALRM);
        })
        .unwrap();
        while !timed_out.get()
            && !{
                let s = seen.borrow();
                [SIGUSR2, SIGHUP, SIGALRM].iter().all(|x| s.contains(x))
            }
        {
            lp.run_forever().unwrap();
        }
        assert!(!timed_out.get(), "round {round}: only {:?} arrived", seen.borrow());
        let n = seen.borrow().iter().filter(|&&s| s == SIGUSR2).count();
        assert!((1..=20).contains(&n), "round {round}: SIGUSR2 handled {n} times");
    }
    lp.close().unwrap();
}

#[test]
fn loops_in_other_threads_each_hear_their_own_handler() {
    // Two loops in two threads handle SIGWINCH; one kill reaches both, each
    // handler on its own loop's thread.
    let ready = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let ready = ready.clone();
            thread::spawn(move || {
                let lp = anyloop::new_event_loop().unwrap();
                let me = thread::current().id();
                let on = Rc::new(Cell::new(None));
                let o = on.clone();
                lp.add_signal_handler(SIGWINCH, move |lp| {
                    o.set(Some(thread::current().id()));
                    lp.stop();
                })
                .unwrap();
                let timed_out = deadline(&lp, 10);
                ready.wait();
                lp.run_forever().unwrap();
                lp.close().unwrap();
                assert!(!timed_out.get(), "the loop of {me:?} never heard SIGWINCH");
                assert_eq!(on.get(), Some(me));
            })
        })
        .collect();
    ready.wait();
    kill_self(SIGWINCH);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_second_handler_replaces_the_first_and_removal_reports_it() {
    let lp = anyloop::new_event_loop().unwrap();
    let first = Rc::new(Cell::new(0));
    let second = Rc::new(Cell::new(0));
    let f = first.clone();
    lp.add_signal_handler(SIGVTALRM, move |_| f.set(f.get() + 1)).unwrap();
    let s = second.clone();
    lp.add_signal_handler(SIGVTALRM, move |lp| {
        s.set(s.get() + 1);
        lp.stop();
    })
    .unwrap();
    lp.call_soon(|_| kill_self(SIGVTALRM)).unwrap();
    let timed_out = deadline(&lp, 10);
    lp.run_forever().unwrap();
    assert!(!timed_out.get());
    assert_eq!((first.get(), second.get()), (0, 1));
    assert!(lp.remove_signal_handler(SIGVTALRM).unwrap());
    assert!(!lp.remove_signal_handler(SIGVTALRM).unwrap());
    assert!(!lp.remove_signal_handler(SIGPROF).unwrap(), "never handled");
    lp.close().unwrap();
}

#[test]
fn closing_a_loop_removes_its_handlers() {
    // SIGURG is ignored by default, so a stray one harms nobody.
    let closed = anyloop::new_event_loop().unwrap();
    let called = Rc::new(Cell::new(false));
    let c = called.clone();
    closed.add_signal_handler(SIGURG, move |_| c.set(true)).unwrap();
    closed.close().unwrap();
    assert_eq!(closed.add_signal_handler(SIGURG, |_| ()).unwrap_err().kind(), ErrorKind::Closed);

    let lp = anyloop::new_event_loop().unwrap();
    lp.add_signal_handler(SIGURG, |lp| lp.stop()).unwrap();
    lp.call_soon(|_| kill_self(SIGURG)).unwrap();
    let timed_out = deadline(&lp, 10);
    lp.run_forever().unwrap();
    assert!(!timed_out.get());
    assert!(!called.get(), "the closed loop's handler ran");
    lp.close().unwrap();
}

#[test]
fn invalid_and_uncatchable_signals_are_invalid_input() {
    let lp = anyloop::new_event_loop().unwrap();
    let bad = [0, -1, 100_000, SIGKILL, SIGSTOP, SIGSEGV, SIGILL, SIGFPE];
    // Real-time signals exist, but their default action cannot be restored.
    #[cfg(target_os = "linux")]
    let bad = [&bad[..], &[libc::SIGRTMIN()]].concat();
    for signum in bad {
        let e = lp.add_signal_handler(signum, |_| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "signal {signum}: {e}");
        assert!(e.to_string().contains(&signum.to_string()), "{e}");
        let e = lp.remove_signal_handler(signum).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "signal {signum}: {e}");
    }
    let e = lp.add_signal_handler(SIGKILL, |_| ()).unwrap_err();
    assert!(e.to_string().contains("SIGKILL"), "{e}");
    lp.close().unwrap();
}

/// Runs `child restore-default signum` and returns (how it ended, stdout).
fn restore_default(signum: i32) -> (std::process::ExitStatus, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_child")).args(["restore-default", &signum.to_string()]).output().unwrap();
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn removing_the_last_handler_restores_the_default_action() {
    use std::os::unix::process::ExitStatusExt;
    // A second Ctrl-C after removal kills the process, as does SIGTERM.
    for signum in [SIGINT, SIGTERM] {
        let (status, out) = restore_default(signum);
        assert_eq!(out, "handled\nremoved true\nremoved again false\n", "signal {signum}");
        assert_eq!(status.signal(), Some(signum), "signal {signum}: {status:?}");
    }
}

#[test]
fn an_ignored_signal_stays_ignored_after_removal() {
    // Rust ignores SIGPIPE before main: removing the handler keeps that.
    let (status, out) = restore_default(SIGPIPE);
    assert_eq!(out, "handled\nremoved true\nremoved again false\nsurvived\n");
    assert!(status.success(), "{status:?}");
}
