//! Write-side building blocks shared by every host's transports: the
//! water-mark logic ([`WaterMarks`]) and the send buffer ([`WriteBuffer`]).
//!
//! asyncio's rule (`_FlowControlMixin`): after a write, if the buffer holds
//! *more than* `high` bytes and the protocol is not paused, call
//! `pause_writing`; after a send, if it is paused and the buffer holds *at
//! most* `low` bytes, call `resume_writing`. Defaults: high 64 KiB, low
//! high / 4.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::{Error, ErrorKind};

/// asyncio's default high-water mark: 64 KiB.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;

/// Write flow control: the marks and whether the protocol is paused.
///
/// ```
/// use anyloop_core::WaterMarks;
/// let mut wm = WaterMarks::default();
/// assert_eq!(wm.limits(), (16 * 1024, 64 * 1024));
/// assert!(!wm.should_pause(64 * 1024));     // at the mark: not over it
/// assert!(wm.should_pause(64 * 1024 + 1));  // over it: pause once
/// assert!(!wm.should_pause(100_000));       // already paused
/// assert!(!wm.should_resume(20_000));       // still above low
/// assert!(wm.should_resume(16 * 1024));     // at low: resume once
/// ```
#[derive(Clone, Debug)]
pub struct WaterMarks {
    high: usize,
    low: usize,
    paused: bool,
}

impl Default for WaterMarks {
    fn default() -> Self {
        WaterMarks { high: DEFAULT_HIGH_WATER, low: DEFAULT_HIGH_WATER / 4, paused: false }
    }
}

impl WaterMarks {
    /// `set_write_buffer_limits(high, low)` with asyncio's defaulting and
    /// validation (`InvalidInput` unless `high >= low`).
    pub fn set_limits(&mut self, high: Option<usize>, low: Option<usize>) -> Result<(), Error> {
        let high = match (high, low) {
            (Some(h), _) => h,
            (None, Some(l)) => l.saturating_mul(4),
            (None, None) => DEFAULT_HIGH_WATER,
        };
        let low = low.unwrap_or(high / 4);
        if high < low {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                alloc::format!("high ({high}) must be >= low ({low}) must be >= 0"),
            ));
        }
        self.high = high;
        self.low = low;
        Ok(())
    }

    /// `(low, high)`, as `get_write_buffer_limits` returns them.
    pub fn limits(&self) -> (usize, usize) {
        (self.low, self.high)
    }

    /// Whether the protocol is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Call after buffering; true means "call `pause_writing` now".
    pub fn should_pause(&mut self, buffered: usize) -> bool {
        if buffered > self.high && !self.paused {
            self.paused = true;
            return true;
        }
        false
    }

    /// Call after sending; true means "call `resume_writing` now".
    pub fn should_resume(&mut self, buffered: usize) -> bool {
        if self.paused && buffered <= self.low {
            self.paused = false;
            return true;
        }
        false
    }
}

/// Writes smaller than this are copied into the tail chunk instead of
/// getting a chunk of their own, so many small writes become one send.
const COALESCE: usize = 16 * 1024;

/// A FIFO of bytes waiting to be sent, in chunks, with vectored access.
///
/// ```
/// use anyloop_core::WriteBuffer;
/// let mut b = WriteBuffer::new();
/// b.push(b"hello ");
/// b.push(b"world");
/// assert_eq!(b.len(), 11);
/// b.consume(6);
/// let mut out = Vec::new();
/// for s in b.chunks(8) { out.extend_from_slice(s) }
/// assert_eq!(out, b"world");
/// ```
#[derive(Default, Debug)]
pub struct WriteBuffer {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of the front chunk already sent.
    offset: usize,
    len: usize,
}

impl WriteBuffer {
    /// An empty buffer.
    pub fn new() -> WriteBuffer {
        WriteBuffer::default()
    }

    /// Bytes buffered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`.
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if data.len() < COALESCE
            && let Some(last) = self.chunks.back_mut()
            && last.len() + data.len() <= last.capacity().max(COALESCE)
        {
            last.extend_from_slice(data);
            return;
        }
        let mut v = Vec::with_capacity(data.len().max(if data.len() < COALESCE { COALESCE } else { 0 }));
        v.extend_from_slice(data);
        self.chunks.push_back(v);
    }

    /// Appends an owned buffer without copying it.
    pub fn push_vec(&mut self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        self.chunks.push_back(data);
    }

    /// Up to `max` unsent slices, in order (for a vectored send).
    pub fn chunks(&self, max: usize) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().take(max).enumerate().map(|(i, c)| if i == 0 { &c[self.offset..] } else { &c[..] })
    }

    /// The first unsent slice (empty if none).
    pub fn front(&self) -> &[u8] {
        self.chunks.front().map(|c| &c[self.offset..]).unwrap_or(&[])
    }

    /// Marks `n` bytes as sent (`n` is clamped to [`len`](Self::len)).
    pub fn consume(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front() else { break };
            let rest = front.len() - self.offset;
            if n < rest {
                self.offset += n;
                return;
            }
            n -= rest;
            self.offset = 0;
            self.chunks.pop_front();
        }
        if self.len == 0 {
            self.chunks.clear();
            self.offset = 0;
        }
    }

    /// Drops everything (abort).
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.offset = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn limits_follow_asyncio() {
        let mut wm = WaterMarks::default();
        wm.set_limits(None, Some(100)).unwrap();
        assert_eq!(wm.limits(), (100, 400));
        wm.set_limits(Some(1000), None).unwrap();
        assert_eq!(wm.limits(), (250, 1000));
        wm.set_limits(Some(0), None).unwrap();
        assert_eq!(wm.limits(), (0, 0));
        assert_eq!(wm.set_limits(Some(10), Some(20)).unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn buffer_keeps_order_across_chunks() {
        let mut b = WriteBuffer::new();
        let big = vec![7u8; 100_000];
        b.push(b"abc");
        b.push(&big);
        b.push(b"xyz");
        b.push_vec(vec![1, 2, 3]);
        assert_eq!(b.len(), 3 + 100_000 + 3 + 3);
        let mut all = Vec::new();
        while !b.is_empty() {
            let n = b.front().len().min(33_333);
            all.extend_from_slice(&b.front()[..n]);
            b.consume(n);
        }
        let mut want = b"abc".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"xyz");
        want.extend_from_slice(&[1, 2, 3]);
        assert_eq!(all, want);
        b.push(b"q");
        b.consume(usize::MAX);
        assert!(b.is_empty());
        assert_eq!(b.front(), b"");
    }
}
