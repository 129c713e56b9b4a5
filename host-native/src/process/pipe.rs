//! Pipe transports: `connect_read_pipe`, `connect_write_pipe`, and the
//! pipes of child processes, on the generic [`StreamTransport`].
//!
//! A pipe end is a [`StreamIo`] of one [`Direction`]: the transport brings
//! asyncio's flow control (`pause_reading`, water marks, `pause_writing` /
//! `resume_writing`), `write_eof` and the `connection_lost` rules, exactly
//! as for sockets. What is pipe-specific lives here:
//!
//! * **Which descriptors.** asyncio accepts pipes, sockets and character
//!   devices (ttys, ptys) and refuses regular files, whose readiness means
//!   nothing to a selector: epoll rejects them (`EPERM`), kqueue reports
//!   them always ready. They are an `InvalidInput` error here.
//! * **Non-blocking.** The descriptor is set `O_NONBLOCK`. The flag belongs
//!   to the open file description, so another process sharing it (a parent
//!   shell's stdin) sees it too; asyncio does the same.
//! * **The reader went away.** A write end becomes readable (epoll:
//!   `EPOLLERR`) when the last reader closes: the transport is lost at once,
//!   with `BrokenPipe` if data was still buffered. A write that races with
//!   it fails with `EPIPE` and ends the same way — never a `SIGPIPE`, which
//!   Rust programs ignore from the start.
//! * **`write_eof` is `close`**: a pipe cannot be half-closed; closing the
//!   write end after the buffer drained is the reader's end of file.
//! * **Ownership.** The loop owns the descriptor from the call on, and
//!   closes it with the transport — or at once if it cannot be used.

use std::fs::File;
use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use anyloop_core::{Error, ErrorKind, EventLoop, ExtraInfo, LoopFuture, RawFd, StreamProtocol, Transport};
use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::reactor::Reactor;
use crate::stream::{Direction, StreamIo, StreamTransport};

/// Which end of a pipe.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Data comes in.
    Read,
    /// Data goes out.
    Write,
}

/// One end of a pipe (or a socket, tty, pty used as one), non-blocking.
pub(crate) struct PipeIo {
    file: File,
    end: End,
}

impl PipeIo {
    /// Checks that `fd` is pipe-like and makes it non-blocking.
    fn new(fd: OwnedFd, end: End) -> Result<PipeIo, Error> {
        check_pipe_like(&fd)?;
        set_nonblocking(&fd).map_err(|e| Error::from(e).context("cannot make the pipe non-blocking"))?;
        Ok(PipeIo { file: File::from(fd), end })
    }
}

fn check_pipe_like(fd: &OwnedFd) -> Result<(), Error> {
    // SAFETY: fstat writes a `stat` for a valid descriptor into memory we
    // own; a zeroed `stat` is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(Error::from(io::Error::last_os_error()).context("cannot stat the pipe"));
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR => Ok(()),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "fd {} is not a pipe, socket or character device: pipe transports are for those only",
                fd.as_raw_fd()
            ),
        )),
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_GETFL / F_SETFL on a descriptor we own; no memory passed.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

impl Source for PipeIo {
    fn register(&mut self, registry: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        SourceFd(&self.file.as_raw_fd()).register(registry, token, interest)
    }
    fn reregister(&mut self, registry: &Registry, token: Token, interest: Interest) -> io::Result<()> {
        SourceFd(&self.file.as_raw_fd()).reregister(registry, token, interest)
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.file.as_raw_fd()).deregister(registry)
    }
}

impl StreamIo for PipeIo {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        (&self.file).write(buf)
    }
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&self.file).write_vectored(bufs)
    }
    /// Never called: `write_eof` on a write-only transport closes it.
    fn shutdown_write(&self) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    fn can_write_eof(&self) -> bool {
        self.end == End::Write
    }
    fn direction(&self) -> Direction {
        match self.end {
            End::Read => Direction::ReadOnly,
            End::Write => Direction::WriteOnly,
        }
    }
    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }
    fn extra_info(&self) -> Vec<(&'static str, ExtraInfo)> {
        vec![("pipe", ExtraInfo::Fd(i64::from(self.file.as_raw_fd())))]
    }
}

/// A started pipe transport over `fd` (owned), for `protocol`; the future
/// resolves once `connection_made` ran.
pub(crate) fn transport(
    lp: &EventLoop,
    reactor: &Rc<Reactor>,
    fd: OwnedFd,
    end: End,
    protocol: StreamProtocol,
) -> Result<(Rc<dyn Transport>, LoopFuture<()>), Error> {
    let io = PipeIo::new(fd, end)?;
    let t = StreamTransport::new(lp, reactor.clone(), io, protocol)?;
    let waiter = lp.create_future::<()>();
    t.start(Some(waiter.clone()));
    Ok((t, waiter))
}

/// `connect_read_pipe` / `connect_write_pipe`: takes ownership of `fd`.
pub(crate) fn connect(
    lp: &EventLoop,
    reactor: &Rc<Reactor>,
    fd: RawFd,
    end: End,
    protocol: StreamProtocol,
) -> Result<impl Future<Output = Result<Rc<dyn Transport>, Error>> + 'static, Error> {
    let fd = own(fd)?;
    let (t, waiter) = transport(lp, reactor, fd, end, protocol)?;
    Ok(async move {
        let mut guard = AbortOnDrop(Some(t.clone()));
        waiter.await?;
        guard.0 = None;
        Ok(t)
    })
}

/// If the caller stops waiting for `connect_*_pipe`, the transport goes.
struct AbortOnDrop(Option<Rc<dyn Transport>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

/// Takes ownership of the raw descriptor `fd` after checking it is open.
fn own(fd: RawFd) -> Result<OwnedFd, Error> {
    let invalid = || Error::new(ErrorKind::InvalidInput, format!("invalid file descriptor: {fd}"));
    if fd < 0 {
        return Err(invalid());
    }
    // SAFETY: F_GETFD only reads the descriptor's flags; an fd that is not
    // open makes it fail with EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(invalid());
    }
    // SAFETY: `fd` is open, and the caller hands it over to the loop
    // (connect_read_pipe / connect_write_pipe take ownership).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
