//! [`StreamWriter`]: asyncio's `StreamWriter` over any stream transport.
//!
//! `write` hands bytes to the transport at once (it never blocks); `drain`
//! waits while the transport's buffer is above its high-water mark, so a
//! `write` + `drain` loop keeps memory bounded by the water marks.

use alloc::rc::Rc;
use core::cell::RefCell;
use core::future::poll_fn;
use core::task::{Context, Poll};

use super::glue::Glue;
use crate::{Error, ErrorKind, ExtraInfo, Transport};

/// The writing half of a stream connection.
///
/// ```no_run
/// # async fn demo(writer: anyloop_core::StreamWriter) -> Result<(), anyloop_core::Error> {
/// for chunk in [&b"one"[..], b"two", b"three"] {
///     writer.write(chunk)?;
///     writer.drain().await?; // waits while the peer is slow
/// }
/// writer.close();
/// writer.wait_closed().await?;
/// # Ok(()) }
/// ```
pub struct StreamWriter {
    pub(crate) glue: Rc<RefCell<Glue>>,
    pub(crate) transport: Rc<dyn Transport>,
}

fn lost() -> Error {
    Error::new(ErrorKind::ConnectionReset, "Connection lost")
}

impl StreamWriter {
    /// The transport.
    pub fn transport(&self) -> &Rc<dyn Transport> {
        &self.transport
    }

    /// Queues `data` for sending (never waits). Follow with
    /// [`drain`](Self::drain) to respect flow control.
    pub fn write(&self, data: &[u8]) -> Result<(), Error> {
        self.transport.write(data)
    }

    /// Queues several buffers, as one vectored write where possible.
    pub fn writelines(&self, bufs: &[&[u8]]) -> Result<(), Error> {
        self.transport.writelines(bufs)
    }

    /// Closes the write side after buffered data is sent (half-close).
    pub fn write_eof(&self) -> Result<(), Error> {
        self.transport.write_eof()
    }

    /// Whether the transport supports [`write_eof`](Self::write_eof).
    pub fn can_write_eof(&self) -> bool {
        self.transport.can_write_eof()
    }

    /// Closes the connection (buffered data is still sent).
    pub fn close(&self) {
        self.transport.close()
    }

    /// Whether it is closing or closed.
    pub fn is_closing(&self) -> bool {
        self.transport.is_closing()
    }

    /// Transport information (`"peername"`, `"sockname"`…).
    pub fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.transport.get_extra_info(name)
    }

    /// Upgrades the connection to TLS in place (asyncio's
    /// `StreamWriter.start_tls`): waits for [`drain`](Self::drain), then
    /// runs [`EventLoop::start_tls`](crate::EventLoop::start_tls); from
    /// then on this writer and `reader` speak plaintext over TLS. The bytes
    /// `reader` received but nobody read yet — a ClientHello pipelined right
    /// after a STARTTLS line — start the TLS stream, so nothing is lost
    /// (asyncio has no `reader` argument and would lose them).
    ///
    /// ```no_run
    /// # async fn demo(mut reader: anyloop_core::StreamReader, mut writer: anyloop_core::StreamWriter,
    /// #     ssl: std::rc::Rc<dyn anyloop_core::tls::TlsContext>) -> Result<(), anyloop_core::Error> {
    /// use anyloop_core::tls::StartTlsOptions;
    /// assert_eq!(reader.readline().await?, b"STARTTLS\r\n");
    /// writer.write(b"OK\r\n")?;
    /// let opts = StartTlsOptions { server_side: true, ..Default::default() };
    /// writer.start_tls(&mut reader, ssl, opts).await?;
    /// let line = reader.readline().await?; // decrypted
    /// # let _ = line; Ok(()) }
    /// ```
    #[cfg(feature = "std")]
    pub async fn start_tls(
        &mut self,
        reader: &mut super::StreamReader,
        ssl: Rc<dyn crate::tls::TlsContext>,
        mut opts: crate::tls::StartTlsOptions,
    ) -> Result<(), Error> {
        if !Rc::ptr_eq(&reader.glue, &self.glue) {
            return Err(Error::new(ErrorKind::InvalidInput, "start_tls(): the reader belongs to another connection"));
        }
        self.drain().await?;
        let lp = crate::get_running_loop()?;
        let mut initial = reader.take_unread();
        initial.append(&mut opts.initial_data);
        opts.initial_data = initial;
        let protocol = crate::StreamProtocol::Buffered(self.glue.clone());
        let tls = lp.start_tls(self.transport.clone(), protocol, ssl, opts).await?;
        // If the reader paused reading meanwhile, it resumes the TLS
        // transport later, which resumes the raw one.
        self.glue.borrow_mut().transport = Some(tls.clone());
        self.transport = tls;
        Ok(())
    }

    pub(crate) fn poll_drain(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut g = self.glue.borrow_mut();
        if let Some(e) = &g.exception {
            return Poll::Ready(Err(e.clone()));
        }
        if g.lost {
            return Poll::Ready(Err(lost()));
        }
        if !g.write_paused {
            return Poll::Ready(Ok(()));
        }
        if !g.drain_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            g.drain_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits until the transport's buffer is back under its water mark
    /// (asyncio's `drain`); `ConnectionReset` if the connection was lost.
    pub async fn drain(&self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_drain(cx)).await
    }

    pub(crate) fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut g = self.glue.borrow_mut();
        if g.lost {
            return Poll::Ready(match &g.exception {
                Some(e) if e.kind() != ErrorKind::ConnectionReset => Err(e.clone()),
                _ => Ok(()),
            });
        }
        if !g.closed_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            g.closed_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits until the connection is closed (after [`close`](Self::close)).
    pub async fn wait_closed(&self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_closed(cx)).await
    }
}

impl core::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("peername", &self.transport.peername())
            .field("closing", &self.is_closing())
            .finish()
    }
}
