//! The spec's TCP echo server, protocol style: every byte a client sends
//! comes straight back, over connections that stay open until the client
//! closes them.
//!
//! ```sh
//! cargo run --release --example tcp_echo_server -- 127.0.0.1:8888   # port 0 picks a free port
//! ```
//!
//! The first line of output is the address the server is bound to
//! (`127.0.0.1:PORT`). It serves until SIGINT or SIGTERM, then closes the
//! server, closes its connections, and exits with status 0. This is the
//! server `just bench-echo` measures.

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use anyloop::net::{Addr, ServerOptions};
use anyloop::{BaseProtocol, ErrorKind, EventLoop, Protocol, Transport};

/// SIGINT and SIGTERM have these numbers on every Unix.
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

#[derive(Default)]
struct EchoServerProtocol {
    transport: Option<Rc<dyn Transport>>,
}

impl BaseProtocol for EchoServerProtocol {
    fn connection_lost(&mut self, _exc: Option<anyloop::Error>) {
        self.transport = None;
    }
}

impl Protocol for EchoServerProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            // Fails only once the connection is closing; nothing to echo then.
            let _ = t.write(data);
        }
    }
}

fn parse_addr(arg: &str) -> Result<(String, u16), anyloop::Error> {
    let bad = || anyloop::Error::new(ErrorKind::InvalidInput, format!("expected HOST:PORT, got {arg:?}"));
    let (host, port) = arg.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

fn main() -> Result<(), anyloop::Error> {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8888".into());
    let (host, port) = parse_addr(&arg)?;
    let lp = anyloop::new_event_loop()?;

    let l = lp.clone();
    let server = lp.run_until_complete(async move {
        l.create_server(EchoServerProtocol::default, Some(&host), port, ServerOptions::default()).await
    })??;
    for addr in server.sockets() {
        match addr {
            Addr::Ip(a) => println!("{a}"),
            other => println!("{other}"),
        }
    }
    std::io::stdout().flush()?;

    // Serve until SIGINT or SIGTERM.
    let stopping = Rc::new(RefCell::new(false));
    for signum in [SIGINT, SIGTERM] {
        let stopping = stopping.clone();
        let added = lp.add_signal_handler(signum, move |lp: &EventLoop| {
            *stopping.borrow_mut() = true;
            lp.stop();
        });
        if let Err(e) = added {
            if e.kind() != ErrorKind::Unsupported {
                return Err(e);
            }
            // Without signal support the default disposition still ends us.
            eprintln!("tcp_echo_server: signals not handled here ({e})");
            break;
        }
    }
    lp.run_forever()?;

    // Shut down: stop listening, close the connections (flushing what they
    // still have to send; a peer that stops reading gets 1 s), wait for them.
    server.close();
    server.close_clients();
    let s = server.clone();
    let deadline = lp.call_later(Duration::from_secs(1), move |_| s.abort_clients())?;
    let s = server.clone();
    lp.run_until_complete(async move { s.wait_closed().await })??;
    deadline.cancel();
    lp.close()?;
    Ok(())
}
