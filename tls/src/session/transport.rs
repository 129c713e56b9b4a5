//! The application's view of a [`Session`]: asyncio's transport methods
//! (see the [parent module](super) for flow control and closing).

use std::io::{IoSlice, Write};

use anyloop_core::{
    BaseTransport, Error, ErrorKind, ExtraInfo, ReadTransport, StreamProtocol, Transport, WriteTransport,
};

use super::*;

impl BaseTransport for Session {
    fn close(&self) {
        if self.has(CLOSING | LOST) {
            return;
        }
        self.set(CLOSING);
        if !self.has(OPEN) {
            self.finish_close();
            return;
        }
        if !self.has(EOF_SENT) {
            self.set(EOF_SENT);
            self.conn.borrow_mut().send_close_notify();
            self.flush_tls();
        }
        if self.has(PEER_CLOSED | RAW_EOF) {
            self.finish_close();
            return;
        }
        if let Some(lp) = self.lp.upgrade() {
            self.set_timer(&lp, self.shutdown_timeout, Session::shutdown_timed_out);
        }
        // Read on (discarding) to the peer's close_notify, even if the
        // application had paused reading.
        self.schedule_resume_input();
    }

    fn is_closing(&self) -> bool {
        self.has(CLOSING | LOST)
    }

    fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        if let Some((_, v)) = self.extra.borrow().iter().find(|(k, _)| *k == name) {
            return Some(v.clone());
        }
        self.raw().and_then(|raw| raw.get_extra_info(name))
    }
}

impl ReadTransport for Session {
    fn is_reading(&self) -> bool {
        !self.has(APP_PAUSED | CLOSING | LOST)
    }

    fn pause_reading(&self) {
        if self.has(CLOSING | LOST | APP_PAUSED) {
            return;
        }
        self.set(APP_PAUSED);
        if let Some(raw) = self.raw() {
            raw.pause_reading();
        }
    }

    fn resume_reading(&self) {
        if self.has(CLOSING | LOST) {
            return;
        }
        self.clear(APP_PAUSED);
        // Deferred, as asyncio does: the caller may be inside a callback.
        self.schedule_resume_input();
    }
}

impl WriteTransport for Session {
    fn write(&self, data: &[u8]) -> Result<(), Error> {
        self.check_writable()?;
        if data.is_empty() {
            return Ok(());
        }
        for chunk in data.chunks(FLUSH_EVERY) {
            self.conn.borrow_mut().writer().write_all(chunk).map_err(|e| Error::from(e).context("TLS write failed"))?;
            self.wrote(chunk.len());
        }
        Ok(())
    }

    fn writelines(&self, bufs: &[&[u8]]) -> Result<(), Error> {
        self.check_writable()?;
        {
            let mut c = self.conn.borrow_mut();
            let mut w = c.writer();
            let slices: Vec<IoSlice<'_>> = bufs.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
            let mut done = w.write_vectored(&slices).map_err(|e| Error::from(e).context("TLS write failed"))?;
            for b in bufs {
                if done >= b.len() {
                    done -= b.len();
                    continue;
                }
                w.write_all(&b[done..]).map_err(|e| Error::from(e).context("TLS write failed"))?;
                done = 0;
            }
        }
        self.wrote(bufs.iter().map(|b| b.len()).sum());
        Ok(())
    }

    fn can_write_eof(&self) -> bool {
        self.raw().is_some_and(|raw| raw.can_write_eof())
    }

    fn write_eof(&self) -> Result<(), Error> {
        if self.has(CLOSING | LOST | EOF_SENT) {
            return Ok(());
        }
        if !self.has(OPEN) {
            return Err(Error::new(ErrorKind::InvalidState, "the TLS handshake is not complete"));
        }
        self.set(EOF_SENT);
        self.conn.borrow_mut().send_close_notify();
        self.flush_tls();
        match self.raw() {
            Some(raw) if raw.can_write_eof() => raw.write_eof(),
            _ => Ok(()),
        }
    }

    fn abort(&self) {
        if self.has(LOST) {
            return;
        }
        self.set(CLOSING);
        self.cancel_timer();
        if let Some(raw) = self.raw() {
            raw.abort();
        }
    }

    fn get_write_buffer_size(&self) -> usize {
        self.raw().map_or(0, |raw| raw.get_write_buffer_size())
    }

    fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.raw().map_or((anyloop_core::DEFAULT_HIGH_WATER / 4, anyloop_core::DEFAULT_HIGH_WATER), |raw| {
            raw.get_write_buffer_limits()
        })
    }

    fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) -> Result<(), Error> {
        match self.raw() {
            Some(raw) => raw.set_write_buffer_limits(high, low),
            None => anyloop_core::WaterMarks::default().set_limits(high, low),
        }
    }
}

impl Session {
    /// `n` bytes of plaintext were encrypted: flush now, unless batching
    /// and under [`FLUSH_EVERY`].
    fn wrote(&self, n: usize) {
        self.unflushed.set(self.unflushed.get() + n);
        if !self.has(BATCH) || self.unflushed.get() >= FLUSH_EVERY {
            self.flush_tls();
        }
    }
}

impl Transport for Session {
    fn set_protocol(&self, protocol: StreamProtocol) {
        self.app.set(protocol);
    }

    fn get_protocol(&self) -> StreamProtocol {
        self.app.get()
    }
}
