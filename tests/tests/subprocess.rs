//! `subprocess_exec` / `subprocess_shell` on the native host, with real
//! child processes, through both child watchers (pidfd and SIGCHLD).
//!
//! A test binary of its own: its loops handle SIGCHLD, and it runs many
//! children.
#![cfg(unix)]

mod support;

use std::io::{Read, Seek};
use std::os::fd::AsRawFd;

use anyloop::host::ChildWatcher;
use anyloop::host::signal::*;
use anyloop::net::{Stdio, SubprocessOptions};
use anyloop::{ErrorKind, EventLoop, SubprocessTransport};
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
            let want = w == ChildWatcher::Auto && kernel_has_pidfd();
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
