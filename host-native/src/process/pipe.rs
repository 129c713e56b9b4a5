//! Pipe transports (placeholder until the generic stream transport lands).

use std::future::Future;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use anyloop_core::{Error, EventLoop, RawFd, StreamProtocol, Transport};

use crate::reactor::Reactor;

/// Which end of a pipe.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Read,
    Write,
}

pub(crate) fn transport(
    _lp: &EventLoop,
    _reactor: &Rc<Reactor>,
    _fd: OwnedFd,
    _end: End,
    _protocol: StreamProtocol,
) -> Result<Rc<dyn Transport>, Error> {
    Err(Error::unsupported("pipe transports", "not implemented yet"))
}

pub(crate) fn connect(
    _lp: &EventLoop,
    _reactor: &Rc<Reactor>,
    _fd: RawFd,
    _end: End,
    _protocol: StreamProtocol,
) -> Result<impl Future<Output = Result<Rc<dyn Transport>, Error>> + 'static, Error> {
    Err::<std::future::Ready<Result<Rc<dyn Transport>, Error>>, _>(Error::unsupported("pipes", "not implemented yet"))
}
