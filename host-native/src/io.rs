//! The native [`IoBackend`]: fd watchers and raw-socket operations.
//!
//! Raw descriptors are Unix file descriptors; on Windows every operation
//! here is `Unsupported` (its sockets are not `i32` descriptors).

use std::net::SocketAddr;
use std::rc::Rc;

use anyloop_core::backend::{IoBackend, IoFuture, RawFd};
use anyloop_core::net::{Addr, SockAddr};
use anyloop_core::{Error, EventLoop, Handle};

use crate::reactor::Reactor;

/// Fd watchers and `sock_*` on the native reactor.
pub(crate) struct NativeIo {
    pub(crate) reactor: Rc<Reactor>,
}

#[cfg(not(unix))]
fn unsupported<T: 'static>(what: &str) -> IoFuture<'static, T> {
    anyloop_core::backend::failed(Error::unsupported(what, "raw socket descriptors are Unix-only"))
}

impl IoBackend for NativeIo {
    fn add_reader(&self, _lp: &EventLoop, fd: RawFd, handle: Handle) -> Result<(), Error> {
        self.reactor.add_reader(fd, handle)
    }

    fn remove_reader(&self, _lp: &EventLoop, fd: RawFd) -> Result<bool, Error> {
        self.reactor.remove_reader(fd)
    }

    fn add_writer(&self, _lp: &EventLoop, fd: RawFd, handle: Handle) -> Result<(), Error> {
        self.reactor.add_writer(fd, handle)
    }

    fn remove_writer(&self, _lp: &EventLoop, fd: RawFd) -> Result<bool, Error> {
        self.reactor.remove_writer(fd)
    }

    fn sock_recv_into<'a>(&'a self, _lp: &EventLoop, fd: RawFd, buf: &'a mut [u8]) -> IoFuture<'a, usize> {
        #[cfg(unix)]
        return Box::pin(crate::sock::recv_into(&self.reactor, fd, buf));
        #[cfg(not(unix))]
        return {
            let _ = (fd, buf);
            unsupported("sock_recv_into")
        };
    }

    fn sock_recvfrom_into<'a>(
        &'a self,
        _lp: &EventLoop,
        fd: RawFd,
        buf: &'a mut [u8],
    ) -> IoFuture<'a, (usize, SocketAddr)> {
        #[cfg(unix)]
        return Box::pin(crate::sock::recvfrom_into(&self.reactor, fd, buf));
        #[cfg(not(unix))]
        return {
            let _ = (fd, buf);
            unsupported("sock_recvfrom_into")
        };
    }

    fn sock_sendall<'a>(&'a self, _lp: &EventLoop, fd: RawFd, data: &'a [u8]) -> IoFuture<'a, ()> {
        #[cfg(unix)]
        return Box::pin(crate::sock::sendall(&self.reactor, fd, data));
        #[cfg(not(unix))]
        return {
            let _ = (fd, data);
            unsupported("sock_sendall")
        };
    }

    fn sock_sendto<'a>(&'a self, _lp: &EventLoop, fd: RawFd, data: &'a [u8], addr: SocketAddr) -> IoFuture<'a, usize> {
        #[cfg(unix)]
        return Box::pin(crate::sock::sendto(&self.reactor, fd, data, addr));
        #[cfg(not(unix))]
        return {
            let _ = (fd, data, addr);
            unsupported("sock_sendto")
        };
    }

    fn sock_connect<'a>(&'a self, lp: &EventLoop, fd: RawFd, addr: SockAddr) -> IoFuture<'a, ()> {
        #[cfg(unix)]
        {
            let lp = lp.clone();
            Box::pin(async move { crate::sock::connect(&lp, &self.reactor, fd, addr).await })
        }
        #[cfg(not(unix))]
        {
            let _ = (lp, fd, addr);
            unsupported("sock_connect")
        }
    }

    fn sock_accept<'a>(&'a self, _lp: &EventLoop, fd: RawFd) -> IoFuture<'a, (RawFd, Addr)> {
        #[cfg(unix)]
        return Box::pin(crate::sock::accept(&self.reactor, fd));
        #[cfg(not(unix))]
        return {
            let _ = fd;
            unsupported("sock_accept")
        };
    }

    fn sock_sendfile<'a>(
        &'a self,
        lp: &EventLoop,
        fd: RawFd,
        file: RawFd,
        offset: u64,
        count: Option<u64>,
        fallback: bool,
    ) -> IoFuture<'a, u64> {
        #[cfg(unix)]
        {
            let lp = lp.clone();
            Box::pin(async move {
                crate::net::sendfile::sock_sendfile(&lp, &self.reactor, fd, file, offset, count, fallback).await
            })
        }
        #[cfg(not(unix))]
        {
            let _ = (lp, fd, file, offset, count, fallback);
            unsupported("sock_sendfile")
        }
    }
}
