//! The few global JS functions the host calls, bound directly so they work
//! in a window and in a worker alike (no `window` object needed).

use anyloop_core::Instant;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`: milliseconds since the page's time origin, as a
    /// float (coarsened by the browser to 5–100 µs).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    pub(crate) fn performance_now() -> f64;

    /// `setTimeout(callback, ms)`; the id is an integer in browsers.
    #[wasm_bindgen(js_name = setTimeout)]
    pub(crate) fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;

    /// `clearTimeout(id)`.
    #[wasm_bindgen(js_name = clearTimeout)]
    pub(crate) fn clear_timeout(id: &JsValue);
}

/// The loop's clock: `performance.now()` in whole nanoseconds. It is
/// monotonic by the High Resolution Time spec.
pub(crate) fn now() -> Instant {
    ms_to_instant(performance_now())
}

/// A `performance.now()` reading as an [`Instant`] (negative or NaN: zero).
pub(crate) fn ms_to_instant(ms: f64) -> Instant {
    // `as` saturates for out-of-range floats and maps NaN to 0.
    Instant::from_nanos((ms * 1_000_000.0) as u64)
}
