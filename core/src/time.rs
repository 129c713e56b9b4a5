//! The loop's clock: [`Instant`], a point on the host's monotonic clock.
//!
//! asyncio's `loop.time()` is a float of seconds on a monotonic clock. Here it
//! is an [`Instant`]: whole nanoseconds since an origin the host chooses (boot,
//! process start, page load…). Only differences between instants of the same
//! host mean anything, exactly like `std::time::Instant`, but unlike it this
//! type never reads a clock itself: reading the time is the host's job
//! ([`Host::now`](crate::Host::now)), because `std::time::Instant::now()`
//! panics in the browser and does not exist without `std`.
//!
//! With the `std` feature, [`Instant::from_std`] and [`Instant::to_std`]
//! convert to and from `std::time::Instant` on targets where std has a clock.
//! Every std-based host (native, WASI) uses that same conversion for its
//! clock, so instants from different loops in one process are comparable.

use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time on the host's monotonic clock, in nanoseconds since the
/// host's origin.
///
/// Arithmetic saturates instead of overflowing: `Instant` + a huge `Duration`
/// is [`Instant::FAR_FUTURE`], not a panic, so `call_later(Duration::MAX)` is
/// simply "never".
///
/// ```
/// use anyloop_core::Instant;
/// use core::time::Duration;
///
/// let t = Instant::from_nanos(1_500);
/// assert_eq!(t + Duration::from_nanos(500), Instant::from_nanos(2_000));
/// assert_eq!(t.saturating_duration_since(Instant::from_nanos(2_000)), Duration::ZERO);
/// assert_eq!(Instant::from_nanos(u64::MAX - 1) + Duration::MAX, Instant::FAR_FUTURE);
/// ```
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The host clock's origin.
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant (about 584 years after the origin);
    /// a timer there never fires.
    pub const FAR_FUTURE: Instant = Instant(u64::MAX);

    /// The instant `nanos` nanoseconds after the host's origin.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// Nanoseconds since the host's origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, or `None` past [`Instant::FAR_FUTURE`].
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        let nanos = u64::try_from(d.as_nanos()).ok()?;
        self.0.checked_add(nanos).map(Instant)
    }

    /// `self - d`, or `None` before the origin.
    pub fn checked_sub(self, d: Duration) -> Option<Instant> {
        let nanos = u64::try_from(d.as_nanos()).ok()?;
        self.0.checked_sub(nanos).map(Instant)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.checked_add(d).unwrap_or(Instant::FAR_FUTURE)
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        self.checked_sub(d).unwrap_or(Instant::ZERO)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating: an `earlier` that is in fact later gives zero.
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Instant({}.{:09}s)", self.0 / 1_000_000_000, self.0 % 1_000_000_000)
    }
}

/// Conversions to and from `std::time::Instant`, on targets where std has a
/// monotonic clock (not `wasm32-unknown-unknown`, where it panics).
#[cfg(all(feature = "std", not(all(target_arch = "wasm32", target_os = "unknown"))))]
mod std_clock {
    use super::Instant;
    use std::sync::OnceLock;

    /// The shared origin of every std-based host in this process: the first
    /// time anyone converted a `std::time::Instant`.
    fn origin() -> std::time::Instant {
        static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
        *ORIGIN.get_or_init(std::time::Instant::now)
    }

    impl Instant {
        /// Converts a `std::time::Instant`. Instants before the process-wide
        /// origin (the first conversion) saturate to [`Instant::ZERO`].
        ///
        /// ```
        /// use anyloop_core::Instant;
        /// let std_now = std::time::Instant::now();
        /// let ours = Instant::from_std(std_now);
        /// assert_eq!(Instant::from_std(ours.to_std()), ours);
        /// ```
        pub fn from_std(t: std::time::Instant) -> Instant {
            let nanos = t.saturating_duration_since(origin()).as_nanos();
            Instant(u64::try_from(nanos).unwrap_or(u64::MAX))
        }

        /// Converts back to a `std::time::Instant` (saturating at the far end).
        pub fn to_std(self) -> std::time::Instant {
            let o = origin();
            o.checked_add(core::time::Duration::from_nanos(self.0))
                .unwrap_or(o + core::time::Duration::from_secs(u32::MAX as u64))
        }

        /// The current time of the std monotonic clock, as the std-based
        /// hosts report it.
        pub fn now_std() -> Instant {
            Instant::from_std(std::time::Instant::now())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        assert_eq!(Instant::from_nanos(5) - Instant::from_nanos(9), Duration::ZERO);
        assert_eq!(Instant::from_nanos(9) - Instant::from_nanos(5), Duration::from_nanos(4));
        assert_eq!(Instant::ZERO + Duration::MAX, Instant::FAR_FUTURE);
        assert_eq!(Instant::ZERO.checked_add(Duration::MAX), None);
    }

    #[test]
    fn debug_shows_seconds() {
        assert_eq!(format!("{:?}", Instant::from_nanos(1_000_000_123)), "Instant(1.000000123s)");
    }

    #[cfg(feature = "std")]
    #[test]
    fn std_round_trip_is_monotonic() {
        let a = Instant::now_std();
        let b = Instant::now_std();
        assert!(b >= a);
        let s = std::time::Instant::now();
        let diff = Instant::from_std(s).to_std();
        assert!(diff.max(s) - diff.min(s) < std::time::Duration::from_micros(1));
    }
}
