//! Panic isolation: with `std`, a panicking callback or task becomes an
//! [`ErrorKind::Panic`] error for the exception handler and the loop goes
//! on. Without `std` there is no unwinding to catch; panics propagate.

use crate::Error;
#[cfg(feature = "std")]
use crate::ErrorKind;

/// Runs `f`, turning a panic into an error carrying the panic message.
#[cfg(feature = "std")]
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let msg = if let Some(s) = payload.downcast_ref::<&'static str>() {
            alloc::string::String::from(*s)
        } else if let Some(s) = payload.downcast_ref::<alloc::string::String>() {
            s.clone()
        } else {
            alloc::string::String::from("Box<dyn Any>")
        };
        Error::new(ErrorKind::Panic, alloc::format!("panicked: {msg}"))
    })
}

/// Without `std`: runs `f`.
#[cfg(not(feature = "std"))]
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Error> {
    Ok(f())
}
