//! `connect_read_pipe` / `connect_write_pipe` (the [`ProcessBackend`]),
//! and the subprocess calls WASI cannot offer.
//!
//! * wasip1: any descriptor `poll_oneoff` can watch — stdin, stdout,
//!   stderr, files. The transport owns the fd and closes it when the
//!   connection is lost, as asyncio's pipe transports close their pipe.
//! * wasip2: the `wasi:cli` streams: fd 0 is `stdin`, 1 `stdout`, 2
//!   `stderr`. wasip2 has no descriptor numbers of its own; other values
//!   are `InvalidInput`.

use std::rc::Rc;

use anyloop_core::backend::{IoFuture, ProcessBackend, RawFd, failed};
use anyloop_core::net::SubprocessOptions;
use anyloop_core::{Error, EventLoop, ExtraInfo, StreamProtocol, SubprocessProtocol, SubprocessTransport, Transport};

use crate::reactor::Reactor;
use crate::stream::{Kind, Parts, StreamTransport};

/// The pipes of the WASI host.
pub(crate) struct WasiPipes {
    pub(crate) reactor: Rc<Reactor>,
}

impl WasiPipes {
    fn connect(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        fd: RawFd,
        read: bool,
    ) -> IoFuture<'static, Rc<dyn Transport>> {
        let parts = if read { sys::read_end(fd) } else { sys::write_end(fd) };
        let parts = match parts {
            Ok(p) => p,
            Err(e) => return failed(e),
        };
        let waiter = lp.create_future::<()>();
        let w = waiter.clone();
        let started = StreamTransport::start(lp, &self.reactor, protocol, parts, move |_, r| {
            let _ = match r {
                Ok(_) => w.set_result(()),
                Err(e) => w.set_exception(e),
            };
        });
        Box::pin(async move {
            let t = started?;
            waiter.await?;
            Ok(t as Rc<dyn Transport>)
        })
    }
}

fn pipe_extra(fd: RawFd) -> Vec<(&'static str, ExtraInfo)> {
    vec![("pipe", ExtraInfo::Fd(i64::from(fd)))]
}

impl ProcessBackend for WasiPipes {
    fn connect_read_pipe(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        fd: RawFd,
    ) -> IoFuture<'static, Rc<dyn Transport>> {
        self.connect(lp, protocol, fd, true)
    }

    fn connect_write_pipe(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        fd: RawFd,
    ) -> IoFuture<'static, Rc<dyn Transport>> {
        self.connect(lp, protocol, fd, false)
    }

    fn subprocess(
        &self,
        _lp: &EventLoop,
        _protocol: Rc<core::cell::RefCell<dyn SubprocessProtocol>>,
        _program: String,
        _args: Vec<String>,
        shell: bool,
        _opts: SubprocessOptions,
    ) -> IoFuture<'static, Rc<dyn SubprocessTransport>> {
        let what = if shell { "subprocess_shell" } else { "subprocess_exec" };
        failed(Error::unsupported(what, "WASI has no child processes"))
    }
}

#[cfg(target_env = "p1")]
mod sys {
    use super::*;
    use crate::reactor::Source;
    use crate::stream::{Reader, Writer};

    /// Closes the fd when the transport lets go of it.
    struct OwnedFd(RawFd);
    impl Drop for OwnedFd {
        fn drop(&mut self) {
            crate::sys::close(self.0);
        }
    }

    struct FdReader(RawFd);
    impl Reader for FdReader {
        fn read(&self, buf: &mut [u8]) -> Result<usize, Error> {
            crate::sys::read(self.0, buf)
        }
        fn subscribe(&self) -> Source {
            Source::Read(self.0)
        }
    }

    struct FdWriter(RawFd);
    impl Writer for FdWriter {
        fn write(&self, data: &[u8], ready: bool) -> Result<usize, Error> {
            // wasmtime's stdio writes block: write only what readiness
            // promises to take.
            if ready { crate::sys::write(self.0, data) } else { Ok(0) }
        }
        fn subscribe(&self) -> Source {
            Source::Write(self.0)
        }
        fn flushes_later(&self) -> bool {
            false
        }
        fn shutdown(&self) -> Result<(), Error> {
            Ok(())
        }
    }

    pub(super) fn read_end(fd: RawFd) -> Result<Parts, Error> {
        crate::sys::check_fd(fd)?;
        Ok(Parts {
            kind: Kind::Pipe,
            name: format!("<ReadPipeTransport fd={fd}>"),
            reader: Some(Box::new(FdReader(fd))),
            writer: None,
            owner: Some(Box::new(OwnedFd(fd))),
            extra: pipe_extra(fd),
            on_lost: None,
        })
    }

    pub(super) fn write_end(fd: RawFd) -> Result<Parts, Error> {
        crate::sys::check_fd(fd)?;
        Ok(Parts {
            kind: Kind::Pipe,
            name: format!("<WritePipeTransport fd={fd}>"),
            reader: None,
            writer: Some(Box::new(FdWriter(fd))),
            owner: Some(Box::new(OwnedFd(fd))),
            extra: pipe_extra(fd),
            on_lost: None,
        })
    }
}

#[cfg(target_env = "p2")]
mod sys {
    use super::*;
    use crate::p2::streams::{InReader, OutWriter};
    use anyloop_core::ErrorKind;
    use wasip2::cli::{stderr, stdin, stdout};

    pub(super) fn read_end(fd: RawFd) -> Result<Parts, Error> {
        if fd != 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("connect_read_pipe: on wasip2 only stdin (fd 0) can be read as a pipe, not fd {fd}"),
            ));
        }
        Ok(Parts {
            kind: Kind::Pipe,
            name: "<ReadPipeTransport stdin>".into(),
            reader: Some(Box::new(InReader::new(stdin::get_stdin()))),
            writer: None,
            owner: None,
            extra: pipe_extra(fd),
            on_lost: None,
        })
    }

    pub(super) fn write_end(fd: RawFd) -> Result<Parts, Error> {
        let (stream, name) = match fd {
            1 => (stdout::get_stdout(), "<WritePipeTransport stdout>"),
            2 => (stderr::get_stderr(), "<WritePipeTransport stderr>"),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "connect_write_pipe: on wasip2 only stdout (fd 1) and stderr (fd 2) can be written as \
                         pipes, not fd {fd}"
                    ),
                ));
            }
        };
        Ok(Parts {
            kind: Kind::Pipe,
            name: name.into(),
            reader: None,
            writer: Some(Box::new(OutWriter::new(stream, None))),
            owner: None,
            extra: pipe_extra(fd),
            on_lost: None,
        })
    }
}
