//! Failed TLS handshakes leak no descriptors: 40 connections refused for an
//! unknown CA, 10 timed out against a silent peer, and the process has the
//! same open descriptors afterwards. Its own binary: it counts the
//! process's descriptors. Run with `cargo test -p anyloop-tests --features tls`.
#![cfg(all(feature = "tls", target_os = "linux"))]

use std::rc::Rc;
use std::time::Duration;

use anyloop::net::{Addr, ConnectOptions, ServerOptions};
use anyloop::tls::{TlsConfig, TlsContext};
use anyloop::{BaseProtocol, ErrorKind, Protocol};
use anyloop_tests::pki::Ca;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[derive(Default)]
struct Silent;
impl BaseProtocol for Silent {}
impl Protocol for Silent {
    fn data_received(&mut self, _data: &[u8]) {}
}

#[test]
fn failed_handshakes_close_their_sockets() {
    let ca = Ca::new("fd-test CA");
    let cert = ca.server(&["localhost"]);
    let stranger = Ca::new("stranger");
    let lp = anyloop::new_event_loop().unwrap();
    let before = open_fds();
    let l2 = lp.clone();
    let fut = async move {
        let lp = l2;
        let ssl: Rc<dyn TlsContext> =
            Rc::new(TlsConfig::server(cert.pem.as_bytes(), cert.key.as_bytes()).build().unwrap());
        let opts = ServerOptions { ssl: Some(ssl), ..Default::default() };
        let server = lp.create_server(Silent::default, Some("127.0.0.1"), 0, opts).await.unwrap();
        let silent = lp.create_server(Silent::default, Some("127.0.0.1"), 0, ServerOptions::default()).await.unwrap();
        let port = |s: &anyloop::net::Server| match s.sockets()[0] {
            Addr::Ip(a) => a.port(),
            _ => unreachable!(),
        };
        let wrong: Rc<dyn TlsContext> =
            Rc::new(TlsConfig::client().root_certificates_pem(stranger.pem.as_bytes()).unwrap().build().unwrap());
        for _ in 0..40 {
            let opts = ConnectOptions {
                ssl: Some(wrong.clone()),
                server_hostname: Some("localhost".into()),
                ..Default::default()
            };
            let e = lp.create_connection(Silent::default, "127.0.0.1", port(&server), opts).await.err().unwrap();
            assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
        }
        for _ in 0..10 {
            let opts = ConnectOptions {
                ssl: Some(wrong.clone()),
                server_hostname: Some("localhost".into()),
                ssl_handshake_timeout: Some(Duration::from_millis(20)),
                ..Default::default()
            };
            let e = lp.create_connection(Silent::default, "127.0.0.1", port(&silent), opts).await.err().unwrap();
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        }
        server.close();
        silent.close();
        server.close_clients();
        silent.abort_clients();
        server.wait_closed().await.unwrap();
        silent.wait_closed().await.unwrap();
        anyloop::sleep(Duration::from_millis(50)).await;
    };
    lp.run_until_complete(anyloop::timeout(Duration::from_secs(30), fut)).unwrap().expect("timed out");
    assert_eq!(open_fds(), before, "descriptors leaked");
    lp.close().unwrap();
}
