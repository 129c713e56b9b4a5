//! The protocol between a transport and a stream pair: asyncio's
//! `StreamReaderProtocol`, as a [`BufferedProtocol`].
//!
//! The transport reads straight into [`Glue::buf`] (no copy between the
//! socket and the stream); the [`StreamReader`](super::StreamReader) takes
//! whole buffers from it by swapping `Vec`s. Reading is paused when more
//! than twice the reader's limit is buffered and resumed at the limit, as
//! asyncio's `StreamReader` does; writing is paused by the transport's
//! water marks and `drain()` waits for `resume_writing`.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::task::Waker;

use crate::{BaseProtocol, BufferedProtocol, Error, Transport};

/// Called once the connection is made (servers start their handler here).
pub(crate) type OnConnect = Box<dyn FnOnce(Rc<RefCell<Glue>>, Rc<dyn Transport>)>;

/// Shared state of one connection's reader, writer and protocol.
pub(crate) struct Glue {
    /// Bytes received: `buf[start..end]`; `buf[end..]` is room to receive.
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) limit: usize,
    pub(crate) eof: bool,
    /// The error the connection was lost with.
    pub(crate) exception: Option<Error>,
    pub(crate) read_waker: Option<Waker>,
    pub(crate) reading_paused: bool,
    pub(crate) transport: Option<Rc<dyn Transport>>,
    pub(crate) write_paused: bool,
    pub(crate) drain_wakers: Vec<Waker>,
    pub(crate) lost: bool,
    pub(crate) closed_wakers: Vec<Waker>,
    pub(crate) on_connect: Option<OnConnect>,
    /// `Rc` to ourselves, for `on_connect`.
    pub(crate) me: Option<alloc::rc::Weak<RefCell<Glue>>>,
}

/// Smallest room offered to the transport for one read.
const MIN_READ: usize = 16 * 1024;

impl Glue {
    pub(crate) fn new(limit: usize) -> Glue {
        Glue {
            buf: Vec::new(),
            start: 0,
            end: 0,
            limit,
            eof: false,
            exception: None,
            read_waker: None,
            reading_paused: false,
            transport: None,
            write_paused: false,
            drain_wakers: Vec::new(),
            lost: false,
            closed_wakers: Vec::new(),
            on_connect: None,
            me: None,
        }
    }

    /// Bytes waiting in `buf`.
    pub(crate) fn buffered(&self) -> usize {
        self.end - self.start
    }

    fn wake_reader(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
    }

    fn wake_writers(&mut self) {
        for w in self.drain_wakers.drain(..) {
            w.wake();
        }
    }
}

impl BaseProtocol for Glue {
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.lost = true;
        self.eof = true;
        if exc.is_some() {
            self.exception = exc;
        }
        self.transport = None;
        self.write_paused = false;
        self.wake_reader();
        self.wake_writers();
        for w in self.closed_wakers.drain(..) {
            w.wake();
        }
    }

    fn pause_writing(&mut self) {
        self.write_paused = true;
    }

    fn resume_writing(&mut self) {
        self.write_paused = false;
        self.wake_writers();
    }
}

impl BufferedProtocol for Glue {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport.clone());
        if let (Some(cb), Some(me)) = (self.on_connect.take(), self.me.as_ref().and_then(|w| w.upgrade())) {
            cb(me, transport);
        }
    }

    fn get_buffer(&mut self, sizehint: usize) -> &mut [u8] {
        let want = sizehint.max(MIN_READ);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < want {
                self.buf.resize(self.end + want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    fn buffer_updated(&mut self, nbytes: usize) {
        self.end = (self.end + nbytes).min(self.buf.len());
        self.wake_reader();
        // Stop reading from the OS once twice the limit is waiting.
        if !self.reading_paused
            && self.buffered() > 2 * self.limit
            && let Some(t) = &self.transport
        {
            self.reading_paused = true;
            t.pause_reading();
        }
    }

    fn eof_received(&mut self) -> bool {
        self.eof = true;
        self.wake_reader();
        // Keep the transport open: the writer may still send (half-close).
        true
    }
}
