//! `subprocess_exec` / `subprocess_shell` on the native host, with real
//! child processes, through both child watchers (pidfd and SIGCHLD).
//!
//! A test binary of its own: its loops handle SIGCHLD, and it runs many
//! children.
#![cfg(unix)]

mod support;

use std::io::{Read, Seek};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use anyloop::host::ChildWatcher;
use anyloop::host::signal::*;
use anyloop::net::{Stdio, SubprocessOptions};
use anyloop::{
    BaseProtocol, Error, ErrorKind, EventLoop, LoopFuture, SubprocessProtocol, SubprocessTransport, Transport,
};
use support::{Event, Recorder, WATCHERS, run, shell};

/// Options with every stream on `/dev/null`.
fn quiet() -> SubprocessOptions {
    SubprocessOptions { stdin: Stdio::DevNull, stdout: Stdio::DevNull, stderr: Stdio::DevNull, ..Default::default() }
}

/// A temporary file to use as a child's stdout, and a way to read it back.
struct Capture(std::fs::File);

impl Capture {
    fn new() -> Capture {
        Capture(tempfile())
    }
    fn fd(&self) -> i32 {
        self.0.as_raw_fd()
    }
    fn text(&mut self) -> String {
        let mut s = String::new();
        self.0.rewind().unwrap();
        self.0.read_to_string(&mut s).unwrap();
        s
    }
}

fn tempfile() -> std::fs::File {
    let dir = std::env::temp_dir();
    for i in 0..1000 {
        let p = dir.join(format!("anyloop-subprocess-{}-{i}", std::process::id()));
        if let Ok(f) = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&p) {
            let _ = std::fs::remove_file(&p);
            return f;
        }
    }
    panic!("no temporary file");
}

#[test]
fn exit_codes_and_signal_deaths_are_reported_like_asyncio() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            for (cmd, want) in
                [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -9 $$", -9), ("kill -TERM $$", -15)]
            {
                let rec = shell(&lp, cmd, quiet()).await?;
                let t = rec.transport.as_ref().unwrap();
                assert_eq!(t.get_returncode(), Some(want), "{w:?}: {cmd}");
                assert_eq!(rec.returncode_at_exit, Some(want), "{w:?}: {cmd}");
                assert_eq!(rec.events, [Event::Made, Event::Exited, Event::Lost], "{w:?}: {cmd}");
            }
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

#[test]
fn kill_terminate_and_send_signal_reach_the_child() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            type Act = fn(&dyn SubprocessTransport) -> Result<(), anyloop::Error>;
            let cases: [(&str, Act, i32); 3] = [
                ("kill", |t| t.kill(), -SIGKILL),
                ("terminate", |t| t.terminate(), -SIGTERM),
                ("send_signal", |t| t.send_signal(SIGUSR1), -SIGUSR1),
            ];
            for (what, act, want) in cases {
                let rec = Recorder::new(&lp);
                let (done, exited) = (rec.done.clone(), rec.exited.clone());
                let (t, _p) = lp.subprocess_exec(move || rec, "sleep", &["30"], quiet()).await?;
                assert!(t.get_pid().is_some_and(|p| p > 0));
                assert_eq!(t.get_returncode(), None, "{w:?}: {what}: still running");
                act(&*t)?;
                exited.await?;
                done.await?;
                assert_eq!(t.get_returncode(), Some(want), "{w:?}: {what}");
                // Reaped: signalling it now would hit whoever has the pid.
                let e = t.send_signal(SIGTERM).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
                t.close();
                assert!(t.is_closing());
            }
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

#[test]
fn close_kills_a_running_child() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            let rec = Recorder::new(&lp);
            let done = rec.done.clone();
            let (t, p) = lp.subprocess_exec(move || rec, "sleep", &["30"], quiet()).await?;
            t.close();
            done.await?;
            assert_eq!(t.get_returncode(), Some(-SIGKILL), "{w:?}");
            assert_eq!(p.borrow().events, [Event::Made, Event::Exited, Event::Lost]);
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

#[test]
fn spawn_errors_are_typed() {
    run(ChildWatcher::Auto, 20, async move |lp: EventLoop| {
        let e = lp.subprocess_exec(|| Recorder::new(&lp), "/nonexistent/program", &[], quiet()).await.err().unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("/nonexistent/program"), "{e}");

        let opts = SubprocessOptions { cwd: Some("/nonexistent/dir".into()), ..quiet() };
        let e = lp.subprocess_exec(|| Recorder::new(&lp), "true", &[], opts).await.err().unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

        for opts in [
            SubprocessOptions { stdin: Stdio::Stdout, ..quiet() },
            SubprocessOptions { stdout: Stdio::Stdout, ..quiet() },
            SubprocessOptions { stdout: Stdio::Fd(-1), ..quiet() },
            SubprocessOptions { stdout: Stdio::Fd(1_000_000), ..quiet() },
        ] {
            let e = lp.subprocess_exec(|| Recorder::new(&lp), "true", &[], opts.clone()).await.err().unwrap();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{opts:?}: {e}");
        }
        let e = lp.subprocess_exec(|| Recorder::new(&lp), "", &[], quiet()).await.err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        Ok::<_, anyloop::Error>(())
    })
    .unwrap();
}

#[test]
fn fd_stdio_env_cwd_and_stderr_to_stdout() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            let mut cap = Capture::new();
            let opts = SubprocessOptions {
                stdout: Stdio::Fd(cap.fd()),
                stderr: Stdio::Stdout,
                stdin: Stdio::DevNull,
                cwd: Some("/".into()),
                env: vec![("ANYLOOP_A".into(), "a value".into())],
                env_remove: vec!["CARGO_MANIFEST_DIR".into()],
                ..Default::default()
            };
            assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some(), "cargo sets it for tests");
            let cmd = "echo \"$ANYLOOP_A|${CARGO_MANIFEST_DIR-unset}|$(pwd)\"; echo to-stderr >&2; exit 4";
            let rec = shell(&lp, cmd, opts).await?;
            assert_eq!(rec.transport.unwrap().get_returncode(), Some(4));
            assert_eq!(cap.text(), "a value|unset|/\nto-stderr\n", "{w:?}");

            // A cleared environment keeps only what is set.
            let mut cap = Capture::new();
            let opts = SubprocessOptions {
                stdout: Stdio::Fd(cap.fd()),
                env_clear: true,
                env: vec![("ONLY".into(), "1".into())],
                ..quiet()
            };
            shell(&lp, "env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' | sort", opts).await?;
            assert_eq!(cap.text(), "ONLY=1\n", "{w:?}");
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn arg0_and_new_process_group() {
    run(ChildWatcher::Auto, 20, async move |lp: EventLoop| {
        let mut cap = Capture::new();
        let opts = SubprocessOptions { stdout: Stdio::Fd(cap.fd()), arg0: Some("renamed".into()), ..quiet() };
        let rec = Recorder::new(&lp);
        let done = rec.done.clone();
        lp.subprocess_exec(move || rec, "/bin/sh", &["-c", "tr '\\0' ' ' < /proc/$$/cmdline"], opts).await?;
        done.await?;
        assert!(cap.text().starts_with("renamed -c "), "{:?}", cap.text());

        // Field 5 of /proc/PID/stat is the process group.
        for (group, same) in [(true, true), (false, false)] {
            let mut cap = Capture::new();
            let opts = SubprocessOptions { stdout: Stdio::Fd(cap.fd()), new_process_group: group, ..quiet() };
            let rec = shell(&lp, "echo $$ $(cut -d' ' -f5 /proc/$$/stat)", opts).await?;
            let text = cap.text();
            let v: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(v.len(), 2, "{text:?}");
            assert_eq!(v[0] == v[1], same, "group {group}: {text:?}");
            assert_eq!(rec.transport.unwrap().get_pid().unwrap().to_string(), v[0]);
        }
        Ok::<_, anyloop::Error>(())
    })
    .unwrap();
}

/// Whether this kernel has `pidfd_open` (Linux ≥ 5.3, not filtered out).
#[cfg(target_os = "linux")]
fn kernel_has_pidfd() -> bool {
    // SAFETY: pidfd_open on our own pid; the result is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd < 0 {
        return false;
    }
    // SAFETY: closing the descriptor we just got.
    unsafe { libc::close(fd as i32) };
    true
}

#[test]
fn each_watcher_is_the_one_in_use() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            let rec = Recorder::new(&lp);
            let done = rec.done.clone();
            let (t, _p) = lp.subprocess_exec(move || rec, "sleep", &["30"], quiet()).await?;
            let pidfd = t.get_extra_info("pidfd");
            #[cfg(target_os = "linux")]
            let want = w == ChildWatcher::Auto && kernel_has_pidfd() && !ChildWatcher::forced_by_env();
            #[cfg(not(target_os = "linux"))]
            let want = false;
            assert_eq!(pidfd.is_some(), want, "{w:?}: {pidfd:?}");
            t.kill()?;
            done.await?;
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

/// Pumps a payload into `cat`'s stdin with write flow control, and pauses
/// reading its stdout now and then (read flow control: `cat` blocks, stops
/// reading, and the stdin side fills up).
struct CatPump {
    data: Rc<Vec<u8>>,
    chunk: usize,
    sent: usize,
    paused: bool,
    stdin: Option<Rc<dyn Transport>>,
    stdout: Option<Rc<dyn Transport>>,
    got: Vec<u8>,
    write_pauses: usize,
    read_pauses: usize,
    max_buffered: usize,
    events: Vec<Event>,
    done: LoopFuture<()>,
}

impl CatPump {
    fn pump(&mut self) {
        let Some(stdin) = self.stdin.clone() else { return };
        // pause_writing() comes after the callback that crossed the
        // high-water mark returns, so a callback that writes in a loop
        // watches the buffer itself (see `ProtocolSlot`).
        let (_, high) = stdin.get_write_buffer_limits();
        while !self.paused && self.sent < self.data.len() && stdin.get_write_buffer_size() <= high {
            let end = (self.sent + self.chunk).min(self.data.len());
            stdin.write(&self.data[self.sent..end]).unwrap();
            self.sent = end;
            self.max_buffered = self.max_buffered.max(stdin.get_write_buffer_size());
        }
        if self.sent == self.data.len() && !stdin.is_closing() {
            stdin.write_eof().unwrap(); // a pipe's EOF: closed once flushed
        }
    }
}

impl BaseProtocol for CatPump {
    fn pause_writing(&mut self) {
        assert!(!self.paused);
        self.paused = true;
        self.write_pauses += 1;
    }
    fn resume_writing(&mut self) {
        assert!(self.paused);
        self.paused = false;
        self.pump();
    }
    fn connection_lost(&mut self, exc: Option<Error>) {
        assert!(exc.is_none(), "{exc:?}");
        self.events.push(Event::Lost);
        let _ = self.done.set_result(());
    }
}

impl SubprocessProtocol for CatPump {
    fn connection_made(&mut self, t: Rc<dyn SubprocessTransport>) {
        self.events.push(Event::Made);
        self.stdin = t.get_pipe_transport(0);
        self.stdout = t.get_pipe_transport(1);
        assert!(self.stdin.is_some() && self.stdout.is_some() && t.get_pipe_transport(2).is_some());
        assert!(t.get_pipe_transport(3).is_none() && t.get_pipe_transport(-1).is_none());
        self.pump();
    }
    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        assert_eq!(fd, 1);
        let before = self.got.len() >> 20;
        self.got.extend_from_slice(data);
        if self.got.len() >> 20 != before {
            // Every MiB: stop reading stdout for a few milliseconds.
            let out = self.stdout.clone().unwrap();
            out.pause_reading();
            assert!(!out.is_reading());
            self.read_pauses += 1;
            let lp = anyloop::get_running_loop().unwrap();
            lp.call_later(Duration::from_millis(3), move |_| out.resume_reading()).unwrap();
        }
    }
    fn pipe_connection_lost(&mut self, fd: i32, exc: Option<Error>) {
        self.events.push(Event::PipeLost(fd, exc.map(|e| e.kind())));
    }
    fn process_exited(&mut self) {
        self.events.push(Event::Exited);
    }
}

#[test]
fn cat_round_trip_of_10_mib_with_flow_control_both_ways() {
    // Large writes make resume_writing() write the last chunk and close
    // stdin from inside the transport's flush: nothing may be dropped.
    for (w, chunk) in WATCHERS.into_iter().flat_map(|w| [(w, 16 * 1024), (w, 256 * 1024)]) {
        let data = Rc::new(payload(10 << 20));
        let d2 = data.clone();
        let p = run(w, 60, async move |lp: EventLoop| {
            let done = lp.create_future();
            let pump = CatPump {
                data: d2,
                chunk,
                sent: 0,
                paused: false,
                stdin: None,
                stdout: None,
                got: Vec::new(),
                write_pauses: 0,
                read_pauses: 0,
                max_buffered: 0,
                events: Vec::new(),
                done: done.clone(),
            };
            let (t, p) = lp.subprocess_exec(move || pump, "cat", &[], SubprocessOptions::default()).await?;
            done.await?;
            assert_eq!(t.get_returncode(), Some(0));
            Ok::<_, anyloop::Error>(p)
        })
        .unwrap();
        let p = p.borrow();
        assert_eq!(p.got.len(), data.len(), "{w:?}");
        assert!(p.got == *data, "{w:?}: bytes differ");
        assert!(p.write_pauses > 0, "{w:?}: stdin never paused");
        assert!(p.read_pauses >= 9, "{w:?}");
        // The buffer stays near the high-water mark (64 KiB) plus a write.
        assert!(p.max_buffered <= 64 * 1024 + chunk, "{w:?}: {} buffered", p.max_buffered);
        assert_eq!(p.events.first(), Some(&Event::Made));
        let tail = &p.events[p.events.len() - 2..];
        assert_eq!(tail, [Event::Exited, Event::Lost], "{w:?}: {:?}", p.events);
        for fd in 0..3 {
            assert!(p.events.contains(&Event::PipeLost(fd, None)), "{w:?}: {:?}", p.events);
        }
    }
}

#[test]
fn output_of_both_pipes_arrives_before_process_exited() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            let rec = shell(&lp, "echo hello; echo oops >&2; exit 3", SubprocessOptions::default()).await?;
            assert_eq!(rec.out, b"hello\n");
            assert_eq!(rec.err, b"oops\n");
            assert_eq!(rec.transport.as_ref().unwrap().get_returncode(), Some(3));
            let exited = rec.events.iter().position(|e| *e == Event::Exited).unwrap();
            for fd in 0..3 {
                let lost = rec.events.iter().position(|e| *e == Event::PipeLost(fd, None));
                assert!(lost.is_some_and(|l| l < exited), "{w:?}: {:?}", rec.events);
            }
            assert_eq!(rec.events.last(), Some(&Event::Lost));

            // stderr → stdout: one pipe, both streams, in order.
            let opts = SubprocessOptions { stderr: Stdio::Stdout, ..Default::default() };
            let rec = shell(&lp, "echo one; echo two >&2; echo three", opts).await?;
            assert_eq!(rec.out, b"one\ntwo\nthree\n");
            assert!(rec.err.is_empty());
            assert!(rec.transport.unwrap().get_pipe_transport(2).is_none());
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

#[test]
fn a_child_that_closes_stdout_early() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            let rec =
                shell(&lp, "echo early; exec 1>&-; sleep 0.2; echo still-running >&2", SubprocessOptions::default())
                    .await?;
            assert_eq!(rec.out, b"early\n");
            assert_eq!(rec.err, b"still-running\n");
            let pos = |e: Event| rec.events.iter().position(|x| *x == e).unwrap();
            // stdout is lost while the child still runs, long before exit.
            assert!(pos(Event::PipeLost(1, None)) < pos(Event::Data(2)), "{w:?}: {:?}", rec.events);
            assert!(pos(Event::PipeLost(2, None)) < pos(Event::Exited), "{w:?}: {:?}", rec.events);
            assert_eq!(rec.transport.unwrap().get_returncode(), Some(0));
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

#[test]
fn a_killed_child_with_pipes_reports_minus_9_after_its_pipes_close() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            let rec = Recorder::new(&lp);
            let done = rec.done.clone();
            let (t, p) = lp.subprocess_exec(move || rec, "sleep", &["30"], SubprocessOptions::default()).await?;
            t.kill()?;
            done.await?;
            assert_eq!(t.get_returncode(), Some(-9));
            let events = p.borrow().events.clone();
            assert_eq!(events.first(), Some(&Event::Made));
            assert_eq!(&events[events.len() - 2..], [Event::Exited, Event::Lost], "{w:?}: {events:?}");
            assert_eq!(events.len(), 6, "{w:?}: three pipes lost: {events:?}");
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

#[test]
fn writing_to_the_stdin_of_a_child_that_closed_it() {
    // The child closes its stdin, unread, and lives on: the data buffered
    // for it can never be delivered, which reaches
    // pipe_connection_lost(0, BrokenPipe) — no SIGPIPE, no panic.
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            let rec = Recorder::new(&lp);
            let done = rec.done.clone();
            // It reads one line, then closes stdin with the rest unread.
            let cmd = "read -r line; exec 0<&-; echo closed; sleep 0.3";
            let (t, p) = lp.subprocess_shell(move || rec, cmd, SubprocessOptions::default()).await?;
            let stdin = t.get_pipe_transport(0).unwrap();
            stdin.write(&[&b"go\n"[..], &payload(1 << 20)].concat())?;
            assert!(stdin.get_write_buffer_size() > 0, "more than a pipe holds");
            done.await?;
            assert_eq!(p.borrow().out, b"closed\n");
            assert_eq!(stdin.write(b"x").unwrap_err().kind(), ErrorKind::InvalidState);
            let events = p.borrow().events.clone();
            let lost0 = events.iter().find_map(|e| match e {
                Event::PipeLost(0, k) => Some(*k),
                _ => None,
            });
            assert!(matches!(lost0, Some(Some(ErrorKind::BrokenPipe))), "{w:?}: {events:?}");
            assert_eq!(t.get_returncode(), Some(0));
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

/// A reproducible pseudo-random payload.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn the_environment_can_force_sigchld() {
    let run = |force: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_child"));
        cmd.arg("watcher").env_remove("ANYLOOP_FORCE_SIGCHLD");
        if let Some(v) = force {
            cmd.env("ANYLOOP_FORCE_SIGCHLD", v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(Some("1")), "sigchld\n");
    #[cfg(target_os = "linux")]
    let default = if kernel_has_pidfd() { "pidfd\n" } else { "sigchld\n" };
    #[cfg(not(target_os = "linux"))]
    let default = "sigchld\n";
    assert_eq!(run(None), default);
    assert_eq!(run(Some("0")), default);
}

/// Keeps no transport: only futures for its exit and end.
struct Forgetful {
    exited: LoopFuture<()>,
    done: LoopFuture<()>,
}

impl BaseProtocol for Forgetful {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        let _ = self.done.set_result(());
    }
}

impl SubprocessProtocol for Forgetful {
    fn process_exited(&mut self) {
        let _ = self.exited.set_result(());
    }
}

#[test]
fn a_dropped_transport_still_reports_the_exit() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            let (exited, done) = (lp.create_future(), lp.create_future());
            let p = Forgetful { exited: exited.clone(), done: done.clone() };
            let (t, _) = lp.subprocess_shell(move || p, "sleep 0.1", SubprocessOptions::default()).await?;
            drop(t);
            exited.await?;
            done.await?;
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

/// Cancels the task creating the process from `connection_made`, before
/// the creation returns to it.
struct CancelCreator {
    creator: Rc<std::cell::RefCell<Option<anyloop::AnyTask>>>,
    transport: Rc<std::cell::RefCell<Option<Rc<dyn SubprocessTransport>>>>,
    done: LoopFuture<()>,
}

impl BaseProtocol for CancelCreator {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        let _ = self.done.set_result(());
    }
}

impl SubprocessProtocol for CancelCreator {
    fn connection_made(&mut self, t: Rc<dyn SubprocessTransport>) {
        *self.transport.borrow_mut() = Some(t);
        assert!(self.creator.borrow().as_ref().unwrap().cancel(None));
    }
}

#[test]
fn cancelling_the_creation_kills_the_child() {
    for w in WATCHERS {
        run(w, 20, async move |lp: EventLoop| {
            let creator = Rc::new(std::cell::RefCell::new(None));
            let done = lp.create_future();
            let transport = Rc::new(std::cell::RefCell::new(None));
            let proto = CancelCreator { creator: creator.clone(), transport: transport.clone(), done: done.clone() };
            let l2 = lp.clone();
            let creating = lp.create_task(async move {
                let (_t, p) = l2.subprocess_exec(move || proto, "sleep", &["30"], quiet()).await?;
                Ok::<_, anyloop::Error>(p)
            })?;
            *creator.borrow_mut() = Some(creating.as_any());
            done.await?;
            assert!(creating.cancelled());
            let t = transport.borrow().clone().unwrap();
            assert_eq!(t.get_returncode(), Some(-SIGKILL), "{w:?}: killed when the creation was cancelled");
            Ok::<_, anyloop::Error>(())
        })
        .unwrap();
    }
}

/// Panics in its first `pipe_data_received`, records the rest.
struct Panicky {
    panicked: bool,
    rec: Recorder,
}

impl BaseProtocol for Panicky {
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.rec.connection_lost(exc);
    }
}

impl SubprocessProtocol for Panicky {
    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        if !self.panicked {
            self.panicked = true;
            panic!("protocol bug");
        }
        self.rec.pipe_data_received(fd, data);
    }
    fn pipe_connection_lost(&mut self, fd: i32, exc: Option<Error>) {
        self.rec.pipe_connection_lost(fd, exc);
    }
    fn process_exited(&mut self) {
        self.rec.process_exited();
    }
}

#[test]
fn a_panicking_protocol_goes_to_the_exception_handler_and_the_rest_arrives() {
    run(ChildWatcher::Auto, 20, async move |lp: EventLoop| {
        let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
        let s2 = seen.clone();
        lp.set_exception_handler(Some(Rc::new(move |_, ctx: &anyloop::ExceptionContext| {
            s2.borrow_mut().push(ctx.exception.as_ref().map(|e| e.kind()));
        })));
        let rec = Recorder::new(&lp);
        let done = rec.done.clone();
        let cmd = "echo first; sleep 0.1; echo second";
        let (t, p) =
            lp.subprocess_shell(move || Panicky { panicked: false, rec }, cmd, SubprocessOptions::default()).await?;
        done.await?;
        assert_eq!(*seen.borrow(), [Some(ErrorKind::Panic)]);
        let p = p.borrow();
        assert_eq!(p.rec.out, b"second\n");
        assert_eq!(&p.rec.events[p.rec.events.len() - 2..], [Event::Exited, Event::Lost]);
        assert_eq!(t.get_returncode(), Some(0));
        Ok::<_, anyloop::Error>(())
    })
    .unwrap();
}
