//! `sock_*`: asyncio's "working with socket objects directly", on raw
//! descriptors the caller owns and keeps open for the operation.
//!
//! Each operation tries the system call at once and, on `EAGAIN`, waits for
//! the descriptor through the loop's fd watchers (as asyncio does with
//! `add_reader` / `add_writer`), then retries. Dropping the future stops
//! waiting and removes the watcher; nothing is left registered.

use std::io::Read;
use std::mem::MaybeUninit;
use std::net::SocketAddr;

use anyloop_core::net::{Addr, Family, SockAddr};
use anyloop_core::{Error, ErrorKind, EventLoop, RawFd};
use socket2::SockRef;

use crate::net::resolve::{SOCK_DGRAM, SOCK_STREAM, resolve};
use crate::net::socket::{borrow, in_progress, to_addr};
use crate::reactor::Reactor;
use crate::stream::SEND_FLAGS;
use crate::util::wait_fd;

fn is_would_block(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
}

/// Views initialised bytes as the `MaybeUninit` buffer socket2 fills.
fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: MaybeUninit<u8> has u8's layout, every u8 is a valid
    // MaybeUninit<u8>, and the callee only writes initialised bytes.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// Runs `op` until it does not return `WouldBlock` (waiting in between) or
/// `Interrupted`.
async fn retry<T>(
    reactor: &Reactor,
    fd: RawFd,
    write: bool,
    mut op: impl FnMut(SockRef<'_>) -> std::io::Result<T>,
) -> Result<T, Error> {
    loop {
        let b = borrow(fd)?;
        match op(SockRef::from(&b)) {
            Ok(v) => return Ok(v),
            Err(e) if is_would_block(&e) => wait_fd(reactor, fd, write).await?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// `sock_recv_into`.
pub(crate) async fn recv_into(reactor: &Reactor, fd: RawFd, buf: &mut [u8]) -> Result<usize, Error> {
    retry(reactor, fd, false, |s| Read::read(&mut &*s, buf)).await
}

/// `sock_recvfrom_into`.
pub(crate) async fn recvfrom_into(reactor: &Reactor, fd: RawFd, buf: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
    let (n, addr) = retry(reactor, fd, false, |s| s.recv_from(as_uninit(buf))).await?;
    let addr = addr.as_socket().ok_or_else(|| {
        Error::new(ErrorKind::Unsupported, "sock_recvfrom on a socket whose peers have no IP address")
    })?;
    Ok((n, addr))
}

/// `sock_sendall`.
pub(crate) async fn sendall(reactor: &Reactor, fd: RawFd, data: &[u8]) -> Result<(), Error> {
    let mut sent = 0;
    while sent < data.len() {
        sent += retry(reactor, fd, true, |s| s.send_with_flags(&data[sent..], SEND_FLAGS)).await?;
    }
    Ok(())
}

/// `sock_sendto`.
pub(crate) async fn sendto(reactor: &Reactor, fd: RawFd, data: &[u8], addr: SocketAddr) -> Result<usize, Error> {
    let to = socket2::SockAddr::from(addr);
    retry(reactor, fd, true, |s| s.send_to_with_flags(data, &to, SEND_FLAGS)).await
}

/// `sock_accept`: the new socket is non-blocking and owned by the caller.
pub(crate) async fn accept(reactor: &Reactor, fd: RawFd) -> Result<(RawFd, Addr), Error> {
    use std::os::fd::IntoRawFd;
    let (s, addr) = retry(reactor, fd, false, |s| s.accept()).await?;
    s.set_nonblocking(true)?;
    Ok((s.into_raw_fd(), to_addr(&addr)))
}

/// `sock_connect`: resolves names with the socket's family and type first.
pub(crate) async fn connect(lp: &EventLoop, reactor: &Reactor, fd: RawFd, addr: SockAddr) -> Result<(), Error> {
    let target = match addr {
        SockAddr::Ip(a) => socket2::SockAddr::from(a),
        SockAddr::Unix(p) => socket2::SockAddr::unix(p)?,
        SockAddr::Host(host, port) => {
            let (family, socktype) = {
                let b = borrow(fd)?;
                let s = SockRef::from(&b);
                let family = match s.local_addr()?.as_socket() {
                    Some(SocketAddr::V4(_)) => Family::Inet,
                    Some(SocketAddr::V6(_)) => Family::Inet6,
                    None => return Err(Error::new(ErrorKind::InvalidInput, "a host name needs an IP socket")),
                };
                let socktype = if s.r#type()? == socket2::Type::DGRAM { SOCK_DGRAM } else { SOCK_STREAM };
                (family, socktype)
            };
            let addrs = resolve(lp, Some(&host), port, family, socktype, 0).await?;
            socket2::SockAddr::from(addrs[0])
        }
    };
    let shown = to_addr(&target);
    let r = {
        let b = borrow(fd)?;
        SockRef::from(&b).connect(&target)
    };
    match r {
        Ok(()) => return Ok(()),
        Err(e) if in_progress(&e) => {}
        Err(e) => return Err(Error::from(e).context(format!("Connect call failed {shown}"))),
    }
    wait_fd(reactor, fd, true).await?;
    let b = borrow(fd)?;
    match SockRef::from(&b).take_error()? {
        Some(e) => Err(Error::from(e).context(format!("Connect call failed {shown}"))),
        None => Ok(()),
    }
}
