//! Test pipes: a stdin that really waits ([`StdinPipe`]) and a stdout with
//! a fixed capacity ([`BoundedPipe`]).

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt, ReadHalf, SimplexStream, WriteHalf};
use wasmtime_wasi::cli::{AsyncStdinStream, IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// The guest's end of a stdin pipe: give it to [`crate::Stdin::Pipe`].
pub struct StdinPipe {
    read: ReadHalf<SimplexStream>,
}

impl StdinPipe {
    pub(crate) fn into_stream(self) -> AsyncStdinStream {
        AsyncStdinStream::new(self.read)
    }
}

/// The test's end of a stdin pipe: blocking writes, then [`close`](Self::close)
/// for EOF.
pub struct StdinWriter {
    rt: tokio::runtime::Runtime,
    write: Option<WriteHalf<SimplexStream>>,
}

/// A stdin pipe of 64 KiB.
pub fn stdin_pipe() -> io::Result<(StdinWriter, StdinPipe)> {
    let (read, write) = tokio::io::simplex(64 * 1024);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok((StdinWriter { rt, write: Some(write) }, StdinPipe { read }))
}

impl StdinWriter {
    /// Writes all of `data` (waits while the pipe is full).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(w) = self.write.as_mut() else { return Err(io::ErrorKind::BrokenPipe.into()) };
        self.rt.block_on(async {
            w.write_all(data).await?;
            w.flush().await
        })
    }

    /// Closes the pipe: the guest reads EOF.
    pub fn close(&mut self) -> io::Result<()> {
        if let Some(mut w) = self.write.take() {
            self.rt.block_on(w.shutdown())?;
        }
        Ok(())
    }
}

struct State {
    buf: VecDeque<u8>,
    closed: bool,
    high: usize,
    /// A flush was just issued: it completes at once (the data is in the
    /// pipe), so readiness is immediate until the next `check_write`.
    flushed: bool,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    notify: tokio::sync::Notify,
    capacity: usize,
}

/// A stdout of `capacity` bytes that reports write readiness only when
/// [`PIPE_BUF`] bytes fit, like a POSIX pipe.
///
/// wasmtime's blocking stdio write (what wasip1's `fd_write` does) waits
/// for readiness once more after its flush; a flush here completes at
/// once, so that wait returns at once with a permit of at least one byte,
/// and the pipe may hold up to `capacity + PIPE_BUF` bytes.
#[derive(Clone)]
pub struct BoundedPipe(Arc<Shared>);

/// The atomic-write size of a [`BoundedPipe`].
pub const PIPE_BUF: usize = 4096;

impl BoundedPipe {
    /// A pipe holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> BoundedPipe {
        BoundedPipe(Arc::new(Shared {
            state: Mutex::new(State { buf: VecDeque::new(), closed: false, high: 0, flushed: false }),
            cond: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            capacity,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads up to `max` bytes, waiting up to `timeout` for some; empty at
    /// EOF (closed and drained) or on timeout.
    pub fn read(&self, max: usize, timeout: Duration) -> Vec<u8> {
        let mut st = self.lock();
        let deadline = std::time::Instant::now() + timeout;
        while st.buf.is_empty() && !st.closed {
            let now = std::time::Instant::now();
            if now >= deadline {
                return Vec::new();
            }
            st = self.0.cond.wait_timeout(st, deadline - now).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
        }
        let n = max.min(st.buf.len());
        let out: Vec<u8> = st.buf.drain(..n).collect();
        drop(st);
        self.0.notify.notify_waiters();
        out
    }

    /// Bytes waiting in the pipe.
    pub fn len(&self) -> usize {
        self.lock().buf.len()
    }

    /// Whether the pipe is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the writer is done (the guest exited).
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The most the pipe ever held.
    pub fn high_water(&self) -> usize {
        self.lock().high
    }

    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.0.cond.notify_all();
    }

    fn free(&self) -> usize {
        self.0.capacity.saturating_sub(self.lock().buf.len())
    }

    fn flushed(&self) -> bool {
        self.lock().flushed
    }

    fn push(&self, data: &[u8]) {
        let mut st = self.lock();
        st.flushed = false;
        st.buf.extend(data);
        st.high = st.high.max(st.buf.len());
        drop(st);
        self.0.cond.notify_all();
    }
}

struct PipeWriter(BoundedPipe);

#[wasmtime_wasi::async_trait]
impl Pollable for PipeWriter {
    async fn ready(&mut self) {
        let need = PIPE_BUF.min(self.0.0.capacity);
        loop {
            let notified = self.0.0.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.0.flushed() || self.0.free() >= need {
                return;
            }
            notified.await;
        }
    }
}

impl OutputStream for PipeWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.0.lock().flushed = true;
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let mut st = self.0.lock();
        let free = self.0.0.capacity.saturating_sub(st.buf.len());
        if std::mem::take(&mut st.flushed) {
            return Ok(free.max(1));
        }
        Ok(free)
    }
}

/// The `AsyncWrite` face (used by neither wasip1 nor wasip2 stdio):
/// writes what fits, waits for room otherwise.
impl AsyncWrite for PipeWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let free = self.0.free();
        if free == 0 {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let n = free.min(buf.len());
        self.0.push(&buf[..n]);
        Poll::Ready(Ok(n))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for BoundedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for BoundedPipe {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(PipeWriter(self.clone()))
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(PipeWriter(self.clone()))
    }
}
