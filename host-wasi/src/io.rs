//! The [`IoBackend`] of the WASI host: fd watchers (`add_reader`,
//! `add_writer`), and the raw-socket `sock_*` calls.
//!
//! Watchers exist on wasip1, where `poll_oneoff` watches descriptors; on
//! wasip2 there are no descriptors to watch (streams and sockets are
//! resources, reached through the transports), so they are `Unsupported`.
//!
//! `sock_*` are `Unsupported` on both: wasip1 sockets (`sock_accept`,
//! `sock_recv`, `sock_send` on descriptors the runtime pre-opens) are no
//! longer implemented by wasmtime (48.x), and on wasip2 a socket is a
//! `wasi:sockets` resource, not a descriptor the `sock_*` signatures could
//! name. `create_connection`, `create_server` and
//! `create_datagram_endpoint` cover networking on wasip2.

use std::net::SocketAddr;
use std::rc::Rc;

use anyloop_core::backend::{IoBackend, IoFuture, RawFd};
use anyloop_core::net::{Addr, SockAddr};
use anyloop_core::{Error, EventLoop, Handle};

use crate::reactor::Reactor;

#[cfg(target_env = "p1")]
const SOCK_WHY: &str = "wasmtime 48 no longer implements wasip1 sockets (sock_accept, sock_recv, sock_send); \
                        build for wasm32-wasip2 and use create_connection / create_server";
#[cfg(target_env = "p2")]
const SOCK_WHY: &str = "wasip2 sockets are wasi:sockets resources, not descriptors; use create_connection, \
                        create_server or create_datagram_endpoint";

/// Fd watchers and `sock_*` of the WASI host.
pub(crate) struct WasiIo {
    pub(crate) reactor: Rc<Reactor>,
}

fn unsupported<T: 'static>(what: &str) -> IoFuture<'static, T> {
    anyloop_core::backend::failed(Error::unsupported(what, SOCK_WHY))
}

#[cfg(target_env = "p1")]
mod watchers {
    use super::*;

    pub(super) fn add(r: &Rc<Reactor>, fd: RawFd, handle: Handle, read: bool) -> Result<(), Error> {
        crate::sys::check_fd(fd)?;
        r.set_watcher(fd, read, handle);
        Ok(())
    }

    pub(super) fn remove(r: &Rc<Reactor>, fd: RawFd, read: bool) -> Result<bool, Error> {
        Ok(r.remove_watcher(fd, read))
    }
}

#[cfg(target_env = "p2")]
mod watchers {
    use super::*;

    const WHY: &str = "wasip2 has no descriptors to watch; streams and sockets are reached through transports";

    pub(super) fn add(_r: &Rc<Reactor>, _fd: RawFd, _handle: Handle, read: bool) -> Result<(), Error> {
        Err(Error::unsupported(if read { "add_reader" } else { "add_writer" }, WHY))
    }

    pub(super) fn remove(_r: &Rc<Reactor>, _fd: RawFd, read: bool) -> Result<bool, Error> {
        Err(Error::unsupported(if read { "remove_reader" } else { "remove_writer" }, WHY))
    }
}

impl IoBackend for WasiIo {
    fn add_reader(&self, _lp: &EventLoop, fd: RawFd, handle: Handle) -> Result<(), Error> {
        watchers::add(&self.reactor, fd, handle, true)
    }

    fn remove_reader(&self, _lp: &EventLoop, fd: RawFd) -> Result<bool, Error> {
        watchers::remove(&self.reactor, fd, true)
    }

    fn add_writer(&self, _lp: &EventLoop, fd: RawFd, handle: Handle) -> Result<(), Error> {
        watchers::add(&self.reactor, fd, handle, false)
    }

    fn remove_writer(&self, _lp: &EventLoop, fd: RawFd) -> Result<bool, Error> {
        watchers::remove(&self.reactor, fd, false)
    }

    fn sock_recv_into<'a>(&'a self, _lp: &EventLoop, _fd: RawFd, _buf: &'a mut [u8]) -> IoFuture<'a, usize> {
        unsupported("sock_recv_into")
    }

    fn sock_recvfrom_into<'a>(
        &'a self,
        _lp: &EventLoop,
        _fd: RawFd,
        _buf: &'a mut [u8],
    ) -> IoFuture<'a, (usize, SocketAddr)> {
        unsupported("sock_recvfrom_into")
    }

    fn sock_sendall<'a>(&'a self, _lp: &EventLoop, _fd: RawFd, _data: &'a [u8]) -> IoFuture<'a, ()> {
        unsupported("sock_sendall")
    }

    fn sock_sendto<'a>(
        &'a self,
        _lp: &EventLoop,
        _fd: RawFd,
        _data: &'a [u8],
        _addr: SocketAddr,
    ) -> IoFuture<'a, usize> {
        unsupported("sock_sendto")
    }

    fn sock_connect<'a>(&'a self, _lp: &EventLoop, _fd: RawFd, _addr: SockAddr) -> IoFuture<'a, ()> {
        unsupported("sock_connect")
    }

    fn sock_accept<'a>(&'a self, _lp: &EventLoop, _fd: RawFd) -> IoFuture<'a, (RawFd, Addr)> {
        unsupported("sock_accept")
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
        unsupported("sock_sendfile")
    }
}
