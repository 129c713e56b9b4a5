//! The write side of [`StreamTransport`]: `write`, `writelines`,
//! flushing on writable events, water marks, `write_eof`, and the hooks
//! `sendfile` uses to own the socket for a while.

use std::io::{self, IoSlice};
use std::task::{Context, Poll};

use anyloop_core::{Error, ErrorKind, EventLoop, WriteTransport};

use super::*;

impl<S: StreamIo> StreamTransport<S> {
    pub(super) fn write_io(&self, data: &[u8]) -> io::Result<usize> {
        let io = self.io.borrow();
        let Some(io) = io.as_ref() else { return Err(io::ErrorKind::NotConnected.into()) };
        loop {
            match io.write(data) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    pub(super) fn write_vectored_io(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let io = self.io.borrow();
        let Some(io) = io.as_ref() else { return Err(io::ErrorKind::NotConnected.into()) };
        loop {
            match io.write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    pub(super) fn on_writable(&self, lp: &EventLoop) {
        // sendfile(2) owns the socket once the buffer is flushed.
        if self.has(SENDFILE) && self.wbuf.borrow().is_empty() {
            if let Some(w) = self.waiters.borrow_mut().writable.take() {
                w.wake();
            }
            return;
        }
        if self.has(LOST) {
            return;
        }
        loop {
            let r = {
                let wbuf = self.wbuf.borrow();
                if wbuf.is_empty() {
                    break;
                }
                let mut iov = [IoSlice::new(&[]); MAX_IOV];
                let mut count = 0;
                let mut total = 0;
                for (slot, chunk) in iov.iter_mut().zip(wbuf.chunks(MAX_IOV)) {
                    *slot = IoSlice::new(chunk);
                    total += chunk.len();
                    count += 1;
                }
                let r = if count == 1 { self.write_io(wbuf.front()) } else { self.write_vectored_io(&iov[..count]) };
                r.map(|n| (n, total))
            };
            match r {
                Ok((n, total)) => {
                    self.wbuf.borrow_mut().consume(n);
                    if n < total {
                        break; // the kernel's buffer is full; a writable edge follows
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return self.fatal_error(lp, Error::from(e), "Fatal write error on socket transport"),
            }
        }
        self.after_flush(lp);
    }

    /// After sending from the buffer: resume the protocol at the low mark;
    /// once empty, finish a pending close or write_eof.
    pub(super) fn after_flush(&self, lp: &EventLoop) {
        let len = self.wbuf.borrow().len();
        self.maybe_resume(lp, len);
        // resume_writing() may have written again (and closed): look anew,
        // or the close below would drop what it wrote.
        if !self.wbuf.borrow().is_empty() {
            return;
        }
        if self.waiters.borrow().writable.is_none() {
            self.set_write_interest(false);
        }
        for w in std::mem::take(&mut self.waiters.borrow_mut().drained) {
            w.wake();
        }
        if self.has(CLOSING) {
            if !self.has(LOST) {
                self.set(LOST);
                self.schedule_connection_lost(lp, None);
            }
        } else if self.has(EOF_REQUESTED) && !self.has(EOF_SENT) {
            self.set(EOF_SENT);
            if let Some(Err(e)) = self.with_io(|io| io.shutdown_write()) {
                self.fatal_error(lp, Error::from(e), "Fatal error on shutdown(SHUT_WR)");
            }
        }
    }

    /// An immediate send from `write` / `writelines` failed: true for
    /// `WouldBlock` (buffer the data), else the error is fatal to the
    /// transport and the data is dropped with it (asyncio's `write`).
    fn send_would_block(&self, e: io::Error) -> bool {
        if e.kind() == io::ErrorKind::WouldBlock {
            return true;
        }
        if let Some(lp) = self.lp.upgrade() {
            self.fatal_error(&lp, Error::from(e), "Fatal write error on socket transport");
        }
        false
    }

    /// Data was added to the send buffer, now `len` bytes: watch for
    /// writability and tell the protocol if it went over the high-water mark.
    fn buffered(&self, len: usize) {
        self.set_write_interest(true);
        if let Some(lp) = self.lp.upgrade() {
            self.maybe_pause(&lp, len);
        }
    }

    pub(super) fn maybe_pause(&self, lp: &EventLoop, len: usize) {
        if self.marks.borrow_mut().should_pause(len)
            && let Err(e) = self.slot.pause_writing()
        {
            report(lp, "protocol.pause_writing() failed", e);
        }
    }

    pub(super) fn maybe_resume(&self, lp: &EventLoop, len: usize) {
        if self.marks.borrow_mut().should_resume(len)
            && let Err(e) = self.slot.resume_writing()
        {
            report(lp, "protocol.resume_writing() failed", e);
        }
    }

    pub(super) fn check_writable(&self) -> Result<(), Error> {
        if self.refused() {
            return Err(handed_over_error());
        }
        if self.has(EOF_REQUESTED) {
            return Err(Error::new(ErrorKind::InvalidState, "Cannot call write() after write_eof()"));
        }
        if self.has(SENDFILE) {
            return Err(Error::new(ErrorKind::InvalidState, "unable to write; sendfile is in progress"));
        }
        if self.direction == Direction::ReadOnly {
            return Err(Error::new(ErrorKind::Unsupported, "this transport is read-only"));
        }
        if self.has(CLOSING | LOST) {
            return Err(closing_error());
        }
        Ok(())
    }

    // ----- sendfile support (crate::net::sendfile) -----
    /// Waits until the write buffer is empty. `Err` if the connection is lost.
    #[cfg_attr(not(unix), allow(dead_code))] // sendfile is Unix-only
    pub(crate) fn poll_drained(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.has(LOST) {
            return Poll::Ready(Err(closing_error()));
        }
        if self.wbuf.borrow().is_empty() {
            return Poll::Ready(Ok(()));
        }
        self.waiters.borrow_mut().drained.push(cx.waker().clone());
        Poll::Pending
    }

    /// Registers for the next writable event (while sendfile owns the socket).
    #[cfg_attr(not(unix), allow(dead_code))] // sendfile is Unix-only
    pub(crate) fn poll_writable_once(&self, cx: &mut Context<'_>, armed: &mut bool) -> Poll<Result<(), Error>> {
        if self.has(LOST) {
            return Poll::Ready(Err(closing_error()));
        }
        if *armed && self.waiters.borrow().writable.is_none() {
            return Poll::Ready(Ok(()));
        }
        *armed = true;
        self.waiters.borrow_mut().writable = Some(cx.waker().clone());
        self.set_write_interest(true);
        Poll::Pending
    }

    /// Marks the start or end of a sendfile: `write()` is refused meanwhile
    /// and reading is paused (asyncio's `_sendfile_native` does the same).
    #[cfg_attr(not(unix), allow(dead_code))] // sendfile is Unix-only
    pub(crate) fn set_sendfile(&self, active: bool) -> Result<(), Error> {
        if active {
            self.check_writable()?;
            self.set(SENDFILE);
        } else {
            self.clear(SENDFILE);
            self.waiters.borrow_mut().writable = None;
            if self.wbuf.borrow().is_empty() {
                self.set_write_interest(false);
            }
            if let Some(lp) = self.lp.upgrade()
                && self.has(CLOSING)
            {
                self.after_flush(&lp);
            }
        }
        Ok(())
    }
}

impl<S: StreamIo> WriteTransport for StreamTransport<S> {
    fn write(&self, data: &[u8]) -> Result<(), Error> {
        self.check_writable()?;
        if data.is_empty() {
            return Ok(());
        }
        let mut rest = data;
        if self.wbuf.borrow().is_empty() {
            match self.write_io(data) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => rest = &data[n..],
                Err(e) => {
                    if !self.send_would_block(e) {
                        return Ok(());
                    }
                }
            }
        }
        let len = {
            let mut wbuf = self.wbuf.borrow_mut();
            wbuf.push(rest);
            wbuf.len()
        };
        self.buffered(len);
        Ok(())
    }

    fn writelines(&self, bufs: &[&[u8]]) -> Result<(), Error> {
        self.check_writable()?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(());
        }
        let mut skip = 0;
        if self.wbuf.borrow().is_empty() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (slot, b) in iov.iter_mut().zip(bufs.iter().filter(|b| !b.is_empty())) {
                *slot = IoSlice::new(b);
                count += 1;
            }
            match self.write_vectored_io(&iov[..count]) {
                Ok(n) if n == total => return Ok(()),
                Ok(n) => skip = n,
                Err(e) => {
                    if !self.send_would_block(e) {
                        return Ok(());
                    }
                }
            }
        }
        let len = {
            let mut wbuf = self.wbuf.borrow_mut();
            for b in bufs {
                if skip >= b.len() {
                    skip -= b.len();
                    continue;
                }
                wbuf.push(&b[skip..]);
                skip = 0;
            }
            wbuf.len()
        };
        self.buffered(len);
        Ok(())
    }

    fn can_write_eof(&self) -> bool {
        self.can_eof
    }

    fn write_eof(&self) -> Result<(), Error> {
        if self.refused() {
            return Err(handed_over_error());
        }
        if self.has(CLOSING | LOST | EOF_REQUESTED) {
            return Ok(());
        }
        if self.direction == Direction::WriteOnly {
            // A pipe cannot be half-closed: its end of file is the write end
            // closing once the buffer is flushed (asyncio's write pipes).
            self.close();
            return Ok(());
        }
        if !self.can_eof {
            return Err(Error::new(ErrorKind::Unsupported, "this transport cannot write EOF"));
        }
        self.set(EOF_REQUESTED);
        if self.wbuf.borrow().is_empty() && !self.has(SENDFILE) {
            self.set(EOF_SENT);
            if let Some(Err(e)) = self.with_io(|io| io.shutdown_write()) {
                return Err(Error::from(e).context("shutdown(SHUT_WR) failed"));
            }
        }
        Ok(())
    }

    fn abort(&self) {
        if let Some(lp) = self.lp.upgrade() {
            self.force_close(&lp, None);
        }
    }

    fn get_write_buffer_size(&self) -> usize {
        self.wbuf.borrow().len()
    }

    fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.marks.borrow().limits()
    }

    fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) -> Result<(), Error> {
        if self.refused() {
            return Err(handed_over_error());
        }
        self.marks.borrow_mut().set_limits(high, low)?;
        if let Some(lp) = self.lp.upgrade() {
            let len = self.wbuf.borrow().len();
            self.maybe_pause(&lp, len);
        }
        Ok(())
    }
}
