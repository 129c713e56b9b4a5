//! The spec's TCP echo client, protocol style: connect, send a message,
//! print the echo, close.
//!
//! ```sh
//! cargo run --example tcp_echo_client -- 127.0.0.1:8888   # against tcp_echo_server
//! cargo run --example tcp_echo_client                     # starts its own echo server first
//! ```

use std::rc::Rc;

use anyloop::net::{Addr, ConnectOptions, ServerOptions};
use anyloop::{BaseProtocol, Error, ErrorKind, LoopFuture, Protocol, Transport};

struct EchoClientProtocol {
    message: &'static str,
    on_con_lost: LoopFuture<()>,
    transport: Option<Rc<dyn Transport>>,
}

impl BaseProtocol for EchoClientProtocol {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        println!("The server closed the connection");
        let _ = self.on_con_lost.set_result(());
    }
}

impl Protocol for EchoClientProtocol {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        let _ = transport.write(self.message.as_bytes());
        println!("Data sent: {:?}", self.message);
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        println!("Data received: {:?}", String::from_utf8_lossy(data));
        // The whole message came back: we are done.
        if let Some(t) = &self.transport {
            t.close();
        }
    }
}

/// A minimal echo server, for running the example on its own.
struct Echo(Option<Rc<dyn Transport>>);
impl BaseProtocol for Echo {}
impl Protocol for Echo {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.0 = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            let _ = t.write(data);
        }
    }
}

fn main() -> Result<(), Error> {
    let lp = anyloop::new_event_loop()?;
    let target = std::env::args().nth(1);
    let l = lp.clone();
    lp.run_until_complete(async move {
        let (server, host, port) = match target {
            Some(arg) => {
                let (h, p) = arg
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                    .ok_or_else(|| Error::new(ErrorKind::InvalidInput, format!("expected HOST:PORT, got {arg:?}")))?;
                (None, h, p)
            }
            None => {
                let s = l.create_server(|| Echo(None), Some("127.0.0.1"), 0, ServerOptions::default()).await?;
                let Some(Addr::Ip(a)) = s.sockets().first().cloned() else {
                    return Err(Error::new(ErrorKind::Other, "the server has no address"));
                };
                (Some(s), a.ip().to_string(), a.port())
            }
        };
        let on_con_lost = l.create_future::<()>();
        let lost = on_con_lost.clone();
        let message = "Hello World!";
        let (_transport, _protocol) = l
            .create_connection(
                move || EchoClientProtocol { message, on_con_lost: lost, transport: None },
                &host,
                port,
                ConnectOptions::default(),
            )
            .await?;
        // Wait until the protocol signals that the connection is lost.
        on_con_lost.await?;
        if let Some(s) = server {
            s.close();
            s.wait_closed().await?;
        }
        Ok(())
    })??;
    lp.close()
}
