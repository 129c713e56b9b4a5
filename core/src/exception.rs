//! Error handling: the exception handler and its [`ExceptionContext`].
//!
//! asyncio passes a `dict`; here it is a struct with the same keys. Errors
//! that have no caller to return to — a panicking callback, a task error
//! nobody retrieved, an `accept()` failure in a server — go to the loop's
//! exception handler. The default handler writes the context to the `log`
//! crate at error level if a logger is installed, else (with `std`) to
//! stderr, so nothing is silently lost.

use alloc::rc::Rc;
use alloc::string::String;
use core::fmt;
use core::panic::Location;

use crate::{AnyTask, Error, EventLoop, Handle};

/// The details of an error reported to the exception handler (asyncio's
/// `context` dict). Build one with [`ExceptionContext::new`] and set the
/// fields that apply.
///
/// ```
/// use anyloop_core::{Error, ErrorKind, ExceptionContext};
/// let mut ctx = ExceptionContext::new("accept failed");
/// ctx.exception = Some(Error::from_kind(ErrorKind::TooManyOpenFiles));
/// ctx.socket = Some("127.0.0.1:8080".into());
/// assert!(ctx.to_string().starts_with("accept failed\nexception: too many open files"));
/// ```
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ExceptionContext {
    /// What happened.
    pub message: String,
    /// The error, if there is one.
    pub exception: Option<Error>,
    /// The future involved (its description).
    pub future: Option<String>,
    /// The task involved.
    pub task: Option<AnyTask>,
    /// The callback handle involved.
    pub handle: Option<Handle>,
    /// The protocol involved (its description).
    pub protocol: Option<String>,
    /// The transport involved (its description).
    pub transport: Option<String>,
    /// The socket involved (its description, e.g. its address).
    pub socket: Option<String>,
    /// Where the handle or task was created (asyncio's `source_traceback`).
    pub source_location: Option<&'static Location<'static>>,
}

impl ExceptionContext {
    /// A context with just a message.
    pub fn new(message: impl Into<String>) -> ExceptionContext {
        ExceptionContext { message: message.into(), ..Default::default() }
    }
}

impl fmt::Display for ExceptionContext {
    /// asyncio's layout: the message, then one `key: value` line per key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(e) = &self.exception {
            write!(f, "\nexception: {e}")?;
        }
        if let Some(x) = &self.future {
            write!(f, "\nfuture: {x}")?;
        }
        if let Some(t) = &self.task {
            write!(f, "\ntask: {t:?}")?;
        }
        if let Some(h) = &self.handle {
            write!(f, "\nhandle: {h:?}")?;
        }
        if let Some(x) = &self.protocol {
            write!(f, "\nprotocol: {x}")?;
        }
        if let Some(x) = &self.transport {
            write!(f, "\ntransport: {x}")?;
        }
        if let Some(x) = &self.socket {
            write!(f, "\nsocket: {x}")?;
        }
        if let Some(l) = self.source_location {
            write!(f, "\ncreated at: {}:{}:{}", l.file(), l.line(), l.column())?;
        }
        Ok(())
    }
}

/// A custom exception handler: `(loop, context)`, as in asyncio.
pub type ExceptionHandler = Rc<dyn Fn(&EventLoop, &ExceptionContext)>;

/// Writes a diagnostic: to the `log` crate when a logger accepts `level`,
/// otherwise (with `std`) to stderr.
pub(crate) fn emit(level: log::Level, text: fmt::Arguments<'_>) {
    if log::log_enabled!(target: "anyloop", level) {
        log::log!(target: "anyloop", level, "{text}");
        return;
    }
    #[cfg(feature = "std")]
    {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "anyloop {}: {text}", level.as_str().to_lowercase());
    }
}
