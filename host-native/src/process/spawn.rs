//! Starting a child: [`SubprocessOptions`] to a `std::process::Command`.
//!
//! std does the delicate part — `posix_spawn` or `fork` + `exec` with only
//! async-signal-safe calls in the child, exec errors reported back through a
//! close-on-exec pipe, the signal mask emptied and `SIGPIPE` restored to its
//! default in the child — so this module only maps the options:
//!
//! * each stream is a pipe (made here, close-on-exec, so that
//!   stderr can share stdout's), the parent's own stream, `/dev/null`, or a
//!   duplicate of a descriptor the caller keeps;
//! * `subprocess_shell` runs `/bin/sh -c cmd`, as asyncio does;
//! * the environment is cleared, then variables are removed, then set.
//!
//! The `Command` is dropped right after the spawn: it holds the child's ends
//! of the pipes, and the parent must not keep them, or it would never see
//! the child's end of file.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio as StdStdio};

use anyloop_core::net::{Stdio, SubprocessOptions};
use anyloop_core::{Error, ErrorKind};

/// A started child and the parent's ends of its pipes (stdin, stdout,
/// stderr; `None` where the stream is not a pipe).
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) pipes: [Option<OwnedFd>; 3],
}

/// `dup(fd)`, close-on-exec, with a clear error for a bad descriptor.
pub(crate) fn dup(fd: RawFd) -> Result<OwnedFd, Error> {
    if fd < 0 {
        return Err(Error::new(ErrorKind::InvalidInput, format!("invalid file descriptor: {fd}")));
    }
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor number; an invalid
    // one makes it fail with EBADF.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        let e = std::io::Error::last_os_error();
        let what = format!("invalid file descriptor: {fd}");
        return Err(match e.raw_os_error() {
            Some(libc::EBADF) => Error::new(ErrorKind::InvalidInput, what),
            _ => Error::from(e).context(format!("cannot duplicate fd {fd}")),
        });
    }
    // SAFETY: `new` was just returned by fcntl: open, and ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn io(e: std::io::Error, what: &str) -> Error {
    Error::from(e).context(what)
}

/// The child's end of one stream, and the parent's end if it is a pipe.
/// With `share`, the third value is a copy of the child's end, for
/// stderr → stdout.
fn stream(stdio: &Stdio, which: i32, share: bool) -> Result<(StdStdio, Option<OwnedFd>, Option<OwnedFd>), Error> {
    Ok(match stdio {
        Stdio::Pipe => {
            let (r, w) = std::io::pipe().map_err(|e| io(e, "cannot create a pipe"))?;
            let (child, parent): (OwnedFd, OwnedFd) =
                if which == 0 { (r.into(), w.into()) } else { (w.into(), r.into()) };
            let copy =
                if share { Some(child.try_clone().map_err(|e| io(e, "cannot duplicate a pipe"))?) } else { None };
            (child.into(), Some(parent), copy)
        }
        Stdio::Inherit => {
            let copy = if share { Some(dup(std::io::stdout().as_fd().as_raw_fd())?) } else { None };
            (StdStdio::inherit(), None, copy)
        }
        Stdio::DevNull => {
            let copy = if share {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .map_err(|e| io(e, "cannot open /dev/null"))?;
                Some(OwnedFd::from(f))
            } else {
                None
            };
            (StdStdio::null(), None, copy)
        }
        Stdio::Fd(fd) => {
            let child = dup(*fd)?;
            let copy = if share { Some(child.try_clone().map_err(|e| io(e, "cannot duplicate fd"))?) } else { None };
            (child.into(), None, copy)
        }
        Stdio::Stdout => {
            let name = if which == 0 { "stdin" } else { "stdout" };
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("Stdio::Stdout is only valid for stderr, not for {name}"),
            ));
        }
    })
}

/// Starts `program args` (or `/bin/sh -c program` with `shell`).
pub(crate) fn spawn(program: &str, args: &[String], shell: bool, opts: &SubprocessOptions) -> Result<Spawned, Error> {
    if program.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "the program to run is empty"));
    }
    if shell && !args.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "subprocess_shell takes a command line, not arguments"));
    }
    let mut cmd = if shell {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(program);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    };
    if let Some(a0) = &opts.arg0 {
        cmd.arg0(a0);
    }
    if let Some(cwd) = &opts.cwd {
        cmd.current_dir(cwd);
    }
    if opts.env_clear {
        cmd.env_clear();
    }
    for k in &opts.env_remove {
        cmd.env_remove(k);
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    if opts.new_process_group {
        cmd.process_group(0);
    }

    let (stdin, p0, _) = stream(&opts.stdin, 0, false)?;
    let (stdout, p1, stdout_copy) = stream(&opts.stdout, 1, opts.stderr == Stdio::Stdout)?;
    let (stderr, p2) = match &opts.stderr {
        Stdio::Stdout => match stdout_copy {
            Some(fd) => (StdStdio::from(fd), None),
            None => return Err(Error::new(ErrorKind::InvalidState, "stdout has no descriptor to share with stderr")),
        },
        other => {
            let (s, p, _) = stream(other, 2, false)?;
            (s, p)
        }
    };
    cmd.stdin(stdin).stdout(stdout).stderr(stderr);

    let spawned = cmd.spawn();
    // Closes the parent's copies of the child's ends.
    drop(cmd);
    let child = spawned.map_err(|e| {
        let what = if shell { String::from("/bin/sh") } else { format!("{program:?}") };
        io(e, &format!("cannot run {what}"))
    })?;
    Ok(Spawned { child, pipes: [p0, p1, p2] })
}
