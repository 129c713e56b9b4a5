//! The browser build of the crate (`wasm32-unknown-unknown`).

mod console;
mod driver;
mod host;
mod interop;
mod js;
mod run;
mod websocket;

pub use console::log_to_console;
pub use host::{DriverStats, JsHost, new_event_loop};
pub use interop::{error_from_js, error_to_js, promise_future, to_promise};
pub use log::LevelFilter;
pub use run::{run, run_forever, run_until_complete, run_until_complete_promise, spawn_main, stopped};
pub use websocket::{
    WebSocketTransport, create_websocket_connection, create_websocket_connection_with, open_websocket_connection,
};
