//! Child reaping on the native host: no zombies, no stolen children, each
//! loop hears exactly its own children — through both child watchers.
//!
//! A test binary of its own: it counts this process's zombies, which the
//! children of other tests would disturb — and its own tests take turns
//! ([`serial`]) for the same reason.
#![cfg(unix)]

mod support;

use std::time::{Duration, Instant};

use anyloop::EventLoop;
use anyloop::host::ChildWatcher;
use anyloop::net::{Stdio, SubprocessOptions};
use support::{Recorder, WATCHERS, new_loop, run};

/// Tests of this binary run one at a time: a child that exited and is
/// about to be reaped is a zombie for a moment.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn quiet() -> SubprocessOptions {
    SubprocessOptions { stdin: Stdio::DevNull, stdout: Stdio::DevNull, stderr: Stdio::DevNull, ..Default::default() }
}

/// The zombie children of this process, from `/proc`.
#[cfg(target_os = "linux")]
fn zombies() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ppid …": comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str()) {
            found.push(pid);
        }
    }
    found
}

/// Spawns `sh -c "exit CODE"` for each code, all at once, and returns the
/// status each reported, in order.
async fn exits(lp: &EventLoop, codes: Vec<i32>) -> Result<Vec<i32>, anyloop::Error> {
    exits_with(lp, codes, quiet()).await
}

/// [`exits`] with stdio options: with a stdout pipe, each child also says
/// `bye`, which must arrive.
async fn exits_with(lp: &EventLoop, codes: Vec<i32>, opts: SubprocessOptions) -> Result<Vec<i32>, anyloop::Error> {
    let piped = opts.stdout == Stdio::Pipe;
    let mut tasks = Vec::new();
    for code in codes {
        let l2 = lp.clone();
        let opts = opts.clone();
        tasks.push(lp.create_task(async move {
            let rec = Recorder::new(&l2);
            let done = rec.done.clone();
            let cmd = format!("echo bye; exit {code}");
            let (t, p) = l2.subprocess_shell(move || rec, &cmd, opts).await?;
            done.await?;
            assert_eq!(p.borrow().out, if piped { &b"bye\n"[..] } else { b"" });
            Ok::<_, anyloop::Error>(t.get_returncode())
        })?);
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await??.unwrap_or(i32::MIN));
    }
    Ok(out)
}

/// This process's open descriptors, from `/proc/self/fd`.
#[cfg(target_os = "linux")]
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[cfg(target_os = "linux")]
#[test]
fn two_hundred_children_in_parallel_leave_no_zombie_and_no_fd() {
    let _serial = serial();
    for w in WATCHERS {
        for piped in [false, true] {
            let fds = open_fds();
            let codes: Vec<i32> = (0..200).map(|i| i % 7).collect();
            let want = codes.clone();
            let opts = if piped { SubprocessOptions { stdout: Stdio::Pipe, ..quiet() } } else { quiet() };
            let got = run(w, 60, async move |lp: EventLoop| exits_with(&lp, codes, opts).await).unwrap();
            assert_eq!(got, want, "{w:?}, piped {piped}");
            assert_eq!(zombies(), Vec::<u32>::new(), "{w:?}, piped {piped}");
            assert_eq!(open_fds(), fds, "{w:?}, piped {piped}: descriptors leaked");
        }
    }
}

#[test]
fn loops_in_two_threads_each_see_exactly_their_own_children() {
    let _serial = serial();
    // One loop per watcher kind, at the same time: a SIGCHLD loop must not
    // reap the pidfd loop's children, nor the other way round.
    let threads: Vec<_> = [(ChildWatcher::Auto, 10), (ChildWatcher::Sigchld, 20), (ChildWatcher::Sigchld, 40)]
        .into_iter()
        .map(|(w, base)| {
            std::thread::spawn(move || {
                let codes: Vec<i32> = (0..30).map(|i| base + i % 10).collect();
                let want = codes.clone();
                let got = run(w, 60, async move |lp: EventLoop| exits(&lp, codes).await).unwrap();
                assert_eq!(got, want, "{w:?}");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn children_of_other_code_are_never_reaped() {
    let _serial = serial();
    // While a SIGCHLD loop reaps its own children, children spawned by std
    // elsewhere in the process keep their exit status for their owner.
    let others = std::thread::spawn(|| {
        (0..20)
            .map(|i| std::process::Command::new("sh").args(["-c", &format!("exit {i}")]).status().unwrap().code())
            .collect::<Vec<_>>()
    });
    for w in WATCHERS {
        let got = run(w, 60, async move |lp: EventLoop| exits(&lp, vec![3; 50]).await).unwrap();
        assert_eq!(got, vec![3; 50], "{w:?}");
    }
    assert_eq!(others.join().unwrap(), (0..20).map(Some).collect::<Vec<_>>());
}

#[test]
fn closing_the_loop_kills_and_reaps_running_children() {
    let _serial = serial();
    for w in WATCHERS {
        let lp = new_loop(w);
        let l2 = lp.clone();
        let pid = lp
            .run_until_complete(async move {
                let (t, _p) = l2.subprocess_exec(|| Recorder::new(&l2), "sleep", &["30"], quiet()).await?;
                Ok::<_, anyloop::Error>(t.get_pid().unwrap())
            })
            .unwrap()
            .unwrap();
        lp.close().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // kill(pid, 0) succeeds as long as the pid exists, zombie or not.
        // SAFETY: kill() with signal 0 only checks that the process exists.
        while unsafe { libc::kill(pid as libc::pid_t, 0) } == 0 {
            assert!(Instant::now() < deadline, "{w:?}: child {pid} still there after close");
            std::thread::sleep(Duration::from_millis(10));
        }
        #[cfg(target_os = "linux")]
        assert_eq!(zombies(), Vec::<u32>::new(), "{w:?}");
    }
}
