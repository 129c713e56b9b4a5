//! [`HandedOver`]: the handle `Transport::hand_over` returns, for the TLS
//! layer `start_tls` stacks on a stream transport. The transport itself
//! then refuses writes and ignores reading and protocol changes from every
//! other handle (the application's old one), while this handle drives it
//! as before: each call runs with the refusal lifted.

use std::any::Any;
use std::rc::Rc;

use anyloop_core::{
    BaseTransport, Error, ErrorKind, ExtraInfo, ReadTransport, StreamProtocol, Transport, WriteTransport,
};

use super::*;

pub(super) fn handed_over_error() -> Error {
    Error::new(
        ErrorKind::InvalidState,
        "this transport was upgraded by start_tls(): use the transport start_tls() returned",
    )
}

impl<S: StreamIo> StreamTransport<S> {
    /// Whether a call through a plain handle must be refused.
    pub(super) fn refused(&self) -> bool {
        self.has(HANDED_OVER) && self.bypass.get() == 0
    }
}

/// The handle of the layer a stream transport was handed over to.
pub(super) struct HandedOver<S: StreamIo>(pub(super) Rc<StreamTransport<S>>);

impl<S: StreamIo> HandedOver<S> {
    fn with<R>(&self, f: impl FnOnce(&StreamTransport<S>) -> R) -> R {
        let t = &*self.0;
        t.bypass.set(t.bypass.get() + 1);
        let r = f(t);
        t.bypass.set(t.bypass.get() - 1);
        r
    }
}

impl<S: StreamIo> BaseTransport for HandedOver<S> {
    fn close(&self) {
        self.0.close()
    }
    fn is_closing(&self) -> bool {
        self.0.is_closing()
    }
    fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        self.0.get_extra_info(name)
    }
    fn as_any(&self) -> Option<&dyn Any> {
        None // not the transport itself: sendfile must not bypass the layer on top
    }
}

impl<S: StreamIo> ReadTransport for HandedOver<S> {
    fn is_reading(&self) -> bool {
        self.0.is_reading()
    }
    fn pause_reading(&self) {
        self.with(|t| t.pause_reading())
    }
    fn resume_reading(&self) {
        self.with(|t| t.resume_reading())
    }
}

impl<S: StreamIo> WriteTransport for HandedOver<S> {
    fn write(&self, data: &[u8]) -> Result<(), Error> {
        self.with(|t| t.write(data))
    }
    fn writelines(&self, bufs: &[&[u8]]) -> Result<(), Error> {
        self.with(|t| t.writelines(bufs))
    }
    fn can_write_eof(&self) -> bool {
        self.0.can_write_eof()
    }
    fn write_eof(&self) -> Result<(), Error> {
        self.with(|t| t.write_eof())
    }
    fn abort(&self) {
        self.0.abort()
    }
    fn get_write_buffer_size(&self) -> usize {
        self.0.get_write_buffer_size()
    }
    fn get_write_buffer_limits(&self) -> (usize, usize) {
        self.0.get_write_buffer_limits()
    }
    fn set_write_buffer_limits(&self, high: Option<usize>, low: Option<usize>) -> Result<(), Error> {
        self.with(|t| t.set_write_buffer_limits(high, low))
    }
}

impl<S: StreamIo> Transport for HandedOver<S> {
    fn set_protocol(&self, protocol: StreamProtocol) {
        self.with(|t| t.set_protocol(protocol))
    }
    fn get_protocol(&self) -> StreamProtocol {
        self.0.get_protocol()
    }
    fn hand_over(&self) -> Option<Rc<dyn Transport>> {
        None // already handed over
    }
}
