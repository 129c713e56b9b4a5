//! The child watcher: learns when a loop's children exit and reaps them,
//! so no zombie is left and no other code's child is ever reaped.
//!
//! Two ways, picked per child:
//!
//! * **pidfd** (Linux ≥ 5.3): `pidfd_open(pid)` gives a descriptor that
//!   becomes readable when the child exits; it is registered with the loop's
//!   reactor like a socket. Exact and cheap: no signal, no scan.
//! * **SIGCHLD** (other Unixes, old kernels, seccomp filters that refuse
//!   `pidfd_open`, or when chosen — see [`ChildWatcher`]): the loop handles
//!   SIGCHLD through the signal machinery of [`crate::signals`]; each
//!   delivery calls `waitpid(pid, WNOHANG)` for *this loop's* children only.
//!   Never `waitpid(-1)`, which would steal the children of other loops,
//!   threads and libraries (asyncio's old `SafeChildWatcher` lesson).
//!
//! There is no race between a spawn and the watch: an exited child stays a
//! zombie until we reap it, so `pidfd_open` on it still works, and a child
//! watched through SIGCHLD gets one `waitpid` right away (in the next
//! iteration) in case its SIGCHLD came before the loop subscribed.
//!
//! The exit status is reported like asyncio: the exit code, or minus the
//! number of the signal that killed the child.
//!
//! When the loop closes, children still running are killed (asyncio's
//! transports kill theirs when they are closed or collected) and reaped; one
//! that does not die at once is waited for by a short-lived thread, so
//! closing never blocks and never leaves a zombie.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, ExitStatus};
use std::rc::{Rc, Weak};

use anyloop_core::{Error, EventLoop, Handle};
use mio::unix::SourceFd;
use mio::{Interest, Token};

use crate::reactor::{Dispatch, Reactor, Readiness};
use crate::signals::{LoopSignals, Owner};

/// How a native loop learns that its child processes exited.
///
/// The environment variable `ANYLOOP_FORCE_SIGCHLD=1`, set when a host is
/// created, forces [`Sigchld`](ChildWatcher::Sigchld) for it whatever is
/// chosen here: the whole test suite (`just test-sigchld`) then runs through
/// the portable path.
///
/// ```
/// use anyloop_native::{ChildWatcher, NativeHost};
/// let host = NativeHost::new().unwrap().with_child_watcher(ChildWatcher::Sigchld);
/// let lp = anyloop_native::EventLoop::new(host);
/// # lp.close().unwrap();
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum ChildWatcher {
    /// A pidfd per child where the OS offers it (Linux ≥ 5.3), SIGCHLD
    /// elsewhere. The default.
    #[default]
    Auto,
    /// Always SIGCHLD, with `waitpid` on the loop's own children: the
    /// portable path, selectable on Linux to test it.
    Sigchld,
}

impl ChildWatcher {
    /// Whether the environment forces SIGCHLD (`ANYLOOP_FORCE_SIGCHLD=1`).
    pub fn forced_by_env() -> bool {
        std::env::var_os("ANYLOOP_FORCE_SIGCHLD").is_some_and(|v| v == "1")
    }
}

/// What to do when a child exited: called on the loop with its status.
pub(crate) type OnExit = Box<dyn FnOnce(&EventLoop, i32)>;

struct Watched {
    child: Child,
    pidfd: Option<(OwnedFd, Token)>,
    on_exit: OnExit,
}

/// The child watcher of one loop.
pub(crate) struct Reaper {
    reactor: Rc<Reactor>,
    signals: Rc<LoopSignals>,
    mode: Cell<ChildWatcher>,
    /// `ANYLOOP_FORCE_SIGCHLD=1` when the host was created.
    forced: bool,
    /// `pidfd_open` is not available here (ENOSYS, EPERM…): stop trying.
    no_pidfd: Cell<bool>,
    sigchld: Cell<bool>,
    children: RefCell<BTreeMap<u32, Watched>>,
    me: Weak<Reaper>,
}

/// The exit status as asyncio reports it.
pub(crate) fn returncode(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => -sig,
        // Neither exited nor signalled: cannot come from waitpid without
        // WUNTRACED; report it as asyncio reports an unknown status.
        (None, None) => 255,
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: pidfd_open takes two integers and returns a new descriptor
    // (close-on-exec) or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: `fd` was just returned by pidfd_open: open, and ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn pidfd_open(_pid: u32) -> std::io::Result<OwnedFd> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// The reactor's link to one child's pidfd.
struct PidfdReady {
    reaper: Weak<Reaper>,
    pid: u32,
}

impl Dispatch for PidfdReady {
    fn ready(&self, lp: &EventLoop, _readiness: Readiness) {
        if let Some(r) = self.reaper.upgrade() {
            // Reaping is bookkeeping, not user code: the exit callback is
            // scheduled, and runs in the loop's batch.
            for (on_exit, code) in r.reap(Some(self.pid)) {
                let _ = lp.call_soon(move |lp| on_exit(lp, code));
            }
        }
    }
}

impl Reaper {
    pub(crate) fn new(reactor: Rc<Reactor>, signals: Rc<LoopSignals>) -> Rc<Reaper> {
        Rc::new_cyclic(|me| Reaper {
            reactor,
            signals,
            mode: Cell::new(ChildWatcher::Auto),
            forced: ChildWatcher::forced_by_env(),
            no_pidfd: Cell::new(false),
            sigchld: Cell::new(false),
            children: RefCell::new(BTreeMap::new()),
            me: me.clone(),
        })
    }

    pub(crate) fn set_mode(&self, mode: ChildWatcher) {
        self.mode.set(mode);
    }

    /// Watches `child`; `on_exit` runs on the loop once it exited and was
    /// reaped. Returns the pidfd watching it, if any. Fails only if neither
    /// a pidfd nor SIGCHLD can watch it; then the child is killed and
    /// reaped before the error returns.
    pub(crate) fn watch(&self, lp: &EventLoop, child: Child, on_exit: OnExit) -> Result<Option<i32>, Error> {
        let pid = child.id();
        let pidfd = self.open_pidfd(pid);
        let raw = pidfd.as_ref().map(|(fd, _)| fd.as_raw_fd());
        let by_signal = pidfd.is_none();
        self.children.borrow_mut().insert(pid, Watched { child, pidfd, on_exit });
        if by_signal {
            if let Err(e) = self.subscribe_sigchld() {
                let w = self.children.borrow_mut().remove(&pid);
                if let Some(w) = w {
                    kill_and_reap(vec![w.child]);
                }
                return Err(e);
            }
            // Its SIGCHLD may have come before the subscription.
            let me = self.me.clone();
            lp.call_soon(move |lp| {
                if let Some(r) = me.upgrade() {
                    r.run_exits(lp, Some(pid));
                }
            })?;
        }
        Ok(raw)
    }

    fn open_pidfd(&self, pid: u32) -> Option<(OwnedFd, Token)> {
        if self.mode.get() == ChildWatcher::Sigchld || self.forced || self.no_pidfd.get() {
            return None;
        }
        let fd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) => {
                // Out of descriptors is passing; anything else means this
                // system has no usable pidfd.
                if !matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM)) {
                    self.no_pidfd.set(true);
                }
                return None;
            }
        };
        let target = Rc::new(PidfdReady { reaper: self.me.clone(), pid });
        let token = self.reactor.register(&mut SourceFd(&fd.as_raw_fd()), Interest::READABLE, target).ok()?;
        Some((fd, token))
    }

    fn subscribe_sigchld(&self) -> Result<(), Error> {
        if self.sigchld.get() {
            return Ok(());
        }
        let me = self.me.clone();
        let handle = Handle::repeating(move |lp| {
            if let Some(r) = me.upgrade() {
                r.run_exits(lp, None);
            }
        });
        self.signals.add(libc::SIGCHLD, Owner::Children, handle)?;
        self.sigchld.set(true);
        Ok(())
    }

    /// Reaps and runs the exit callbacks (called as a loop callback).
    fn run_exits(&self, lp: &EventLoop, pid: Option<u32>) {
        for (on_exit, code) in self.reap(pid) {
            on_exit(lp, code);
        }
    }

    /// `waitpid(WNOHANG)` on `pid`, or on every child watched by SIGCHLD;
    /// returns the exit callbacks of those that exited, with their status.
    fn reap(&self, pid: Option<u32>) -> Vec<(OnExit, i32)> {
        let mut exited = Vec::new();
        let mut children = self.children.borrow_mut();
        let pids: Vec<u32> = match pid {
            Some(p) => vec![p],
            None => children.iter().filter(|(_, w)| w.pidfd.is_none()).map(|(&p, _)| p).collect(),
        };
        for pid in pids {
            let Some(w) = children.get_mut(&pid) else { continue };
            let code = match w.child.try_wait() {
                Ok(Some(status)) => returncode(status),
                Ok(None) => continue,
                // ECHILD: someone else reaped it (a `waitpid(-1)` elsewhere
                // in the process). asyncio reports 255 then.
                Err(_) => 255,
            };
            if let Some(w) = children.remove(&pid) {
                if let Some((fd, token)) = w.pidfd {
                    let _ = self.reactor.deregister(&mut SourceFd(&fd.as_raw_fd()), token);
                }
                exited.push((w.on_exit, code));
            }
        }
        exited
    }

    /// The loop is closing: kill and reap every child still running.
    pub(crate) fn close(&self) {
        let children = std::mem::take(&mut *self.children.borrow_mut());
        let mut alive = Vec::with_capacity(children.len());
        for (_, w) in children {
            if let Some((fd, token)) = &w.pidfd {
                let _ = self.reactor.deregister(&mut SourceFd(&fd.as_raw_fd()), *token);
            }
            alive.push(w.child);
            // `on_exit` is dropped unused: the loop is gone.
        }
        kill_and_reap(alive);
        if self.sigchld.replace(false) {
            let _ = self.signals.remove(None, libc::SIGCHLD, Owner::Children);
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.close();
    }
}

/// Kills `children` that are still running and reaps all of them; those
/// not reaped at once are waited for by a background thread.
fn kill_and_reap(children: Vec<Child>) {
    let mut left = Vec::new();
    for mut c in children {
        if let Ok(Some(_)) = c.try_wait() {
            continue;
        }
        let _ = c.kill();
        match c.try_wait() {
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => left.push(c),
        }
    }
    if left.is_empty() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel::<Child>();
    let waiter = std::thread::Builder::new().name("anyloop-reaper".into()).spawn(move || {
        for mut c in rx {
            let _ = c.wait();
        }
    });
    for mut c in left {
        if waiter.is_err() {
            // No thread to be had: a short block beats a zombie.
            let _ = c.wait();
        } else if let Err(std::sync::mpsc::SendError(mut c)) = tx.send(c) {
            let _ = c.wait();
        }
    }
}
