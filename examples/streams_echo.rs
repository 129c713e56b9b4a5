//! The streams echo pair of asyncio-stream.rst in one program: a
//! `start_server` echo server and an `open_connection` client, async/await
//! only. Prints the echoed line and exits 0.
//!
//! ```sh
//! cargo run --example streams_echo
//! ```
//! It runs unchanged as a wasm32-wasip2 module under wasmtime.

use anyloop::net::{Addr, ServerOptions};
use anyloop::{Error, ErrorKind, StreamReader, StreamWriter};

async fn handle_echo(mut reader: StreamReader, writer: StreamWriter) -> Result<(), Error> {
    let data = reader.read(100).await?;
    let message = String::from_utf8_lossy(&data);
    let addr = writer.transport().peername();
    println!("Received {message:?} from {addr:?}");
    writer.write(&data)?;
    writer.drain().await?;
    writer.close();
    writer.wait_closed().await
}

async fn tcp_echo_client(port: u16, message: &str) -> Result<(), Error> {
    let lp = anyloop::get_running_loop()?;
    let (mut reader, writer) = lp.open_connection("127.0.0.1", port).await?;
    println!("Send: {message:?}");
    writer.write(message.as_bytes())?;
    writer.drain().await?;
    let data = reader.read(100).await?;
    println!("Received: {:?}", String::from_utf8_lossy(&data));
    writer.close();
    writer.wait_closed().await
}

fn main() -> Result<(), Error> {
    anyloop::run(async {
        let lp = anyloop::get_running_loop()?;
        let server = lp.start_server(handle_echo, Some("127.0.0.1"), 0, ServerOptions::default()).await?;
        let port = match server.sockets().first() {
            Some(Addr::Ip(a)) => a.port(),
            _ => return Err(Error::new(ErrorKind::Other, "the server has no IP socket")),
        };
        tcp_echo_client(port, "Hello World!").await?;
        server.close();
        server.wait_closed().await
    })?
}
