//! [`StreamReader`]: asyncio's `StreamReader` over any stream transport.
//!
//! Two buffers, consumed in order: the reader's own `local` buffer and the
//! glue's receive buffer. When `local` runs dry the two `Vec`s are swapped
//! — no copy — so `fill_buf` (and `AsyncBufRead`) hands out received bytes
//! where the transport wrote them. Every read takes bytes only when it
//! completes, so a read future dropped mid-way (a cancelled task, a
//! timeout) loses nothing: the bytes stay for the next read.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::task::{Context, Poll};

use super::glue::Glue;
use crate::{Error, ErrorKind, Transport};

/// asyncio's default limit for `readline`/`readuntil` and read buffering:
/// 64 KiB.
pub const DEFAULT_LIMIT: usize = 64 * 1024;

/// The reading half of a stream connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), anyloop_core::Error> {
/// let (mut reader, writer) = anyloop_core::open_connection("127.0.0.1", 8888).await?;
/// writer.write(b"GET / HTTP/1.0\r\n\r\n")?;
/// let status = reader.readline().await?;
/// let body = reader.read_to_end().await?;
/// # let _ = (status, body); Ok(()) }
/// ```
pub struct StreamReader {
    pub(crate) glue: Rc<RefCell<Glue>>,
    local: Vec<u8>,
    pos: usize,
    end: usize,
}

impl StreamReader {
    pub(crate) fn new(glue: Rc<RefCell<Glue>>) -> StreamReader {
        StreamReader { glue, local: Vec::new(), pos: 0, end: 0 }
    }

    fn local_len(&self) -> usize {
        self.end - self.pos
    }

    /// Bytes available without waiting.
    pub fn buffered(&self) -> usize {
        self.local_len() + self.glue.borrow().buffered()
    }

    /// The limit of `readline`/`readuntil` (and of read buffering).
    pub fn limit(&self) -> usize {
        self.glue.borrow().limit
    }

    /// Whether the peer sent EOF and every byte was read (asyncio's
    /// `at_eof`).
    pub fn at_eof(&self) -> bool {
        let g = self.glue.borrow();
        g.eof && g.buffered() == 0 && self.local_len() == 0
    }

    /// The error the connection was lost with, if any.
    pub fn exception(&self) -> Option<Error> {
        self.glue.borrow().exception.clone()
    }

    /// Moves the glue's bytes behind `local`: a swap when `local` is empty,
    /// a copy otherwise.
    fn gather(&mut self) {
        let mut g = self.glue.borrow_mut();
        if g.buffered() == 0 {
            return;
        }
        if self.local_len() == 0 {
            let (start, end) = (g.start, g.end);
            core::mem::swap(&mut self.local, &mut g.buf);
            g.start = 0;
            g.end = 0;
            self.pos = start;
            self.end = end;
        } else {
            if self.pos > 0 {
                self.local.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            }
            let (start, end) = (g.start, g.end);
            self.local.truncate(self.end);
            self.local.extend_from_slice(&g.buf[start..end]);
            self.end = self.local.len();
            g.start = 0;
            g.end = 0;
        }
    }

    /// Resumes the transport once the buffers drained to the limit.
    fn maybe_resume(&self) {
        let transport = {
            let mut g = self.glue.borrow_mut();
            if !g.reading_paused || g.buffered() + self.local_len() > g.limit {
                return;
            }
            g.reading_paused = false;
            g.transport.clone()
        };
        if let Some(t) = transport {
            t.resume_reading();
        }
    }

    /// Ready once at least `min` bytes are available in `local`, or EOF or
    /// an error came; `Ok(false)` means EOF came first.
    fn poll_available(&mut self, cx: &mut Context<'_>, min: usize) -> Poll<Result<bool, Error>> {
        loop {
            if self.local_len() >= min.max(1) {
                return Poll::Ready(Ok(true));
            }
            let has_more = self.glue.borrow().buffered() > 0;
            if has_more {
                self.gather();
                continue;
            }
            let mut g = self.glue.borrow_mut();
            if let Some(e) = &g.exception {
                return Poll::Ready(Err(e.clone()));
            }
            if g.eof {
                return Poll::Ready(Ok(false));
            }
            g.read_waker = Some(cx.waker().clone());
            // Everything buffered is below `min`: make sure the transport
            // is reading, or we would wait forever.
            let paused = core::mem::replace(&mut g.reading_paused, false);
            let t = if paused { g.transport.clone() } else { None };
            drop(g);
            if let Some(t) = t {
                t.resume_reading();
            }
            return Poll::Pending;
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.local_len());
        let out = self.local[self.pos..self.pos + n].to_vec();
        self.consume_local(n);
        out
    }

    fn consume_local(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        self.maybe_resume();
    }

    /// Waits for data and returns up to `n` bytes; empty at EOF (asyncio's
    /// `read(n)`).
    pub async fn read(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if !poll_fn(|cx| self.poll_available(cx, 1)).await? {
            return Ok(Vec::new());
        }
        Ok(self.take(n))
    }

    /// Reads into `buf`; returns the byte count, 0 at EOF.
    pub async fn read_into(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() || !poll_fn(|cx| self.poll_available(cx, 1)).await? {
            return Ok(0);
        }
        let n = buf.len().min(self.local_len());
        buf[..n].copy_from_slice(&self.local[self.pos..self.pos + n]);
        self.consume_local(n);
        Ok(n)
    }

    /// Reads until EOF (asyncio's `read(-1)`).
    pub async fn read_to_end(&mut self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while poll_fn(|cx| self.poll_available(cx, 1)).await? {
            out.extend_from_slice(&self.local[self.pos..self.end]);
            let n = self.local_len();
            self.consume_local(n);
        }
        Ok(out)
    }

    /// Reads exactly `n` bytes (asyncio's `readexactly`). If EOF comes
    /// first: `UnexpectedEof`, and the bytes that did arrive stay buffered
    /// for the next read.
    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        if !poll_fn(|cx| self.poll_available(cx, n)).await? || self.local_len() < n {
            let got = self.buffered();
            return Err(Error::new(
                ErrorKind::UnexpectedEof,
                alloc::format!("{got} bytes read on a total of {n} expected bytes"),
            ));
        }
        Ok(self.take(n))
    }

    /// Reads up to and including `separator` (asyncio's `readuntil`).
    ///
    /// Errors: `LimitOverrun` if no separator shows up within the limit
    /// (the data stays buffered); `UnexpectedEof` if EOF comes first (the
    /// partial data stays buffered).
    pub async fn readuntil(&mut self, separator: &[u8]) -> Result<Vec<u8>, Error> {
        if separator.is_empty() {
            return Err(Error::new(ErrorKind::InvalidInput, "Separator should be at least one-byte string"));
        }
        let limit = self.limit();
        let mut searched = 0;
        loop {
            let have = self.local_len();
            let window = &self.local[self.pos..self.end];
            if let Some(i) = find(&window[searched.min(have)..], separator).map(|i| i + searched.min(have)) {
                let len = i + separator.len();
                if i > limit {
                    return Err(overrun("Separator is found, but chunk is longer than limit"));
                }
                return Ok(self.take(len));
            }
            if have > limit {
                return Err(overrun("Separator is not found, and chunk exceed the limit"));
            }
            searched = have.saturating_sub(separator.len() - 1);
            if !poll_fn(|cx| self.poll_available(cx, have + 1)).await? && self.local_len() == have {
                return Err(Error::new(
                    ErrorKind::UnexpectedEof,
                    alloc::format!("{have} bytes read before EOF, separator not found"),
                ));
            }
        }
    }

    /// Reads one line, `\n` included (asyncio's `readline`). At EOF it
    /// returns what is left (possibly empty). A line longer than the limit
    /// is a `LimitOverrun` error; as in asyncio, that line is discarded
    /// (through its `\n` if it arrived, else everything buffered) so the
    /// stream stays usable for the next line.
    pub async fn readline(&mut self) -> Result<Vec<u8>, Error> {
        match self.readuntil(b"\n").await {
            Ok(line) => Ok(line),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                let n = self.local_len();
                Ok(self.take(n))
            }
            Err(e) if e.kind() == ErrorKind::LimitOverrun => {
                let window = &self.local[self.pos..self.end];
                let drop_len = match find(window, b"\n") {
                    Some(i) => i + 1,
                    None => window.len(),
                };
                self.consume_local(drop_len);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The buffered bytes, waiting for some if there are none; empty at EOF.
    /// Consume what you used with [`consume`](Self::consume). No copy: the
    /// slice is where the transport received the bytes.
    pub async fn fill_buf(&mut self) -> Result<&[u8], Error> {
        poll_fn(|cx| self.poll_available(cx, 1)).await?;
        Ok(&self.local[self.pos..self.end])
    }

    /// Marks `n` bytes of the last [`fill_buf`](Self::fill_buf) as read.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.local_len());
        self.consume_local(n);
    }

    /// Takes every byte received and not yet read (for `start_tls`: they
    /// are the start of the TLS stream).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) fn take_unread(&mut self) -> Vec<u8> {
        self.gather();
        let out = self.local[self.pos..self.end].to_vec();
        self.pos = 0;
        self.end = 0;
        out
    }

    /// The transport, while connected.
    pub fn transport(&self) -> Option<Rc<dyn Transport>> {
        self.glue.borrow().transport.clone()
    }

    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<&[u8], Error>> {
        match self.poll_available(cx, 1) {
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(&self.local[self.pos..self.end])),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn overrun(msg: &'static str) -> Error {
    Error::new(ErrorKind::LimitOverrun, msg)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return haystack.iter().position(|b| *b == needle[0]);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl core::fmt::Debug for StreamReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamReader").field("buffered", &self.buffered()).field("eof", &self.at_eof()).finish()
    }
}
