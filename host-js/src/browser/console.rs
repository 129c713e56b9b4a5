//! Routing the loop's reports to the browser console.
//!
//! The default exception handler logs through the `log` crate, or to
//! stderr when no logger is installed; in a page stderr goes nowhere, so
//! without a logger "Task exception was never retrieved" and friends would
//! vanish. [`log_to_console`] installs a minimal logger for that.

use anyloop_core::{Error, ErrorKind};
use log::{Level, LevelFilter, Log, Metadata, Record};
use wasm_bindgen::JsValue;
use web_sys::console;

struct Console;

static CONSOLE: Console = Console;

impl Log for Console {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = JsValue::from_str(&format!("{}: {}", record.target(), record.args()));
        match record.level() {
            Level::Error => console::error_1(&text),
            Level::Warn => console::warn_1(&text),
            Level::Info => console::info_1(&text),
            Level::Debug | Level::Trace => console::debug_1(&text),
        }
    }

    fn flush(&self) {}
}

/// Installs a `log` logger that writes to the browser console
/// (`console.error` for errors, `console.warn` for warnings…), showing
/// records up to `level`. `InvalidState` if the program installed a logger
/// already (then that one receives the loop's reports).
pub fn log_to_console(level: LevelFilter) -> Result<(), Error> {
    log::set_logger(&CONSOLE)
        .map_err(|_| Error::new(ErrorKind::InvalidState, "a `log` logger is already installed"))?;
    log::set_max_level(level);
    Ok(())
}
