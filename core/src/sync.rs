//! The one lock the core needs: the cross-thread queue's mutex.
//!
//! With `std` it is `std::sync::Mutex` (parks under contention); without it,
//! a spin lock from the `spin` crate — the queue is held for a push or a
//! swap, never across a callback, so spinning is brief.

#[cfg(feature = "std")]
pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

#[cfg(feature = "std")]
impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }

    /// Locks, ignoring poisoning: the queue's invariants hold between any
    /// two statements, so a panic elsewhere cannot leave it half-updated.
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(not(feature = "std"))]
pub(crate) struct Mutex<T>(spin::Mutex<T>);

#[cfg(not(feature = "std"))]
impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Mutex(spin::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> spin::MutexGuard<'_, T> {
        self.0.lock()
    }
}
