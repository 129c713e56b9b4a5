//! Reads lines from stdin through `connect_read_pipe` and writes them
//! upper-cased to stdout through `connect_write_pipe`; exits 0 at EOF.
//!
//! Written for WASI (where stdin and stdout are the only pipes a module
//! has), but portable: it uses the facade only.
//!
//! ```sh
//! just demo-wasi                      # builds it for wasm32-wasip1 and runs it
//! printf 'hello\nworld\n' | anyloop-wasi-run target/wasm32-wasip1/release/examples/wasi_stdin_echo.wasm
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use anyloop::{BaseProtocol, Error, LoopFuture, Protocol, Transport};

/// The stdout side: resolves `finished` once everything is written and
/// the pipe is closed.
struct Output {
    finished: LoopFuture<()>,
}

impl BaseProtocol for Output {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        let _ = self.finished.set_result(());
    }
}

impl Protocol for Output {
    fn data_received(&mut self, _data: &[u8]) {}
}

/// The stdin side: splits the input into lines, writes each upper-cased.
struct UpperCase {
    out: Rc<dyn Transport>,
    partial: Vec<u8>,
    result: Rc<RefCell<Result<(), Error>>>,
}

impl UpperCase {
    fn emit(&mut self, line: &[u8]) {
        let upper = String::from_utf8_lossy(line).to_uppercase();
        if let Err(e) = self.out.write(upper.as_bytes()) {
            *self.result.borrow_mut() = Err(e);
        }
    }
}

impl BaseProtocol for UpperCase {
    fn connection_lost(&mut self, exc: Option<Error>) {
        if let Some(e) = exc {
            *self.result.borrow_mut() = Err(e);
        }
        // Flushes what is buffered, then Output::connection_lost resolves
        // `finished`.
        self.out.close();
    }
}

impl Protocol for UpperCase {
    fn data_received(&mut self, data: &[u8]) {
        self.partial.extend_from_slice(data);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            self.emit(&line);
        }
    }

    fn eof_received(&mut self) -> bool {
        let rest = std::mem::take(&mut self.partial);
        if !rest.is_empty() {
            self.emit(&rest);
        }
        false
    }
}

fn main() -> Result<(), Error> {
    let lp = anyloop::new_event_loop()?;
    let result = Rc::new(RefCell::new(Ok(())));
    let r = result.clone();
    let finished = lp.create_future::<()>();
    let f = finished.clone();
    let l = lp.clone();
    lp.run_until_complete(async move {
        let (out, _) = l.connect_write_pipe(move || Output { finished: f }, 1).await?;
        l.connect_read_pipe(move || UpperCase { out, partial: Vec::new(), result: r }, 0).await?;
        finished.await
    })??;
    lp.close()?;
    result.replace(Ok(()))
}
