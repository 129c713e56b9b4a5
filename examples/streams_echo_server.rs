//! The streams-style TCP echo server (asyncio's `start_server` with
//! `await reader.read()` / `writer.write()` / `await writer.drain()`),
//! used by `just bench-streams` next to `tcp_echo_server`.
//!
//! ```sh
//! cargo run --release --example streams_echo_server -- 127.0.0.1:8888   # port 0 picks a free port
//! ```
//!
//! Same command line and first output line (the bound `127.0.0.1:PORT`) as
//! `tcp_echo_server`; serves until SIGINT or SIGTERM, then exits 0.

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;

use anyloop::net::{Addr, ServerOptions};
use anyloop::{Error, ErrorKind, StreamReader, StreamWriter};

/// SIGINT and SIGTERM have these numbers on every Unix.
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// Echoes one connection. `fill_buf` lends the received bytes where the
/// socket wrote them, so nothing is copied between the socket and `write`.
async fn handle(mut reader: StreamReader, writer: StreamWriter) -> Result<(), Error> {
    loop {
        let data = reader.fill_buf().await?;
        if data.is_empty() {
            break;
        }
        let n = data.len();
        writer.write(data)?;
        reader.consume(n);
        writer.drain().await?;
    }
    writer.close();
    Ok(())
}

fn main() -> Result<(), Error> {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8888".into());
    let bad = || Error::new(ErrorKind::InvalidInput, format!("expected HOST:PORT, got {arg:?}"));
    let (host, port) = arg.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();

    let lp = anyloop::new_event_loop()?;
    let l = lp.clone();
    let server =
        lp.run_until_complete(
            async move { l.start_server(handle, Some(&host), port, ServerOptions::default()).await },
        )??;
    for addr in server.sockets() {
        match addr {
            Addr::Ip(a) => println!("{a}"),
            other => println!("{other}"),
        }
    }
    std::io::stdout().flush()?;

    let stopping = Rc::new(Cell::new(false));
    for signum in [SIGINT, SIGTERM] {
        let stopping = stopping.clone();
        if let Err(e) = lp.add_signal_handler(signum, move |lp| {
            stopping.set(true);
            lp.stop();
        }) {
            if e.kind() != ErrorKind::Unsupported {
                return Err(e);
            }
            eprintln!("streams_echo_server: signals not handled here ({e})");
            break;
        }
    }
    lp.run_forever()?;

    server.close();
    server.close_clients();
    let s = server.clone();
    lp.run_until_complete(async move { s.wait_closed().await })??;
    lp.clone().run_and_close(async {})?;
    Ok(())
}
