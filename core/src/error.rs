//! The one error type of anyloop: [`Error`], classified by [`ErrorKind`].
//!
//! asyncio raises `RuntimeError`, `InvalidStateError`, `CancelledError`,
//! `TimeoutError`, `OSError`…; here every fallible operation returns
//! `Result<_, Error>` and [`Error::kind`] tells them apart. The error is
//! cheap to clone (a future's exception is handed to every awaiter and to the
//! exception handler) and works without `std`. With `std`, an
//! `std::io::Error` converts losslessly: [`Error::raw_os_error`] and the I/O
//! kinds survive, and the original stays reachable as the error's source.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;

/// What went wrong, in the terms of the asyncio spec.
///
/// Loop-level kinds come first; the I/O kinds mirror `std::io::ErrorKind` so
/// that code handling transport errors reads the same on every host.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The loop is closed (asyncio: `RuntimeError('Event loop is closed')`).
    Closed,
    /// The loop is already running, or another loop runs on this thread.
    AlreadyRunning,
    /// `run_until_complete` returned because the loop stopped first.
    StoppedBeforeComplete,
    /// No loop is running on this thread (`get_running_loop` outside a loop).
    NoRunningLoop,
    /// An operation on a future, task or transport in the wrong state
    /// (asyncio's `InvalidStateError`, e.g. setting a result twice).
    InvalidState,
    /// The future or task was cancelled (asyncio's `CancelledError`).
    Cancelled,
    /// A deadline passed (asyncio's `TimeoutError`).
    TimedOut,
    /// A callback or task panicked; the message is the panic payload.
    Panic,
    /// The host cannot do this at all (signals under WASI, servers in the
    /// browser…); the message says why.
    Unsupported,
    /// An argument was invalid (a bad address, an unknown signal number…).
    InvalidInput,
    /// The peer refused the connection.
    ConnectionRefused,
    /// The peer reset the connection.
    ConnectionReset,
    /// The connection was aborted.
    ConnectionAborted,
    /// The socket is not connected.
    NotConnected,
    /// The address is in use.
    AddrInUse,
    /// The address is not available on this machine.
    AddrNotAvailable,
    /// Writing to a pipe or socket whose reader has gone away.
    BrokenPipe,
    /// The operation would block (internal; never surfaces from the loop).
    WouldBlock,
    /// End of stream came before the expected data.
    UnexpectedEof,
    /// A file or name was not found.
    NotFound,
    /// Permission denied.
    PermissionDenied,
    /// The process (or system) has no file descriptors left (EMFILE/ENFILE).
    TooManyOpenFiles,
    /// A buffer or line went past its limit.
    LimitOverrun,
    /// TLS failed: the handshake (certificate verification, hostname
    /// mismatch, no common protocol version…) or a corrupt record; the
    /// message names the reason and the TLS library's error is the source.
    Tls,
    /// Anything else; see the message and [`Error::raw_os_error`].
    Other,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::Closed,
        ErrorKind::AlreadyRunning,
        ErrorKind::StoppedBeforeComplete,
        ErrorKind::NoRunningLoop,
        ErrorKind::InvalidState,
        ErrorKind::Cancelled,
        ErrorKind::TimedOut,
        ErrorKind::Panic,
        ErrorKind::Unsupported,
        ErrorKind::InvalidInput,
        ErrorKind::ConnectionRefused,
        ErrorKind::ConnectionReset,
        ErrorKind::ConnectionAborted,
        ErrorKind::NotConnected,
        ErrorKind::AddrInUse,
        ErrorKind::AddrNotAvailable,
        ErrorKind::BrokenPipe,
        ErrorKind::WouldBlock,
        ErrorKind::UnexpectedEof,
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::TooManyOpenFiles,
        ErrorKind::LimitOverrun,
        ErrorKind::Tls,
        ErrorKind::Other,
    ];

    /// The kind whose name (its `Debug` form, `"ConnectionRefused"`) is
    /// `name` — for errors that crossed a boundary as text (a JS `Error`…).
    ///
    /// ```
    /// use anyloop_core::ErrorKind;
    /// assert_eq!(ErrorKind::from_name("TimedOut"), Some(ErrorKind::TimedOut));
    /// assert_eq!(ErrorKind::from_name("NoSuchKind"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        use core::fmt::Write;
        struct Eq<'a>(&'a str, bool);
        impl Write for Eq<'_> {
            fn write_str(&mut self, s: &str) -> core::fmt::Result {
                match self.0.strip_prefix(s) {
                    Some(rest) => self.0 = rest,
                    None => self.1 = false,
                }
                Ok(())
            }
        }
        ErrorKind::ALL.iter().copied().find(|k| {
            let mut eq = Eq(name, true);
            let _ = write!(eq, "{k:?}");
            eq.1 && eq.0.is_empty()
        })
    }

    /// A short description, used when an error has no message of its own.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Closed => "Event loop is closed",
            ErrorKind::AlreadyRunning => "This event loop is already running",
            ErrorKind::StoppedBeforeComplete => "Event loop stopped before Future completed.",
            ErrorKind::NoRunningLoop => "no running event loop",
            ErrorKind::InvalidState => "invalid state",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::TimedOut => "timed out",
            ErrorKind::Panic => "panicked",
            ErrorKind::Unsupported => "not supported on this host",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::ConnectionRefused => "connection refused",
            ErrorKind::ConnectionReset => "connection reset by peer",
            ErrorKind::ConnectionAborted => "connection aborted",
            ErrorKind::NotConnected => "not connected",
            ErrorKind::AddrInUse => "address in use",
            ErrorKind::AddrNotAvailable => "address not available",
            ErrorKind::BrokenPipe => "broken pipe",
            ErrorKind::WouldBlock => "operation would block",
            ErrorKind::UnexpectedEof => "unexpected end of stream",
            ErrorKind::NotFound => "not found",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::TooManyOpenFiles => "too many open files",
            ErrorKind::LimitOverrun => "limit overrun",
            ErrorKind::Tls => "TLS error",
            ErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Arc<dyn core::error::Error + Send + Sync + 'static>;

/// An anyloop error: a kind, a message, and optionally an OS error code and
/// an underlying error.
///
/// ```
/// use anyloop_core::{Error, ErrorKind};
/// let e = Error::new(ErrorKind::InvalidInput, "port out of range: 70000");
/// assert_eq!(e.kind(), ErrorKind::InvalidInput);
/// assert_eq!(e.to_string(), "port out of range: 70000");
/// let c = e.clone(); // cheap: errors are shared, not copied
/// assert_eq!(c.kind(), ErrorKind::InvalidInput);
/// ```
///
/// An `Error` is one pointer wide, so `Result<Handle, Error>` and friends
/// stay small on the hot paths that almost never fail.
#[derive(Clone)]
pub struct Error(Arc<Repr>);

struct Repr {
    kind: ErrorKind,
    message: Cow<'static, str>,
    os_code: Option<i32>,
    source: Option<Source>,
}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error(Arc::new(Repr { kind, message: message.into(), os_code: None, source: None }))
    }

    /// An error of `kind` with the kind's standard message.
    pub fn from_kind(kind: ErrorKind) -> Error {
        Error::new(kind, kind.as_str())
    }

    /// Wraps any error value (asyncio's "exception object") as `kind`.
    pub fn wrap<E>(kind: ErrorKind, error: E) -> Error
    where
        E: core::error::Error + Send + Sync + 'static,
    {
        use alloc::string::ToString;
        Error(Arc::new(Repr {
            kind,
            message: Cow::Owned(error.to_string()),
            os_code: None,
            source: Some(Arc::new(error)),
        }))
    }

    /// `Unsupported`, with the reason the host cannot do `what`.
    ///
    /// ```
    /// use anyloop_core::{Error, ErrorKind};
    /// let e = Error::unsupported("add_signal_handler", "WASI has no signals");
    /// assert_eq!(e.kind(), ErrorKind::Unsupported);
    /// assert_eq!(e.to_string(), "add_signal_handler is not supported on this host: WASI has no signals");
    /// ```
    pub fn unsupported(what: &str, why: &str) -> Error {
        Error::new(ErrorKind::Unsupported, alloc::format!("{what} is not supported on this host: {why}"))
    }

    /// An error from an OS error number, with the OS's description.
    pub fn from_raw_os_error(code: i32, kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Error {
        Error(Arc::new(Repr { kind, message: message.into(), os_code: Some(code), source: None }))
    }

    /// The `Cancelled` error asyncio's `CancelledError(msg)` maps to.
    pub fn cancelled(msg: Option<&str>) -> Error {
        match msg {
            Some(m) => Error::new(ErrorKind::Cancelled, String::from(m)),
            None => Error::from_kind(ErrorKind::Cancelled),
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message (without the source's).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The OS error code (`errno`), if this came from the OS.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.0.os_code
    }

    /// Whether this is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.0.kind == ErrorKind::Cancelled
    }

    /// Returns the same error with a context prefix: `"{context}: {message}"`.
    pub fn context(self, context: impl fmt::Display) -> Error {
        let r = &self.0;
        Error(Arc::new(Repr {
            kind: r.kind,
            message: Cow::Owned(alloc::format!("{context}: {}", r.message)),
            os_code: r.os_code,
            source: r.source.clone(),
        }))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)?;
        if let Some(code) = self.0.os_code
            && !self.0.message.contains("os error")
        {
            write!(f, " (os error {code})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.0;
        let mut d = f.debug_struct("Error");
        d.field("kind", &r.kind).field("message", &r.message);
        if let Some(code) = r.os_code {
            d.field("os_code", &code);
        }
        if let Some(src) = &r.source {
            d.field("source", src);
        }
        d.finish()
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        self.0.source.as_deref().map(|e| e as &(dyn core::error::Error + 'static))
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Error {
        Error::from_kind(kind)
    }
}

#[cfg(feature = "std")]
mod io_conv {
    use super::*;
    use alloc::string::ToString;
    use std::io;

    fn kind_of(e: &io::Error) -> ErrorKind {
        if let Some(code) = e.raw_os_error() {
            // EMFILE and ENFILE have no io::ErrorKind of their own, but a
            // server must tell them apart from other accept errors.
            #[cfg(unix)]
            if code == libc_emfile() || code == libc_enfile() {
                return ErrorKind::TooManyOpenFiles;
            }
            let _ = code;
        }
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset => ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted => ErrorKind::ConnectionAborted,
            io::ErrorKind::NotConnected => ErrorKind::NotConnected,
            io::ErrorKind::AddrInUse => ErrorKind::AddrInUse,
            io::ErrorKind::AddrNotAvailable => ErrorKind::AddrNotAvailable,
            io::ErrorKind::BrokenPipe => ErrorKind::BrokenPipe,
            io::ErrorKind::WouldBlock => ErrorKind::WouldBlock,
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => ErrorKind::InvalidInput,
            io::ErrorKind::TimedOut => ErrorKind::TimedOut,
            io::ErrorKind::UnexpectedEof => ErrorKind::UnexpectedEof,
            io::ErrorKind::NotFound => ErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            io::ErrorKind::Unsupported => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        }
    }

    // EMFILE / ENFILE have the same numbers on every Unix we target
    // (Linux, macOS, FreeBSD); core has no libc dependency.
    #[cfg(unix)]
    const fn libc_emfile() -> i32 {
        24
    }
    #[cfg(unix)]
    const fn libc_enfile() -> i32 {
        23
    }

    impl From<io::Error> for Error {
        fn from(e: io::Error) -> Error {
            let kind = kind_of(&e);
            let os_code = e.raw_os_error();
            Error(Arc::new(Repr { kind, message: Cow::Owned(e.to_string()), os_code, source: Some(Arc::new(e)) }))
        }
    }

    impl From<Error> for io::Error {
        fn from(e: Error) -> io::Error {
            if let Some(code) = e.0.os_code {
                return io::Error::from_raw_os_error(code);
            }
            let kind = match e.0.kind {
                ErrorKind::ConnectionRefused => io::ErrorKind::ConnectionRefused,
                ErrorKind::ConnectionReset => io::ErrorKind::ConnectionReset,
                ErrorKind::ConnectionAborted => io::ErrorKind::ConnectionAborted,
                ErrorKind::NotConnected => io::ErrorKind::NotConnected,
                ErrorKind::AddrInUse => io::ErrorKind::AddrInUse,
                ErrorKind::AddrNotAvailable => io::ErrorKind::AddrNotAvailable,
                ErrorKind::BrokenPipe => io::ErrorKind::BrokenPipe,
                ErrorKind::WouldBlock => io::ErrorKind::WouldBlock,
                ErrorKind::InvalidInput => io::ErrorKind::InvalidInput,
                ErrorKind::Tls => io::ErrorKind::InvalidData,
                ErrorKind::TimedOut => io::ErrorKind::TimedOut,
                ErrorKind::UnexpectedEof => io::ErrorKind::UnexpectedEof,
                ErrorKind::NotFound => io::ErrorKind::NotFound,
                ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
                ErrorKind::Unsupported => io::ErrorKind::Unsupported,
                _ => io::ErrorKind::Other,
            };
            io::Error::new(kind, e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn all_lists_every_kind_and_names_round_trip() {
        // Exhaustive inside the crate: a new kind does not compile here
        // until it is added to `ALL` (in order).
        fn position(k: ErrorKind) -> usize {
            match k {
                ErrorKind::Closed => 0,
                ErrorKind::AlreadyRunning => 1,
                ErrorKind::StoppedBeforeComplete => 2,
                ErrorKind::NoRunningLoop => 3,
                ErrorKind::InvalidState => 4,
                ErrorKind::Cancelled => 5,
                ErrorKind::TimedOut => 6,
                ErrorKind::Panic => 7,
                ErrorKind::Unsupported => 8,
                ErrorKind::InvalidInput => 9,
                ErrorKind::ConnectionRefused => 10,
                ErrorKind::ConnectionReset => 11,
                ErrorKind::ConnectionAborted => 12,
                ErrorKind::NotConnected => 13,
                ErrorKind::AddrInUse => 14,
                ErrorKind::AddrNotAvailable => 15,
                ErrorKind::BrokenPipe => 16,
                ErrorKind::WouldBlock => 17,
                ErrorKind::UnexpectedEof => 18,
                ErrorKind::NotFound => 19,
                ErrorKind::PermissionDenied => 20,
                ErrorKind::TooManyOpenFiles => 21,
                ErrorKind::LimitOverrun => 22,
                ErrorKind::Tls => 23,
                ErrorKind::Other => 24,
            }
        }
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(position(*k), i);
            assert_eq!(ErrorKind::from_name(&alloc::format!("{k:?}")), Some(*k));
        }
        assert_eq!(ErrorKind::from_name("Timed"), None);
        assert_eq!(ErrorKind::from_name("TimedOutX"), None);
    }

    #[test]
    fn display_and_kind() {
        let e = Error::from_kind(ErrorKind::Closed);
        assert_eq!(e.to_string(), "Event loop is closed");
        let e = Error::from_raw_os_error(24, ErrorKind::TooManyOpenFiles, "accept failed");
        assert_eq!(e.to_string(), "accept failed (os error 24)");
        assert_eq!(e.raw_os_error(), Some(24));
        assert_eq!(Error::cancelled(Some("bye")).message(), "bye");
        assert!(Error::cancelled(None).is_cancelled());
        assert_eq!(Error::from_kind(ErrorKind::Panic).context("in callback").to_string(), "in callback: panicked");
    }

    #[cfg(feature = "std")]
    #[test]
    fn io_round_trip() {
        let io = std::io::Error::from_raw_os_error(24);
        let e: Error = io.into();
        assert_eq!(e.kind(), ErrorKind::TooManyOpenFiles);
        assert_eq!(e.raw_os_error(), Some(24));
        let back: std::io::Error = e.into();
        assert_eq!(back.raw_os_error(), Some(24));
        let e: Error = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        assert!(core::error::Error::source(&e).is_some());
    }
}
