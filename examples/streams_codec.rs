//! A crate built on the `futures-io` traits, working unchanged over our
//! streams: `asynchronous-codec`'s `LinesCodec` frames a line protocol on a
//! connection to a local server, through `DuplexStream` (reader + writer as
//! one `AsyncRead + AsyncWrite`).
//!
//! ```sh
//! cargo run --example streams_codec
//! ```

use anyloop::net::{Addr, ServerOptions};
use anyloop::{DuplexStream, Error, ErrorKind, StreamReader, StreamWriter};
use asynchronous_codec::{Framed, LinesCodec};
use futures::{SinkExt, StreamExt};

/// The server: answers each line with its upper-case version, framed too.
async fn shout(reader: StreamReader, writer: StreamWriter) -> Result<(), Error> {
    let mut lines = Framed::new(DuplexStream::new(reader, writer), LinesCodec);
    while let Some(line) = lines.next().await {
        let line = line?;
        lines.send(line.to_uppercase()).await?;
    }
    Ok(())
}

fn main() -> Result<(), Error> {
    anyloop::run(async {
        let lp = anyloop::get_running_loop()?;
        let server = lp.start_server(shout, Some("127.0.0.1"), 0, ServerOptions::default()).await?;
        let Some(Addr::Ip(addr)) = server.sockets().into_iter().next() else {
            return Err(Error::new(ErrorKind::Other, "the server has no IP socket"));
        };
        let (reader, writer) = lp.open_connection("127.0.0.1", addr.port()).await?;
        let mut framed = Framed::new(DuplexStream::new(reader, writer), LinesCodec);
        for word in ["hello", "codec", "world"] {
            framed.send(format!("{word}\n")).await?;
            let answer = framed.next().await.ok_or_else(|| Error::new(ErrorKind::UnexpectedEof, "no answer"))??;
            print!("{answer}");
        }
        server.close();
        Ok(())
    })?
}
