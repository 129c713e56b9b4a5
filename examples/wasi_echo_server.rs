//! A TCP echo server — the spec's "TCP echo server protocol" — that runs
//! as a WASI component (wasm32-wasip2) under wasmtime, on 127.0.0.1, and
//! answers native clients. It prints the address it listens on first.
//!
//! ```sh
//! cargo build --release --example wasi_echo_server --target wasm32-wasip2
//! anyloop-wasi-run target/wasm32-wasip2/release/examples/wasi_echo_server.wasm [--port N] [--connections N]
//! ```
//!
//! `--connections N` stops the server once N connections have closed
//! (the tests use it); without it the server runs until killed. The code
//! uses the facade only, so it is the same program on every host.

use std::cell::Cell;
use std::rc::Rc;

use anyloop::{BaseProtocol, Error, Protocol, Transport};

struct EchoServerProtocol {
    transport: Option<Rc<dyn Transport>>,
    closed: Rc<Cell<u64>>,
    stop_after: Option<u64>,
}

impl BaseProtocol for EchoServerProtocol {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        self.closed.set(self.closed.get() + 1);
        if self.stop_after.is_some_and(|n| self.closed.get() >= n)
            && let Ok(lp) = anyloop::get_running_loop()
        {
            lp.stop();
        }
    }
}

impl Protocol for EchoServerProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            // Only fails once the connection is closing: nothing to echo to.
            let _ = t.write(data);
        }
    }

    fn eof_received(&mut self) -> bool {
        // Close after the echo of everything received has been sent.
        if let Some(t) = &self.transport {
            t.close();
        }
        true
    }
}

fn flag(args: &[String], name: &str) -> Option<u64> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let port = flag(&args, "--port").unwrap_or(0) as u16;
    let stop_after = flag(&args, "--connections");

    let lp = anyloop::new_event_loop()?;
    let closed = Rc::new(Cell::new(0));
    let l = lp.clone();
    let server = lp.run_until_complete(async move {
        l.create_server(
            move || EchoServerProtocol { transport: None, closed: closed.clone(), stop_after },
            Some("127.0.0.1"),
            port,
            Default::default(),
        )
        .await
    })??;
    for addr in server.sockets() {
        println!("Serving on {addr}");
    }
    let result = lp.run_forever();
    server.close();
    lp.close()?;
    result
}
