//! Between anyloop and JS: errors both ways, futures as Promises, Promises
//! as futures.
//!
//! A task of the loop can await any JS `Promise` (through
//! [`promise_future`] or `wasm_bindgen_futures::JsFuture`): the promise's
//! callback wakes the task, which the loop then runs in its next step, in
//! order with everything else. The other way, [`to_promise`] hands a loop
//! future, a task or any `Result` future to JS.

use std::future::Future;

use anyloop_core::{Error, ErrorKind};
use js_sys::{Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::{JsFuture, future_to_promise};

/// An anyloop error as a JS `Error`: `message` is the error's message,
/// `name` is `"AnyloopError"` and `kind` the [`ErrorKind`] name
/// (`"ConnectionRefused"`, `"Cancelled"`…).
pub fn error_to_js(e: &Error) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("AnyloopError");
    let _ = Reflect::set(&err, &JsValue::from_str("kind"), &JsValue::from_str(&format!("{:?}", e.kind())));
    err.into()
}

/// A thrown JS value as an anyloop error. An error made by [`error_to_js`]
/// gets its kind back; a `DOMException` or JS error is classified by its
/// name (`SyntaxError` → `InvalidInput`, `InvalidStateError` →
/// `InvalidState`, `NotSupportedError` → `Unsupported`, `TimeoutError` →
/// `TimedOut`, `AbortError` → `Cancelled`, `SecurityError` →
/// `PermissionDenied`); anything else is `Other` with its string form.
pub fn error_from_js(value: JsValue) -> Error {
    let Some(err) = value.dyn_ref::<js_sys::Error>() else {
        let text = value.as_string().unwrap_or_else(|| format!("{value:?}"));
        return Error::new(ErrorKind::Other, text);
    };
    let name: String = err.name().into();
    let message: String = err.message().into();
    let tagged = Reflect::get(err, &JsValue::from_str("kind")).ok().and_then(|k| k.as_string());
    let kind = tagged.as_deref().and_then(ErrorKind::from_name).unwrap_or(match name.as_str() {
        "SyntaxError" | "TypeError" | "RangeError" | "InvalidAccessError" => ErrorKind::InvalidInput,
        "InvalidStateError" => ErrorKind::InvalidState,
        "NotSupportedError" => ErrorKind::Unsupported,
        "TimeoutError" => ErrorKind::TimedOut,
        "AbortError" => ErrorKind::Cancelled,
        "SecurityError" | "NotAllowedError" => ErrorKind::PermissionDenied,
        "NotFoundError" => ErrorKind::NotFound,
        _ => ErrorKind::Other,
    });
    if name == "AnyloopError" || message.starts_with(&name) {
        Error::new(kind, message)
    } else {
        Error::new(kind, format!("{name}: {message}"))
    }
}

/// A future of `Result<T, Error>` — a [`LoopFuture`](anyloop_core::LoopFuture),
/// a [`Task`](anyloop_core::Task) of a `Result`, an `async` block — as a JS
/// `Promise` that resolves to the value or rejects with
/// [`error_to_js`]`(error)`.
///
/// The promise does not run the loop: the loop must be running (or be run)
/// for the future to complete.
pub fn to_promise<F, T>(fut: F) -> Promise
where
    F: Future<Output = Result<T, Error>> + 'static,
    T: Into<JsValue>,
{
    future_to_promise(async move { fut.await.map(Into::into).map_err(|e| error_to_js(&e)) })
}

/// A JS `Promise` as a future a task can await: its value, or its rejection
/// as an error (see [`error_from_js`]).
pub fn promise_future(promise: Promise) -> impl Future<Output = Result<JsValue, Error>> + 'static {
    let fut = JsFuture::from(promise);
    async move { fut.await.map_err(error_from_js) }
}
