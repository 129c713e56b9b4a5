//! `wasi:io/streams` as the transport's [`Reader`] and [`Writer`].

use std::rc::Rc;

use anyloop_core::{Error, ErrorKind};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::tcp::{ShutdownType, TcpSocket};

use crate::reactor::Source;
use crate::stream::{Reader, Writer};

/// Reads an `input-stream` (stdin, a TCP connection).
pub(crate) struct InReader {
    stream: InputStream,
}

impl InReader {
    pub(crate) fn new(stream: InputStream) -> InReader {
        InReader { stream }
    }
}

impl Reader for InReader {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Error> {
        match self.stream.read(buf.len() as u64) {
            Ok(data) if data.is_empty() => Err(Error::from_kind(ErrorKind::WouldBlock)),
            Ok(data) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
            Err(StreamError::Closed) => Ok(0),
            Err(StreamError::LastOperationFailed(e)) => Err(super::io_error(&e, "read failed")),
        }
    }

    fn subscribe(&self) -> Source {
        Source::Pollable(self.stream.subscribe())
    }
}

/// Writes an `output-stream` (stdout, stderr, a TCP connection). Field
/// order matters: the stream is dropped before the socket it belongs to.
pub(crate) struct OutWriter {
    stream: OutputStream,
    socket: Option<Rc<TcpSocket>>,
}

impl OutWriter {
    pub(crate) fn new(stream: OutputStream, socket: Option<Rc<TcpSocket>>) -> OutWriter {
        OutWriter { stream, socket }
    }
}

impl Writer for OutWriter {
    fn write(&self, data: &[u8], _ready: bool) -> Result<usize, Error> {
        let permit = match self.stream.check_write() {
            Ok(p) => usize::try_from(p).unwrap_or(usize::MAX),
            Err(StreamError::Closed) => return Err(Error::new(ErrorKind::BrokenPipe, "write failed: stream closed")),
            Err(StreamError::LastOperationFailed(e)) => return Err(super::io_error(&e, "write failed")),
        };
        let n = permit.min(data.len());
        if n == 0 {
            return Ok(0);
        }
        let r = self.stream.write(&data[..n]).and_then(|()| self.stream.flush());
        match r {
            Ok(()) => Ok(n),
            Err(StreamError::Closed) => Err(Error::new(ErrorKind::BrokenPipe, "write failed: stream closed")),
            Err(StreamError::LastOperationFailed(e)) => Err(super::io_error(&e, "write failed")),
        }
    }

    fn subscribe(&self) -> Source {
        Source::Pollable(self.stream.subscribe())
    }

    fn flushes_later(&self) -> bool {
        true
    }

    fn shutdown(&self) -> Result<(), Error> {
        match &self.socket {
            Some(s) => s.shutdown(ShutdownType::Send).map_err(|c| super::code_error(c, "write_eof failed")),
            None => Ok(()),
        }
    }
}
