//! The spec's UDP echo server and UDP echo client, in one program: the
//! server echoes every datagram back to its sender; the client sends one
//! message, prints the echo and closes.
//!
//! ```sh
//! cargo run --example udp_echo
//! ```

use std::net::SocketAddr;
use std::rc::Rc;

use anyloop::net::{DatagramOptions, SockAddr};
use anyloop::{BaseProtocol, DatagramProtocol, DatagramTransport, Error, ExtraInfo, LoopFuture};

#[derive(Default)]
struct EchoServerProtocol {
    transport: Option<Rc<dyn DatagramTransport>>,
}

impl BaseProtocol for EchoServerProtocol {}

impl DatagramProtocol for EchoServerProtocol {
    fn connection_made(&mut self, transport: Rc<dyn DatagramTransport>) {
        self.transport = Some(transport);
    }

    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
        let message = String::from_utf8_lossy(data);
        println!("Received {message:?} from {addr}");
        println!("Send {message:?} to {addr}");
        if let Some(t) = &self.transport {
            let _ = t.sendto(data, Some(addr));
        }
    }
}

struct EchoClientProtocol {
    message: &'static str,
    on_con_lost: LoopFuture<()>,
    transport: Option<Rc<dyn DatagramTransport>>,
}

impl BaseProtocol for EchoClientProtocol {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        println!("Connection closed");
        let _ = self.on_con_lost.set_result(());
    }
}

impl DatagramProtocol for EchoClientProtocol {
    fn connection_made(&mut self, transport: Rc<dyn DatagramTransport>) {
        println!("Send: {:?}", self.message);
        let _ = transport.sendto(self.message.as_bytes(), None);
        self.transport = Some(transport);
    }

    fn datagram_received(&mut self, data: &[u8], _addr: SocketAddr) {
        println!("Received: {:?}", String::from_utf8_lossy(data));
        println!("Close the socket");
        if let Some(t) = &self.transport {
            t.close();
        }
    }

    fn error_received(&mut self, exc: Error) {
        println!("Error received: {exc}");
    }
}

fn main() -> Result<(), Error> {
    let lp = anyloop::new_event_loop()?;
    let l = lp.clone();
    lp.run_until_complete(async move {
        println!("Starting UDP server");
        // One protocol instance serves all client requests.
        let local =
            Some(SockAddr::Ip("127.0.0.1:0".parse().map_err(|_| Error::from_kind(anyloop::ErrorKind::InvalidInput))?));
        let (server, _) = l
            .create_datagram_endpoint(
                EchoServerProtocol::default,
                DatagramOptions { local_addr: local, ..Default::default() },
            )
            .await?;
        let Some(ExtraInfo::Addr(server_addr)) = server.get_extra_info("sockname") else {
            return Err(Error::new(anyloop::ErrorKind::Other, "the server has no address"));
        };

        let on_con_lost = l.create_future::<()>();
        let lost = on_con_lost.clone();
        let (_client, _) = l
            .create_datagram_endpoint(
                move || EchoClientProtocol { message: "Hello World!", on_con_lost: lost, transport: None },
                DatagramOptions { remote_addr: Some(SockAddr::Ip(server_addr)), ..Default::default() },
            )
            .await?;
        on_con_lost.await?;
        server.close();
        Ok(())
    })??;
    lp.close()
}
