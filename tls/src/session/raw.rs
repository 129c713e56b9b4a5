//! The raw (ciphertext) side of a [`Session`]: the protocol the raw
//! transport calls ([`RawSide`]), the `io::Write` rustls writes records
//! through ([`RawWriter`]), and the protocol of a session that could not
//! start ([`Refused`]).

use std::io::{self, IoSlice, Write};
use std::rc::Rc;

use anyloop_core::{BaseProtocol, Error, LoopFuture, Protocol, StreamProtocol, Transport};

use super::{MAX_IOV, Session};

/// `io::Write` into the raw transport: rustls' records go out in one
/// vectored write.
pub(super) struct RawWriter<'a>(pub(super) &'a dyn Transport);

impl Write for RawWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(io::Error::from)?;
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut slices: [&[u8]; MAX_IOV] = [&[]; MAX_IOV];
        let n = bufs.len().min(MAX_IOV);
        let mut total = 0;
        for (slot, b) in slices.iter_mut().zip(bufs) {
            *slot = b;
            total += b.len();
        }
        self.0.writelines(&slices[..n]).map_err(io::Error::from)?;
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The raw transport's protocol: forwards to the [`Session`].
pub(super) struct RawSide(pub(super) Rc<Session>);

impl BaseProtocol for RawSide {
    fn connection_lost(&mut self, exc: Option<Error>) {
        if let Some(lp) = self.0.lp.upgrade() {
            self.0.on_raw_lost(&lp, exc);
        }
    }

    fn pause_writing(&mut self) {
        self.0.on_raw_write_flow(true);
    }

    fn resume_writing(&mut self) {
        self.0.on_raw_write_flow(false);
    }
}

impl Protocol for RawSide {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.0.raw_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(lp) = self.0.lp.upgrade() {
            self.0.on_ciphertext(&lp, data);
        }
    }

    fn eof_received(&mut self) -> bool {
        if let Some(lp) = self.0.lp.upgrade() {
            self.0.on_raw_eof(&lp);
        }
        // The session closes the raw transport itself, after close_notify.
        true
    }
}

/// The raw protocol of a session that could not even start (a bad server
/// name…): fails the waiter and drops the connection.
pub(crate) struct Refused {
    error: Error,
    waiter: Option<LoopFuture<Rc<dyn Transport>>>,
}

impl Refused {
    pub(crate) fn protocol(error: Error, waiter: Option<LoopFuture<Rc<dyn Transport>>>) -> StreamProtocol {
        StreamProtocol::plain(Refused { error, waiter }).0
    }
}

impl BaseProtocol for Refused {}

impl Protocol for Refused {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        match self.waiter.take() {
            Some(w) => {
                let _ = w.set_exception(self.error.clone());
            }
            None => log::debug!(target: "anyloop", "TLS connection refused: {}", self.error),
        }
        transport.abort();
    }

    fn data_received(&mut self, _data: &[u8]) {}
}
