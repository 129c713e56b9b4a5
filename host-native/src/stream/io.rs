//! [`StreamIo`]: what a stream transport needs from its descriptor, and the
//! implementations for TCP and Unix stream sockets.
//!
//! Sends use `MSG_NOSIGNAL` where the OS has it (Linux, Android, the BSDs):
//! a write to a connection the peer reset must fail with `EPIPE`, not kill
//! the process with `SIGPIPE`. std's `write` already does this, its
//! `write_vectored` (`writev`) does not, so vectored sends go through
//! `sendmsg`. macOS has no such flag; sockets made there get `SO_NOSIGPIPE`
//! instead (see `crate::net::socket`).

use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;

use anyloop_core::{ExtraInfo, RawFd};
use mio::event::Source;

/// Which way data flows through a descriptor.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (sockets).
    Both,
    /// Only in (the read end of a pipe). Writes fail with `Unsupported`.
    ReadOnly,
    /// Only out (the write end of a pipe). A readable event means the reader
    /// went away, as asyncio's `_UnixWritePipeTransport` treats it.
    WriteOnly,
}

/// A non-blocking descriptor a [`StreamTransport`](super::StreamTransport)
/// can drive: a socket, a pipe end, a pty…
///
/// Every method takes `&self` (the OS calls do not need exclusive access);
/// [`Source`] is how the reactor registers it. Methods return the OS's
/// errors untouched (`WouldBlock`, `Interrupted`…); the transport decides.
pub trait StreamIo: Source + 'static {
    /// Reads into `buf`; 0 is end of stream.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes from `buf`.
    fn write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Writes from several buffers in one system call.
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Closes the write side, keeping the read side open (TCP half-close).
    fn shutdown_write(&self) -> io::Result<()>;
    /// Whether [`shutdown_write`](Self::shutdown_write) is possible (asyncio's
    /// `can_write_eof`).
    fn can_write_eof(&self) -> bool {
        true
    }
    /// Which way data flows.
    fn direction(&self) -> Direction {
        Direction::Both
    }
    /// The descriptor number, for `get_extra_info("socket")` / `("pipe")`.
    fn raw_fd(&self) -> Option<RawFd>;
    /// Extra information fixed at creation (`peername`, `sockname`…), read
    /// once because it may no longer be available after the peer is gone.
    fn extra_info(&self) -> Vec<(&'static str, ExtraInfo)> {
        Vec::new()
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "netbsd"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(all(unix, not(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "netbsd"))))]
pub(crate) const SEND_FLAGS: libc::c_int = 0;

/// `sendmsg(MSG_NOSIGNAL)` on Unix; mio's own vectored write elsewhere (on
/// Windows mio must see every `WouldBlock` to re-arm its IOCP emulation).
#[cfg(unix)]
fn send_vectored<S: std::os::fd::AsFd>(s: &S, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    socket2::SockRef::from(s).send_vectored_with_flags(bufs, SEND_FLAGS)
}

fn ip_extra(
    peer: io::Result<std::net::SocketAddr>,
    local: io::Result<std::net::SocketAddr>,
) -> Vec<(&'static str, ExtraInfo)> {
    let mut v = Vec::with_capacity(3);
    if let Ok(a) = peer {
        v.push(("peername", ExtraInfo::Addr(a)));
    }
    if let Ok(a) = local {
        v.push(("sockname", ExtraInfo::Addr(a)));
    }
    v
}

impl StreamIo for mio::net::TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Write::write(&mut &*self, buf)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        #[cfg(unix)]
        return send_vectored(self, bufs);
        #[cfg(not(unix))]
        return Write::write_vectored(&mut &*self, bufs);
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn raw_fd(&self) -> Option<RawFd> {
        #[cfg(unix)]
        return Some(std::os::fd::AsRawFd::as_raw_fd(self));
        #[cfg(not(unix))]
        return None;
    }

    fn extra_info(&self) -> Vec<(&'static str, ExtraInfo)> {
        let mut v = ip_extra(self.peer_addr(), self.local_addr());
        if let Some(fd) = self.raw_fd() {
            v.push(("socket", ExtraInfo::Fd(fd as i64)));
        }
        v
    }
}

/// A Unix socket address as asyncio shows it: the path, the abstract name
/// with its leading `'\0'`, or `""` for an unnamed socket.
#[cfg(unix)]
pub(crate) fn unix_addr_string(a: &std::os::unix::net::SocketAddr) -> String {
    if let Some(p) = a.as_pathname() {
        return p.to_string_lossy().into_owned();
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::linux::net::SocketAddrExt;
        if let Some(name) = a.as_abstract_name() {
            let mut s = String::from("\0");
            s.push_str(&String::from_utf8_lossy(name));
            return s;
        }
    }
    String::new()
}

#[cfg(unix)]
impl StreamIo for mio::net::UnixStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        socket2::SockRef::from(self).send_with_flags(buf, SEND_FLAGS)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        send_vectored(self, bufs)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(std::os::fd::AsRawFd::as_raw_fd(self))
    }

    fn extra_info(&self) -> Vec<(&'static str, ExtraInfo)> {
        let mut v = Vec::with_capacity(3);
        if let Ok(a) = self.peer_addr() {
            v.push(("peername", ExtraInfo::Path(unix_addr_string(&a))));
        }
        if let Ok(a) = self.local_addr() {
            v.push(("sockname", ExtraInfo::Path(unix_addr_string(&a))));
        }
        v.push(("socket", ExtraInfo::Fd(std::os::fd::AsRawFd::as_raw_fd(self) as i64)));
        v
    }
}
