//! The native [`IoBackend`]: fd watchers and raw-socket operations.

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

fn todo<T: 'static>(what: &str) -> IoFuture<'static, T> {
    let e = Error::unsupported(what, "not implemented yet on the native host");
    Box::pin(async move { Err(e) })
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

    fn sock_recv_into<'a>(&'a self, _lp: &EventLoop, _fd: RawFd, _buf: &'a mut [u8]) -> IoFuture<'a, usize> {
        todo("sock_recv_into")
    }

    fn sock_recvfrom_into<'a>(
        &'a self,
        _lp: &EventLoop,
        _fd: RawFd,
        _buf: &'a mut [u8],
    ) -> IoFuture<'a, (usize, SocketAddr)> {
        todo("sock_recvfrom_into")
    }

    fn sock_sendall<'a>(&'a self, _lp: &EventLoop, _fd: RawFd, _data: &'a [u8]) -> IoFuture<'a, ()> {
        todo("sock_sendall")
    }

    fn sock_sendto<'a>(
        &'a self,
        _lp: &EventLoop,
        _fd: RawFd,
        _data: &'a [u8],
        _addr: SocketAddr,
    ) -> IoFuture<'a, usize> {
        todo("sock_sendto")
    }

    fn sock_connect<'a>(&'a self, _lp: &EventLoop, _fd: RawFd, _addr: SockAddr) -> IoFuture<'a, ()> {
        todo("sock_connect")
    }

    fn sock_accept<'a>(&'a self, _lp: &EventLoop, _fd: RawFd) -> IoFuture<'a, (RawFd, Addr)> {
        todo("sock_accept")
    }

    fn sock_sendfile<'a>(
        &'a self,
        _lp: &EventLoop,
        _fd: RawFd,
        _file: RawFd,
        _offset: u64,
        _count: Option<u64>,
        _fallback: bool,
    ) -> IoFuture<'a, u64> {
        todo("sock_sendfile")
    }
}
