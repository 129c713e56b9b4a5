//! Sending files: `sock_sendfile` and `loop.sendfile(transport, …)`.
//!
//! Linux has a zero-copy `sendfile(2)`; it is used when the destination is
//! a stream socket (a raw one, or the socket of one of our transports). The
//! BSDs' and macOS's `sendfile` have other signatures and semantics, so
//! there (and when `sendfile(2)` refuses a file, e.g. one on a filesystem
//! without page-cache support) the fallback reads blocks of 256 KiB in the
//! executor (files may block) and sends them — only if `fallback` allows,
//! as in asyncio; otherwise the error is `Unsupported`.
//!
//! As in asyncio, the file's position is left at `offset + sent`, and a
//! transport is quiet meanwhile: reading is paused, `write()` is refused
//! while `sendfile(2)` owns the socket (the fallback writes through the
//! transport and waits for `resume_writing`, with a stand-in protocol that
//! hands anything received to the real one).

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use anyloop_core::{
    BaseProtocol, Error, ErrorKind, EventLoop, Protocol, RawFd, ReadTransport, StreamProtocol, Transport,
};

use crate::reactor::Reactor;
use crate::stream::{StreamIo, StreamTransport};

/// Bytes read and sent per step of the fallback.
const BLOCK: usize = 256 * 1024;

fn not_available() -> Error {
    Error::unsupported("sendfile", "os.sendfile() is not available for this file or socket")
}

/// Where the transfer ends: `offset + count`, or the end of a regular file.
fn end_of(file: RawFd, offset: u64, count: Option<u64>) -> Result<u64, Error> {
    if count == Some(0) {
        return Err(Error::new(ErrorKind::InvalidInput, "count must be a positive integer (got 0)"));
    }
    let fd = crate::net::socket::borrow(file)?;
    let meta = std::fs::File::from(fd.try_clone_to_owned()?).metadata()?;
    let size = if meta.is_file() { meta.len() } else { u64::MAX };
    Ok(match count {
        Some(c) => offset.saturating_add(c).min(size),
        None => size,
    })
}

/// Leaves the file's position after what was sent (asyncio does `seek`).
fn seek(file: RawFd, pos: u64) {
    // SAFETY: lseek only changes the position of `file`; a bad fd fails
    // with EBADF, which is of no consequence here.
    unsafe { libc::lseek(file, pos.min(i64::MAX as u64) as libc::off_t, libc::SEEK_SET) };
}

/// Reads up to `len` bytes at `offset`, in the executor.
async fn read_block(lp: &EventLoop, file: RawFd, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
    lp.run_in_executor(move || -> Result<Vec<u8>, Error> {
        let mut v = vec![0u8; len];
        loop {
            // SAFETY: `v` is writable for `len` bytes; pread does not touch
            // the file position.
            let n =
                unsafe { libc::pread(file, v.as_mut_ptr().cast(), len, offset.min(i64::MAX as u64) as libc::off_t) };
            if n >= 0 {
                v.truncate(n as usize);
                return Ok(v);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::from(e).context("reading the file failed"));
            }
        }
    })
    .await?
}

/// How a zero-copy transfer ended.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
enum Native {
    /// Everything up to `end` (or the file's end) was sent.
    Done(u64),
    /// `sendfile(2)` refused before sending anything: fall back.
    Unavailable,
    /// It failed after `sent` bytes.
    Failed(u64, Error),
}

/// `sendfile(2)` from `file` to `sock` until `end`, waiting with `wait` on
/// `EAGAIN`.
#[cfg(any(target_os = "linux", target_os = "android"))]
async fn native<W, Fut>(sock: RawFd, file: RawFd, offset: u64, end: u64, mut wait: W) -> Native
where
    W: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let mut off = offset.min(i64::MAX as u64) as libc::off_t;
    let mut sent = 0u64;
    while offset + sent < end {
        let want = (end - offset - sent).min(1 << 30) as usize;
        // SAFETY: both descriptors are lent by the caller for the call; `off`
        // is a valid, exclusive pointer.
        let n = unsafe { libc::sendfile(sock, file, &mut off, want) };
        if n > 0 {
            sent += n as u64;
            continue;
        }
        if n == 0 {
            break; // end of file
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => {
                if let Err(e) = wait().await {
                    return Native::Failed(sent, e);
                }
            }
            Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSOCK | libc::EOPNOTSUPP | libc::ESPIPE) if sent == 0 => {
                return Native::Unavailable;
            }
            _ => return Native::Failed(sent, Error::from(e).context("sendfile() failed")),
        }
    }
    Native::Done(sent)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
async fn native<W, Fut>(_sock: RawFd, _file: RawFd, _offset: u64, _end: u64, _wait: W) -> Native
where
    W: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    Native::Unavailable
}

/// `sock_sendfile`.
pub(crate) async fn sock_sendfile(
    lp: &EventLoop,
    reactor: &Reactor,
    fd: RawFd,
    file: RawFd,
    offset: u64,
    count: Option<u64>,
    fallback: bool,
) -> Result<u64, Error> {
    {
        let b = crate::net::socket::borrow(fd)?;
        if socket2::SockRef::from(&b).r#type()? != socket2::Type::STREAM {
            return Err(Error::new(ErrorKind::InvalidInput, "only SOCK_STREAM type sockets are supported"));
        }
    }
    let end = end_of(file, offset, count)?;
    match native(fd, file, offset, end, || crate::util::wait_fd(reactor, fd, true)).await {
        Native::Done(sent) => {
            seek(file, offset + sent);
            return Ok(sent);
        }
        Native::Failed(sent, e) => {
            seek(file, offset + sent);
            return Err(e);
        }
        Native::Unavailable if !fallback => return Err(not_available()),
        Native::Unavailable => {}
    }
    let mut sent = 0u64;
    let r = async {
        while offset + sent < end {
            let want = (end - offset - sent).min(BLOCK as u64) as usize;
            let block = read_block(lp, file, offset + sent, want).await?;
            if block.is_empty() {
                break;
            }
            crate::sock::sendall(reactor, fd, &block).await?;
            sent += block.len() as u64;
        }
        Ok::<(), Error>(())
    }
    .await;
    seek(file, offset + sent);
    r.map(|()| sent)
}

/// Zero-copy through one of our transports, if `transport` is one.
async fn via_transport<S: StreamIo>(t: &StreamTransport<S>, file: RawFd, offset: u64, end: u64) -> Native {
    let Some(Some(fd)) = t.with_io(|io| io.raw_fd()) else { return Native::Unavailable };
    let was_reading = t.is_reading();
    if let Err(e) = t.set_sendfile(true) {
        return Native::Failed(0, e);
    }
    t.pause_reading();
    let r = match poll_fn(|cx| t.poll_drained(cx)).await {
        Err(e) => Native::Failed(0, e),
        Ok(()) => {
            native(fd, file, offset, end, || {
                let mut armed = false;
                poll_fn(move |cx| t.poll_writable_once(cx, &mut armed))
            })
            .await
        }
    };
    let _ = t.set_sendfile(false);
    if was_reading {
        t.resume_reading();
    }
    r
}

/// `loop.sendfile(transport, file, offset, count, fallback)`.
pub(crate) async fn sendfile(
    lp: &EventLoop,
    transport: Rc<dyn Transport>,
    file: RawFd,
    offset: u64,
    count: Option<u64>,
    fallback: bool,
) -> Result<u64, Error> {
    if transport.is_closing() {
        return Err(Error::new(ErrorKind::InvalidState, "Transport is closing"));
    }
    let end = end_of(file, offset, count)?;
    let any = transport.as_any();
    let outcome = if let Some(t) = any.and_then(|a| a.downcast_ref::<StreamTransport<mio::net::TcpStream>>()) {
        via_transport(t, file, offset, end).await
    } else if let Some(t) = any.and_then(|a| a.downcast_ref::<StreamTransport<mio::net::UnixStream>>()) {
        via_transport(t, file, offset, end).await
    } else {
        Native::Unavailable
    };
    match outcome {
        Native::Done(sent) => {
            seek(file, offset + sent);
            return Ok(sent);
        }
        Native::Failed(sent, e) => {
            seek(file, offset + sent);
            return Err(e);
        }
        Native::Unavailable if !fallback => return Err(not_available()),
        Native::Unavailable => {}
    }
    fallback_via_writes(lp, &transport, file, offset, end).await
}

/// Stands in for the transport's protocol during the fallback: tracks
/// pause/resume_writing, hands received data to the real protocol.
struct Standin {
    real: StreamProtocol,
    paused: bool,
    lost: bool,
    waker: Option<Waker>,
}

impl Standin {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl BaseProtocol for Standin {
    fn pause_writing(&mut self) {
        self.paused = true;
    }
    fn resume_writing(&mut self) {
        self.paused = false;
        self.wake();
    }
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.lost = true;
        self.wake();
        // The connection is gone: the real protocol must hear it too.
        match &self.real {
            StreamProtocol::Plain(p) => p.borrow_mut().connection_lost(exc),
            StreamProtocol::Buffered(p) => p.borrow_mut().connection_lost(exc),
        }
    }
}

impl Protocol for Standin {
    fn data_received(&mut self, data: &[u8]) {
        match &self.real {
            StreamProtocol::Plain(p) => p.borrow_mut().data_received(data),
            StreamProtocol::Buffered(p) => {
                let mut p = p.borrow_mut();
                let mut data = data;
                while !data.is_empty() {
                    let buf = p.get_buffer(data.len());
                    let n = buf.len().min(data.len());
                    if n == 0 {
                        break;
                    }
                    buf[..n].copy_from_slice(&data[..n]);
                    p.buffer_updated(n);
                    data = &data[n..];
                }
            }
        }
    }
    fn eof_received(&mut self) -> bool {
        match &self.real {
            StreamProtocol::Plain(p) => p.borrow_mut().eof_received(),
            StreamProtocol::Buffered(p) => p.borrow_mut().eof_received(),
        }
    }
}

/// asyncio's `_sendfile_fallback`: read blocks, `write` them, wait for
/// `resume_writing` when the transport's buffer is over its high mark.
async fn fallback_via_writes(
    lp: &EventLoop,
    transport: &Rc<dyn Transport>,
    file: RawFd,
    offset: u64,
    end: u64,
) -> Result<u64, Error> {
    let real = transport.get_protocol();
    let paused_before = transport.get_write_buffer_size() > transport.get_write_buffer_limits().1;
    let standin =
        Rc::new(RefCell::new(Standin { real: real.clone(), paused: paused_before, lost: false, waker: None }));
    transport.set_protocol(StreamProtocol::Plain(standin.clone()));
    let was_reading = transport.is_reading();
    transport.pause_reading();
    let mut sent = 0u64;
    let r = async {
        while offset + sent < end {
            let want = (end - offset - sent).min(BLOCK as u64) as usize;
            let block = read_block(lp, file, offset + sent, want).await?;
            if block.is_empty() {
                break;
            }
            poll_fn(|cx| {
                let mut s = standin.borrow_mut();
                if s.lost {
                    return Poll::Ready(Err(Error::new(ErrorKind::ConnectionReset, "Connection closed by peer")));
                }
                if !s.paused {
                    return Poll::Ready(Ok(()));
                }
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            })
            .await?;
            transport.write(&block)?;
            sent += block.len() as u64;
        }
        Ok::<(), Error>(())
    }
    .await;
    seek(file, offset + sent);
    let (lost, paused_now) = {
        let s = standin.borrow();
        (s.lost, s.paused)
    };
    if !lost {
        transport.set_protocol(real.clone());
        if was_reading {
            transport.resume_reading();
        }
        // Keep pause/resume alternating for the real protocol.
        if paused_before != paused_now {
            let call = |p: &mut dyn BaseProtocol| if paused_now { p.pause_writing() } else { p.resume_writing() };
            match &real {
                StreamProtocol::Plain(p) => call(&mut *p.borrow_mut()),
                StreamProtocol::Buffered(p) => call(&mut *p.borrow_mut()),
            }
        }
    }
    r.map(|()| sent)
}
