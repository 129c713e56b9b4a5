//! wasip1: waiting in `poll_oneoff`, and the fd operations pipes need.
//!
//! One `poll_oneoff` per wait: an `fd_read` / `fd_write` subscription per
//! active watcher, plus one relative `CLOCKID_MONOTONIC` subscription for
//! the timeout. Runtime quirks this module absorbs:
//!
//! * `poll_oneoff` with zero subscriptions is `EINVAL` (there is no "sleep
//!   forever" in wasip1); the reactor never makes that call.
//! * One bad descriptor makes the whole call fail with `EBADF` — a closed
//!   fd, or an open one wasmtime cannot watch in that direction (a read on
//!   stdout); the sources are then tried one by one and the bad ones
//!   reported as *broken* (switched off, their owners woken once).
//! * wasmtime implements stdio reads and writes as blocking calls whatever
//!   `FDFLAGS_NONBLOCK` says. So the pipes read only after `fd_read`
//!   readiness (one read, which then returns what is there) and write at
//!   most [`WRITE_CHUNK`] bytes after `fd_write` readiness, the size a
//!   ready stdio stream accepts without waiting (like POSIX `PIPE_BUF`).

use std::time::Duration;

use anyloop_core::{Error, ErrorKind, RawFd};

use crate::reactor::Outcome;

/// What a wasip1 registration waits for.
pub(crate) enum Source {
    /// `fd` is readable.
    Read(RawFd),
    /// `fd` is writable.
    Write(RawFd),
}

impl Source {
    fn fd(&self) -> RawFd {
        match self {
            Source::Read(fd) | Source::Write(fd) => *fd,
        }
    }
}

/// The most a pipe writes per readiness event.
pub(crate) const WRITE_CHUNK: usize = 4096;

const CLOCK_USERDATA: u64 = u64::MAX;

/// One `poll_oneoff`.
pub(crate) fn poll(sources: &[&Source], timeout: Option<Duration>) -> Result<Outcome, Error> {
    let mut subs = Vec::with_capacity(sources.len() + 1);
    for (i, s) in sources.iter().enumerate() {
        let (tag, rw) = match s {
            Source::Read(fd) => (wasi::EVENTTYPE_FD_READ, fd_sub(*fd)?),
            Source::Write(fd) => (wasi::EVENTTYPE_FD_WRITE, fd_sub(*fd)?),
        };
        let u = if tag == wasi::EVENTTYPE_FD_READ {
            wasi::SubscriptionUU { fd_read: rw }
        } else {
            wasi::SubscriptionUU { fd_write: rw }
        };
        subs.push(wasi::Subscription { userdata: i as u64, u: wasi::SubscriptionU { tag: tag.raw(), u } });
    }
    if let Some(t) = timeout {
        let clock = wasi::SubscriptionClock {
            id: wasi::CLOCKID_MONOTONIC,
            timeout: super::timeout_nanos(t),
            precision: 0,
            flags: 0,
        };
        subs.push(wasi::Subscription {
            userdata: CLOCK_USERDATA,
            u: wasi::SubscriptionU { tag: wasi::EVENTTYPE_CLOCK.raw(), u: wasi::SubscriptionUU { clock } },
        });
    }
    let mut events: Vec<wasi::Event> = Vec::with_capacity(subs.len());
    // SAFETY: `subs` holds `subs.len()` initialized subscriptions and
    // `events` has room for as many events; poll_oneoff writes at most
    // that many and returns how many it wrote.
    let n = unsafe { wasi::poll_oneoff(subs.as_ptr(), events.as_mut_ptr(), subs.len()) };
    let n = match n {
        Ok(n) => n.min(subs.len()),
        Err(wasi::ERRNO_INTR) => 0,
        Err(wasi::ERRNO_BADF) => return Ok(Outcome { ready: Vec::new(), broken: broken(sources) }),
        Err(e) => return Err(errno(e, "poll_oneoff failed")),
    };
    // SAFETY: poll_oneoff initialized the first `n` events.
    unsafe { events.set_len(n) };
    let mut ready = Vec::with_capacity(n);
    for ev in &events {
        if ev.userdata != CLOCK_USERDATA
            && let Ok(i) = usize::try_from(ev.userdata)
            && i < sources.len()
        {
            // An event with an error still means "go and look": the read
            // or write will report it.
            ready.push(i);
        }
    }
    Ok(Outcome { ready, broken: Vec::new() })
}

fn fd_sub(fd: RawFd) -> Result<wasi::SubscriptionFdReadwrite, Error> {
    let file_descriptor =
        u32::try_from(fd).map_err(|_| Error::new(ErrorKind::InvalidInput, format!("invalid file descriptor: {fd}")))?;
    Ok(wasi::SubscriptionFdReadwrite { file_descriptor })
}

/// The sources `poll_oneoff` rejects: closed descriptors, and open ones
/// that cannot be watched in that direction (wasmtime watches reads on
/// stdin and files, writes on stdout, stderr and files). Each source is
/// tried alone with a zero timeout.
fn broken(sources: &[&Source]) -> Vec<usize> {
    sources.iter().enumerate().filter(|(_, s)| rejected(s)).map(|(i, _)| i).collect()
}

fn rejected(source: &Source) -> bool {
    let Ok(rw) = fd_sub(source.fd()) else { return true };
    let sub = match source {
        Source::Read(_) => wasi::Subscription {
            userdata: 0,
            u: wasi::SubscriptionU { tag: wasi::EVENTTYPE_FD_READ.raw(), u: wasi::SubscriptionUU { fd_read: rw } },
        },
        Source::Write(_) => wasi::Subscription {
            userdata: 0,
            u: wasi::SubscriptionU { tag: wasi::EVENTTYPE_FD_WRITE.raw(), u: wasi::SubscriptionUU { fd_write: rw } },
        },
    };
    let clock = wasi::Subscription {
        userdata: CLOCK_USERDATA,
        u: wasi::SubscriptionU {
            tag: wasi::EVENTTYPE_CLOCK.raw(),
            u: wasi::SubscriptionUU {
                clock: wasi::SubscriptionClock { id: wasi::CLOCKID_MONOTONIC, timeout: 0, precision: 0, flags: 0 },
            },
        },
    };
    let subs = [sub, clock];
    let mut events: Vec<wasi::Event> = Vec::with_capacity(subs.len());
    // SAFETY: as in `poll`: two subscriptions, room for two events; the
    // events are not read.
    let r = unsafe { wasi::poll_oneoff(subs.as_ptr(), events.as_mut_ptr(), subs.len()) };
    r == Err(wasi::ERRNO_BADF)
}

/// `Ok` if `fd` is an open descriptor.
pub(crate) fn check_fd(fd: RawFd) -> Result<(), Error> {
    let raw = u32::try_from(fd).map_err(|_| bad_fd(fd))?;
    // SAFETY: fd_fdstat_get only reads the descriptor table.
    match unsafe { wasi::fd_fdstat_get(raw) } {
        Ok(_) => Ok(()),
        Err(wasi::ERRNO_BADF) => Err(bad_fd(fd)),
        Err(e) => Err(errno(e, format!("fd_fdstat_get({fd}) failed"))),
    }
}

fn bad_fd(fd: RawFd) -> Error {
    Error::from_raw_os_error(
        i32::from(wasi::ERRNO_BADF.raw()),
        ErrorKind::InvalidInput,
        format!("invalid file descriptor: {fd}"),
    )
}

/// Reads once; `Ok(0)` is EOF, `WouldBlock` means nothing is there now.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Error> {
    let raw = u32::try_from(fd).map_err(|_| bad_fd(fd))?;
    let iov = wasi::Iovec { buf: buf.as_mut_ptr(), buf_len: buf.len() };
    // SAFETY: the iovec points into `buf`, valid for `buf.len()` bytes,
    // and the runtime writes at most that many.
    match unsafe { wasi::fd_read(raw, &[iov]) } {
        Ok(n) => Ok(n.min(buf.len())),
        // wasmtime reports "no data yet" on stdin as EINTR.
        Err(wasi::ERRNO_INTR) | Err(wasi::ERRNO_AGAIN) => Err(Error::from_kind(ErrorKind::WouldBlock)),
        Err(e) => Err(errno(e, format!("read from fd {fd} failed"))),
    }
}

/// Writes `data` (at most [`WRITE_CHUNK`] bytes of it); the bytes written.
pub(crate) fn write(fd: RawFd, data: &[u8]) -> Result<usize, Error> {
    let raw = u32::try_from(fd).map_err(|_| bad_fd(fd))?;
    let data = &data[..data.len().min(WRITE_CHUNK)];
    let iov = wasi::Ciovec { buf: data.as_ptr(), buf_len: data.len() };
    // SAFETY: the ciovec points into `data`, valid for its length.
    match unsafe { wasi::fd_write(raw, &[iov]) } {
        Ok(n) => Ok(n.min(data.len())),
        Err(wasi::ERRNO_AGAIN) | Err(wasi::ERRNO_INTR) => Ok(0),
        Err(wasi::ERRNO_PIPE) => Err(errno(wasi::ERRNO_PIPE, format!("write to fd {fd} failed: the reader is gone"))),
        Err(e) => Err(errno(e, format!("write to fd {fd} failed"))),
    }
}

/// Closes `fd` (errors are of no use to anyone at that point).
pub(crate) fn close(fd: RawFd) {
    if let Ok(raw) = u32::try_from(fd) {
        // SAFETY: the caller owns `fd` and never uses it again.
        let _ = unsafe { wasi::fd_close(raw) };
    }
}

/// A wasip1 errno as an anyloop error.
pub(crate) fn errno(e: wasi::Errno, msg: impl Into<String>) -> Error {
    let kind = match e {
        wasi::ERRNO_BADF | wasi::ERRNO_INVAL => ErrorKind::InvalidInput,
        wasi::ERRNO_PIPE => ErrorKind::BrokenPipe,
        wasi::ERRNO_AGAIN => ErrorKind::WouldBlock,
        wasi::ERRNO_CONNREFUSED => ErrorKind::ConnectionRefused,
        wasi::ERRNO_CONNRESET => ErrorKind::ConnectionReset,
        wasi::ERRNO_CONNABORTED => ErrorKind::ConnectionAborted,
        wasi::ERRNO_NOTCONN => ErrorKind::NotConnected,
        wasi::ERRNO_NOENT => ErrorKind::NotFound,
        wasi::ERRNO_ACCES | wasi::ERRNO_PERM | wasi::ERRNO_NOTCAPABLE => ErrorKind::PermissionDenied,
        wasi::ERRNO_NOSYS | wasi::ERRNO_NOTSUP => ErrorKind::Unsupported,
        wasi::ERRNO_MFILE | wasi::ERRNO_NFILE => ErrorKind::TooManyOpenFiles,
        _ => ErrorKind::Other,
    };
    let msg = msg.into();
    Error::from_raw_os_error(i32::from(e.raw()), kind, format!("{msg}: {}", e.message()))
}
