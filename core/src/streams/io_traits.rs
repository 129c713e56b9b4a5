//! `futures-io` traits for the streams, so crates built on them
//! (codecs, HTTP clients, `futures::io` utilities) work unchanged.
//!
//! `poll_flush` waits like `drain` does: for the transport's buffer to be
//! under its high-water mark. Bytes the transport holds are sent by the
//! loop without further calls; `poll_close` closes the connection and
//! waits until it is closed, which is when everything was sent.

use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;

use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

use super::{StreamReader, StreamWriter};

impl AsyncRead for StreamReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match this.poll_fill(cx) {
            Poll::Ready(Ok(data)) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                this.consume(n);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncBufRead for StreamReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        match self.get_mut().poll_fill(cx) {
            Poll::Ready(Ok(data)) => Poll::Ready(Ok(data)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        StreamReader::consume(self.get_mut(), amt)
    }
}

impl AsyncWrite for StreamWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.poll_drain(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(self.write(buf).map(|()| buf.len()).map_err(io::Error::from)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.poll_drain(cx) {
            Poll::Ready(Ok(())) => {
                let slices: std::vec::Vec<&[u8]> = bufs.iter().map(|b| &b[..]).collect();
                let n = slices.iter().map(|s| s.len()).sum();
                Poll::Ready(self.writelines(&slices).map(|()| n).map_err(io::Error::from))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_drain(cx).map_err(io::Error::from)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.is_closing() {
            self.close();
        }
        self.poll_closed(cx).map_err(io::Error::from)
    }
}

/// A reader and writer of one connection as a single
/// `AsyncRead + AsyncBufRead + AsyncWrite` value — what framing crates
/// (`Framed`…) and HTTP clients usually want.
///
/// ```no_run
/// # async fn demo() -> Result<(), anyloop_core::Error> {
/// let (reader, writer) = anyloop_core::open_connection("127.0.0.1", 8888).await?;
/// let duplex = anyloop_core::DuplexStream::new(reader, writer);
/// let (reader, writer) = duplex.into_split();
/// # let _ = (reader, writer); Ok(()) }
/// ```
#[derive(Debug)]
pub struct DuplexStream {
    reader: StreamReader,
    writer: StreamWriter,
}

impl DuplexStream {
    /// Joins the two halves.
    pub fn new(reader: StreamReader, writer: StreamWriter) -> DuplexStream {
        DuplexStream { reader, writer }
    }

    /// The two halves again.
    pub fn into_split(self) -> (StreamReader, StreamWriter) {
        (self.reader, self.writer)
    }

    /// The reading half.
    pub fn reader(&mut self) -> &mut StreamReader {
        &mut self.reader
    }

    /// The writing half.
    pub fn writer(&self) -> &StreamWriter {
        &self.writer
    }
}

impl AsyncRead for DuplexStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncBufRead for DuplexStream {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().reader).poll_fill_buf(cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().reader.consume(amt)
    }
}

impl AsyncWrite for DuplexStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_close(cx)
    }
}
