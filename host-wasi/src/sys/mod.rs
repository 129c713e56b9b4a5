//! The two WASI system interfaces the reactor can wait in.

#[cfg(target_env = "p1")]
mod p1;
#[cfg(target_env = "p1")]
pub(crate) use p1::*;

#[cfg(target_env = "p2")]
mod p2;
#[cfg(target_env = "p2")]
pub(crate) use p2::*;

/// A timeout in whole nanoseconds (the unit of both WASI clocks), so a
/// deadline is never rounded down; saturates at about 584 years.
pub(crate) fn timeout_nanos(timeout: std::time::Duration) -> u64 {
    u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)
}
