//! How a [`Session`] ends: the peer's close_notify (the application's
//! `eof_received`), the raw transport's EOF (after close_notify: the end;
//! without it: a truncation, reported as `UnexpectedEof`), fatal errors,
//! the handshake and shutdown timeouts, and the raw transport's loss.

use std::io;

use anyloop_core::{Error, ErrorKind, EventLoop};

use super::*;

impl Session {
    /// The peer's close_notify: the application's `eof_received`.
    pub(super) fn on_close_notify(&self, lp: &EventLoop) {
        if self.has(PEER_CLOSED) {
            return;
        }
        self.set(PEER_CLOSED);
        if self.has(CLOSING) {
            self.finish_close();
            return;
        }
        let keep_open = match self.app.eof_received() {
            Ok(keep) => keep,
            Err(e) => {
                report(lp, "Fatal error: protocol.eof_received() call failed.", e.clone());
                self.fail(lp, e, true);
                return;
            }
        };
        if !keep_open {
            self.close();
        }
    }

    pub(super) fn on_raw_eof(&self, lp: &EventLoop) {
        if self.has(FAILED | LOST) {
            return;
        }
        self.set(RAW_EOF);
        if !self.has(OPEN) {
            let e = Error::new(ErrorKind::ConnectionReset, "TLS handshake failed: the peer closed the connection");
            self.fail(lp, e, false);
            return;
        }
        if self.pending.borrow().is_empty() {
            self.check_raw_eof(lp);
        }
    }

    /// The raw EOF, once every byte before it was delivered: the end after
    /// close_notify, else a truncation.
    pub(super) fn check_raw_eof(&self, lp: &EventLoop) {
        if self.has(FAILED | LOST) {
            return;
        }
        if !self.has(EOF_FED) {
            self.set(EOF_FED);
            let _ = self.conn.borrow_mut().read_tls(&mut io::empty());
        }
        if !self.deliver(lp) {
            return; // paused (EOF acted on at resume), truncated or failed
        }
        if self.has(CLOSING) {
            self.finish_close();
        } else if !self.has(PEER_CLOSED) {
            self.truncated(lp);
        }
    }

    pub(super) fn truncated(&self, lp: &EventLoop) {
        if self.has(CLOSING) {
            // We were closing anyway: the peer did not answer close_notify.
            self.finish_close();
            return;
        }
        let e = Error::new(
            ErrorKind::UnexpectedEof,
            "TLS connection truncated: the peer closed the connection without sending close_notify",
        );
        self.fail(lp, e, true);
    }

    pub(super) fn on_raw_lost(&self, lp: &EventLoop, exc: Option<Error>) {
        if self.has(LOST) {
            return;
        }
        self.set(LOST | CLOSING);
        self.cancel_timer();
        drop(self.raw.borrow_mut().take());
        self.pending.borrow_mut().clear();
        let exc = self.error.borrow_mut().take().or(exc);
        if let Some(w) = self.waiter.borrow_mut().take() {
            let e = exc.clone().unwrap_or_else(|| {
                Error::new(ErrorKind::ConnectionAborted, "TLS handshake failed: the connection was lost")
            });
            let _ = w.set_exception(e);
        }
        if self.has(CONNECTED)
            && let Err(e) = self.app.connection_lost(exc)
        {
            report(lp, "Exception in protocol.connection_lost()", e);
        }
        self.app.release();
    }

    /// A fatal error: the handshake's waiter gets it, or `connection_lost`
    /// will; then the raw transport is closed (`abort`: without flushing).
    pub(super) fn fail(&self, lp: &EventLoop, e: Error, abort: bool) {
        if self.has(FAILED | LOST) {
            return;
        }
        self.set(FAILED | CLOSING);
        self.cancel_timer();
        if lp.get_debug() {
            log::debug!(target: "anyloop", "TLS connection failed: {e}");
        }
        if !self.has(OPEN)
            && let Some(w) = self.waiter.borrow_mut().take()
        {
            let _ = w.set_exception(e.clone());
        }
        *self.error.borrow_mut() = Some(e);
        if let Some(raw) = self.raw() {
            if abort {
                raw.abort();
            } else {
                raw.close();
            }
        }
    }

    pub(super) fn handshake_timed_out(&self, lp: &EventLoop) {
        if self.has(OPEN | FAILED | LOST) {
            return;
        }
        let e = Error::new(
            ErrorKind::TimedOut,
            format!("TLS handshake is taking longer than {:?}: aborting the connection", self.handshake_timeout),
        );
        self.fail(lp, e, true);
    }

    pub(super) fn shutdown_timed_out(&self, _lp: &EventLoop) {
        if self.has(LOST) {
            return;
        }
        *self.error.borrow_mut() = Some(Error::new(
            ErrorKind::TimedOut,
            format!("TLS shutdown took longer than {:?}: aborting the connection", self.shutdown_timeout),
        ));
        if let Some(raw) = self.raw() {
            raw.abort();
        }
    }

    /// Closes the raw transport once our close_notify went out (it flushes
    /// first).
    pub(super) fn finish_close(&self) {
        self.set(CLOSING);
        self.cancel_timer();
        if let Some(raw) = self.raw() {
            raw.close();
        }
    }
}
