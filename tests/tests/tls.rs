//! TLS between our own client and server on loopback: handshakes, extra
//! info, 10 MiB both ways, certificate and hostname verification, version
//! and ALPN negotiation, client certificates, timeouts, close_notify versus
//! truncation, flow control with a slow reader, start_tls, Unix sockets and
//! connect_accepted_socket. Run with `cargo test -p anyloop-tests --features tls`.
#![cfg(feature = "tls")]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyloop::net::{ConnectOptions, Server, ServerOptions};
use anyloop::tls::{StartTlsOptions, TlsConfig, TlsContext, TlsVersion, rustls, rustls_error};
use anyloop::{BaseProtocol, Error, ErrorKind, EventLoop, ExtraInfo, Protocol, StreamProtocol, Transport};
use anyloop_tests::pki::{Ca, Cert};
use anyloop_tests::{port_of, run, stream_echo as echo};

struct Pki {
    ca: Ca,
    cert: Cert,
}

fn pki() -> Pki {
    let ca = Ca::new("anyloop test CA");
    let cert = ca.server(&["localhost", "127.0.0.1"]);
    Pki { ca, cert }
}

fn server_tls(cert: &Cert) -> Rc<dyn TlsContext> {
    Rc::new(TlsConfig::server(cert.pem.as_bytes(), cert.key.as_bytes()).build().unwrap())
}

fn client_tls(ca: &Ca) -> Rc<dyn TlsContext> {
    Rc::new(TlsConfig::client().root_certificates_pem(ca.pem.as_bytes()).unwrap().build().unwrap())
}

fn connect_opts(ssl: Rc<dyn TlsContext>, name: &str) -> ConnectOptions {
    ConnectOptions { ssl: Some(ssl), server_hostname: Some(name.into()), ..Default::default() }
}

async fn tls_echo_server(lp: &EventLoop, ssl: Rc<dyn TlsContext>) -> Server {
    let opts = ServerOptions { ssl: Some(ssl), ..Default::default() };
    lp.start_server(echo, Some("127.0.0.1"), 0, opts).await.unwrap()
}

fn text(t: &Rc<dyn Transport>, name: &str) -> Option<String> {
    match t.get_extra_info(name) {
        Some(ExtraInfo::Text(s)) => Some(s),
        _ => None,
    }
}

/// Records what a plain protocol hears.
#[derive(Default)]
struct Rec {
    transport: Option<Rc<dyn Transport>>,
    data: Vec<u8>,
    eof: bool,
    lost: Option<Option<Error>>,
}
impl BaseProtocol for Rec {
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.lost = Some(exc);
    }
}
impl Protocol for Rec {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.data.extend_from_slice(data);
    }
    fn eof_received(&mut self) -> bool {
        self.eof = true;
        false
    }
}

async fn wait_until(mut f: impl FnMut() -> bool) {
    while !f() {
        anyloop::sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn handshake_echo_and_extra_info() {
    let p = pki();
    run(move |lp| async move {
        let server = tls_echo_server(&lp, server_tls(&p.cert)).await;
        let (t, rec) = lp
            .create_connection(
                Rec::default,
                "127.0.0.1",
                port_of(&server),
                connect_opts(client_tls(&p.ca), "localhost"),
            )
            .await
            .unwrap();
        // connection_made came before create_connection returned, with the TLS transport.
        assert!(rec.borrow().transport.is_some());
        assert_eq!(text(&t, "ssl_version").as_deref(), Some("TLSv1.3"));
        assert!(text(&t, "cipher").unwrap().starts_with("TLS13_"), "{:?}", text(&t, "cipher"));
        assert_eq!(text(&t, "server_hostname").as_deref(), Some("localhost"));
        assert_eq!(t.get_extra_info("alpn_protocol"), None);
        match t.get_extra_info("peercert") {
            Some(ExtraInfo::List(chain)) => assert_eq!(chain.first(), Some(&ExtraInfo::Bytes(p.cert.der.clone()))),
            other => panic!("peercert: {other:?}"),
        }
        // The raw transport's info shows through.
        assert_eq!(t.peername().map(|a| a.port()), Some(port_of(&server)));
        t.write(b"hello over TLS").unwrap();
        wait_until(|| rec.borrow().data.len() >= 14).await;
        assert_eq!(rec.borrow().data, b"hello over TLS");
        // Clean close: close_notify both ways, connection_lost(None).
        t.close();
        wait_until(|| rec.borrow().lost.is_some()).await;
        assert!(rec.borrow().lost.as_ref().unwrap().is_none());
        assert!(t.write(b"x").is_err());
        server.close();
        server.wait_closed().await.unwrap();
    });
}

#[test]
fn ten_mib_both_ways_byte_for_byte_over_streams() {
    let p = pki();
    run(move |lp| async move {
        let server = tls_echo_server(&lp, server_tls(&p.cert)).await;
        let opts = connect_opts(client_tls(&p.ca), "localhost");
        let (mut r, w) = lp.open_connection_with("127.0.0.1", port_of(&server), opts, 64 * 1024).await.unwrap();
        let total = 10 * 1024 * 1024;
        let data: Rc<Vec<u8>> = Rc::new((0..total).map(|i| (i * 7 + i / 65_536) as u8).collect());
        let d2 = data.clone();
        let writer = lp
            .create_task(async move {
                for chunk in d2.chunks(100_000) {
                    w.write(chunk)?;
                    w.drain().await?;
                }
                w.write_eof()?;
                Ok::<_, Error>(w)
            })
            .unwrap();
        let got = r.read_to_end().await.unwrap();
        assert_eq!(got.len(), total);
        assert!(got == *data, "the echoed bytes differ");
        let w = writer.await.unwrap().unwrap();
        w.close();
        w.wait_closed().await.unwrap();
        server.close();
        server.wait_closed().await.unwrap();
    });
}

async fn connect_err(lp: &EventLoop, port: u16, ssl: Rc<dyn TlsContext>, name: &str) -> Error {
    match lp.open_connection_with("127.0.0.1", port, connect_opts(ssl, name), 1024).await {
        Ok(_) => panic!("connected although it should not have"),
        Err(e) => e,
    }
}

#[test]
fn hostname_mismatch_unknown_ca_and_expired_certificates_are_rejected() {
    let p = pki();
    let other_ca = Ca::new("some other CA");
    let expired = p.ca.expired_server(&["localhost"]);
    run(move |lp| async move {
        let server = tls_echo_server(&lp, server_tls(&p.cert)).await;
        let port = port_of(&server);

        let e = connect_err(&lp, port, client_tls(&p.ca), "example.com").await;
        assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
        assert!(e.to_string().contains("hostname mismatch"), "{e}");
        assert!(matches!(
            rustls_error(&e),
            Some(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. }))
        ));

        let e = connect_err(&lp, port, client_tls(&other_ca), "localhost").await;
        assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
        assert!(e.to_string().contains("unknown CA"), "{e}");

        // The bundled public roots do not know our CA either.
        let e = connect_err(&lp, port, Rc::new(TlsConfig::client().build().unwrap()), "localhost").await;
        assert!(e.to_string().contains("unknown CA"), "{e}");

        // server_hostname "" turns the name check off, not the chain check.
        let (_r, w) =
            lp.open_connection_with("127.0.0.1", port, connect_opts(client_tls(&p.ca), ""), 1024).await.unwrap();
        w.close();
        let e = connect_err(&lp, port, client_tls(&other_ca), "").await;
        assert!(e.to_string().contains("unknown CA"), "{e}");

        // The explicit opt-out accepts anything.
        let ssl = Rc::new(TlsConfig::client().dangerous_disable_verification().build().unwrap());
        let (_r, w) = lp.open_connection_with("127.0.0.1", port, connect_opts(ssl, "example.com"), 1024).await.unwrap();
        w.close();
        server.close();

        let server = tls_echo_server(&lp, server_tls(&expired)).await;
        let e = connect_err(&lp, port_of(&server), client_tls(&p.ca), "localhost").await;
        assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
        assert!(e.to_string().contains("expired"), "{e}");
        server.close();
    });
}

#[test]
fn protocol_version_mismatch_and_alpn() {
    let p = pki();
    run(move |lp| async move {
        // TLS 1.3-only server, TLS 1.2-only client.
        let ssl = TlsConfig::server(p.cert.pem.as_bytes(), p.cert.key.as_bytes())
            .minimum_version(TlsVersion::Tls13)
            .alpn_protocols(["http/1.1", "echo"])
            .build()
            .unwrap();
        let server = tls_echo_server(&lp, Rc::new(ssl)).await;
        let port = port_of(&server);
        let tls12 = TlsConfig::client()
            .root_certificates_pem(p.ca.pem.as_bytes())
            .unwrap()
            .maximum_version(TlsVersion::Tls12)
            .build()
            .unwrap();
        let e = connect_err(&lp, port, Rc::new(tls12), "localhost").await;
        assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
        assert!(e.to_string().contains("protocol version"), "{e}");

        let client = |alpn: &[&str]| -> Rc<dyn TlsContext> {
            Rc::new(
                TlsConfig::client()
                    .root_certificates_pem(p.ca.pem.as_bytes())
                    .unwrap()
                    .alpn_protocols(alpn)
                    .build()
                    .unwrap(),
            )
        };
        let (_r, w) = lp
            .open_connection_with("127.0.0.1", port, connect_opts(client(&["h2", "echo"]), "localhost"), 1024)
            .await
            .unwrap();
        assert_eq!(text(w.transport(), "alpn_protocol").as_deref(), Some("echo"));
        w.close();
        let e = connect_err(&lp, port, client(&["h2"]), "localhost").await;
        assert!(e.to_string().contains("ALPN"), "{e}");
        server.close();
    });
}

#[test]
fn client_certificates_required_and_checked() {
    let p = pki();
    let client_cert = p.ca.client("alice");
    let stranger = Ca::new("stranger CA").client("mallory");
    run(move |lp| async move {
        let ssl = TlsConfig::server(p.cert.pem.as_bytes(), p.cert.key.as_bytes())
            .client_auth_required(p.ca.pem.as_bytes())
            .build()
            .unwrap();
        let seen: Rc<RefCell<Option<ExtraInfo>>> = Rc::default();
        let s2 = seen.clone();
        let opts = ServerOptions { ssl: Some(Rc::new(ssl)), ..Default::default() };
        let server = lp
            .start_server(
                move |r, w| {
                    *s2.borrow_mut() = w.get_extra_info("peercert");
                    echo(r, w)
                },
                Some("127.0.0.1"),
                0,
                opts,
            )
            .await
            .unwrap();
        let port = port_of(&server);
        let with = |c: &Cert| -> Rc<dyn TlsContext> {
            Rc::new(
                TlsConfig::client()
                    .root_certificates_pem(p.ca.pem.as_bytes())
                    .unwrap()
                    .client_certificate_pem(c.pem.as_bytes(), c.key.as_bytes())
                    .build()
                    .unwrap(),
            )
        };
        let (mut r, w) = lp
            .open_connection_with("127.0.0.1", port, connect_opts(with(&client_cert), "localhost"), 1024)
            .await
            .unwrap();
        w.write(b"ping\n").unwrap();
        assert_eq!(r.readline().await.unwrap(), b"ping\n");
        match seen.borrow().clone() {
            Some(ExtraInfo::List(chain)) => assert_eq!(chain[0], ExtraInfo::Bytes(client_cert.der.clone())),
            other => panic!("server saw {other:?}"),
        }
        w.close();

        // Without a certificate, or with one from another CA: refused. In
        // TLS 1.3 the client learns it at its first read.
        for ssl in [client_tls(&p.ca), with(&stranger)] {
            let r = lp.open_connection_with("127.0.0.1", port, connect_opts(ssl, "localhost"), 1024).await;
            let e = match r {
                Err(e) => e,
                Ok((mut r, _w)) => r.read(10).await.expect_err("the server must refuse us"),
            };
            assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
            assert!(e.to_string().contains("the peer"), "{e}");
        }
        server.close();

        // Optional client authentication: a client without a certificate is
        // served too (and the server sees no peercert).
        let ssl = TlsConfig::server(p.cert.pem.as_bytes(), p.cert.key.as_bytes())
            .client_auth_optional(p.ca.pem.as_bytes())
            .build()
            .unwrap();
        let seen: Rc<RefCell<Vec<bool>>> = Rc::default();
        let s2 = seen.clone();
        let opts = ServerOptions { ssl: Some(Rc::new(ssl)), ..Default::default() };
        let server = lp
            .start_server(
                move |r, w| {
                    s2.borrow_mut().push(w.get_extra_info("peercert").is_some());
                    echo(r, w)
                },
                Some("127.0.0.1"),
                0,
                opts,
            )
            .await
            .unwrap();
        let port = port_of(&server);
        for ssl in [client_tls(&p.ca), with(&client_cert)] {
            let (mut r, w) =
                lp.open_connection_with("127.0.0.1", port, connect_opts(ssl, "localhost"), 1024).await.unwrap();
            w.write(b"hi\n").unwrap();
            assert_eq!(r.readline().await.unwrap(), b"hi\n");
            w.close();
        }
        assert_eq!(*seen.borrow(), [false, true]);
        server.close();
    });
}

#[test]
fn handshake_timeout_against_a_silent_peer() {
    let p = pki();
    run(move |lp| async move {
        // A plain TCP server that never says anything.
        let silent = lp.create_server(Rec::default, Some("127.0.0.1"), 0, ServerOptions::default()).await.unwrap();
        let mut opts = connect_opts(client_tls(&p.ca), "localhost");
        opts.ssl_handshake_timeout = Some(Duration::from_millis(200));
        let start = Instant::now();
        let e = lp.open_connection_with("127.0.0.1", port_of(&silent), opts, 1024).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("handshake"), "{e}");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5), "{took:?}");
        silent.close();

        // A TLS server whose client never speaks drops the connection.
        let opts = ServerOptions {
            ssl: Some(server_tls(&p.cert)),
            ssl_handshake_timeout: Some(Duration::from_millis(200)),
            ..Default::default()
        };
        let server = lp.create_server(Rec::default, Some("127.0.0.1"), 0, opts).await.unwrap();
        let (_t, rec) =
            lp.create_connection(Rec::default, "127.0.0.1", port_of(&server), ConnectOptions::default()).await.unwrap();
        let start = Instant::now();
        wait_until(|| rec.borrow().lost.is_some()).await;
        assert!(start.elapsed() >= Duration::from_millis(150), "{:?}", start.elapsed());
        assert!(rec.borrow().data.is_empty());
        server.close();
    });
}

#[test]
fn close_notify_is_eof_but_a_bare_fin_is_a_truncation() {
    let p = pki();
    run(move |lp| async move {
        // The server writes a greeting, then closes cleanly or aborts.
        let ssl = server_tls(&p.cert);
        let opts = ServerOptions { ssl: Some(ssl), ..Default::default() };
        let server = lp
            .start_server(
                |mut r, w| async move {
                    let cmd = r.readline().await?;
                    w.write(b"bye\n")?;
                    w.drain().await?;
                    if cmd == b"abort\n" {
                        anyloop::sleep(Duration::from_millis(50)).await;
                        w.transport().abort(); // TCP FIN, no close_notify
                    } else {
                        w.close();
                    }
                    Ok::<_, Error>(())
                },
                Some("127.0.0.1"),
                0,
                opts,
            )
            .await
            .unwrap();
        let port = port_of(&server);

        let (mut r, w) = lp
            .open_connection_with("127.0.0.1", port, connect_opts(client_tls(&p.ca), "localhost"), 1024)
            .await
            .unwrap();
        w.write(b"close\n").unwrap();
        assert_eq!(r.read_to_end().await.unwrap(), b"bye\n");
        assert!(r.exception().is_none());
        w.close();
        w.wait_closed().await.unwrap();

        let (mut r, w) = lp
            .open_connection_with("127.0.0.1", port, connect_opts(client_tls(&p.ca), "localhost"), 1024)
            .await
            .unwrap();
        w.write(b"abort\n").unwrap();
        assert_eq!(r.readline().await.unwrap(), b"bye\n");
        let e = r.read(10).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
        assert!(e.to_string().contains("close_notify"), "{e}");

        // At the protocol level: connection_lost(UnexpectedEof), no eof_received.
        let (t, rec) = lp
            .create_connection(Rec::default, "127.0.0.1", port, connect_opts(client_tls(&p.ca), "localhost"))
            .await
            .unwrap();
        t.write(b"abort\n").unwrap();
        wait_until(|| rec.borrow().lost.is_some()).await;
        let rec = rec.borrow();
        assert_eq!(rec.data, b"bye\n");
        assert!(!rec.eof);
        assert_eq!(rec.lost.as_ref().unwrap().as_ref().map(|e| e.kind()), Some(ErrorKind::UnexpectedEof));
        server.close();
    });
}

/// Keeps its side open after the peer's close_notify and never closes.
#[derive(Default)]
struct Lingerer;
impl BaseProtocol for Lingerer {}
impl Protocol for Lingerer {
    fn data_received(&mut self, _data: &[u8]) {}
    fn eof_received(&mut self) -> bool {
        true
    }
}

#[test]
fn close_waits_for_the_peers_close_notify_at_most_ssl_shutdown_timeout() {
    let p = pki();
    run(move |lp| async move {
        let opts = ServerOptions { ssl: Some(server_tls(&p.cert)), ..Default::default() };
        let server = lp.create_server(Lingerer::default, Some("127.0.0.1"), 0, opts).await.unwrap();
        let mut opts = connect_opts(client_tls(&p.ca), "localhost");
        opts.ssl_shutdown_timeout = Some(Duration::from_millis(300));
        let (t, rec) = lp.create_connection(Rec::default, "127.0.0.1", port_of(&server), opts).await.unwrap();
        let start = Instant::now();
        t.close();
        assert!(t.is_closing());
        wait_until(|| rec.borrow().lost.is_some()).await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(5), "{took:?}");
        let rec = rec.borrow();
        let e = rec.lost.as_ref().unwrap().as_ref().expect("a shutdown timeout is an error");
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("shutdown"), "{e}");
        server.close();
    });
}

/// The client side of the flow-control test: counts pause/resume.
#[derive(Default)]
struct FlowProbe {
    paused: Rc<Cell<bool>>,
    pauses: Rc<Cell<u32>>,
    resumes: Rc<Cell<u32>>,
}
impl BaseProtocol for FlowProbe {
    fn pause_writing(&mut self) {
        self.paused.set(true);
        self.pauses.set(self.pauses.get() + 1);
    }
    fn resume_writing(&mut self) {
        self.paused.set(false);
        self.resumes.set(self.resumes.get() + 1);
    }
}
impl Protocol for FlowProbe {
    fn data_received(&mut self, _data: &[u8]) {}
}

/// The server side: does not read for a while (pause_reading), then takes
/// everything.
struct SlowReader {
    transport: Option<Rc<dyn Transport>>,
    received: Rc<RefCell<Vec<u8>>>,
    during_pause: Rc<Cell<usize>>,
    paused: bool,
}
impl BaseProtocol for SlowReader {}
impl Protocol for SlowReader {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        t.pause_reading();
        self.paused = true;
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if self.paused {
            self.during_pause.set(self.during_pause.get() + data.len());
        }
        self.received.borrow_mut().extend_from_slice(data);
    }
}

#[test]
fn flow_control_with_a_slow_reader_bounds_the_sender() {
    let p = pki();
    run(move |lp| async move {
        let received: Rc<RefCell<Vec<u8>>> = Rc::default();
        let during_pause = Rc::new(Cell::new(0));
        let server_side: Rc<RefCell<Option<Rc<RefCell<SlowReader>>>>> = Rc::default();
        let (rc, dp, ss) = (received.clone(), during_pause.clone(), server_side.clone());
        let factory = Rc::new(move || {
            let (sp, p) = StreamProtocol::plain(SlowReader {
                transport: None,
                received: rc.clone(),
                during_pause: dp.clone(),
                paused: false,
            });
            *ss.borrow_mut() = Some(p);
            sp
        });
        let opts = ServerOptions { ssl: Some(server_tls(&p.cert)), ..Default::default() };
        let server = lp.create_server_with(factory, vec!["127.0.0.1".into()], Some(0), opts).await.unwrap();

        let probe = FlowProbe::default();
        let (paused, pauses, resumes) = (probe.paused.clone(), probe.pauses.clone(), probe.resumes.clone());
        let (t, _p) = lp
            .create_connection(
                move || probe,
                "127.0.0.1",
                port_of(&server),
                connect_opts(client_tls(&p.ca), "localhost"),
            )
            .await
            .unwrap();
        let high = 64 * 1024;
        t.set_write_buffer_limits(Some(high), None).unwrap();
        let chunk = 16 * 1024; // one TLS record of plaintext
        let record_overhead = 22; // TLS 1.3 AES-GCM: header, content type, tag
        let total = 64 * 1024 * 1024;
        let mut sent = Vec::with_capacity(total);
        let mut max_buffered = 0;
        // Write while not paused, until the slow reader stopped us once.
        let mut i = 0u32;
        while pauses.get() == 0 && sent.len() < total {
            let data: Vec<u8> = (0..chunk).map(|j| (i as usize * 31 + j) as u8).collect();
            i += 1;
            t.write(&data).unwrap();
            sent.extend_from_slice(&data);
            max_buffered = max_buffered.max(t.get_write_buffer_size());
            if sent.len() % (1 << 20) == 0 {
                anyloop::yield_now().await; // let the loop flush
            }
        }
        assert_eq!(pauses.get(), 1, "the sender was never paused after {} bytes", sent.len());
        assert!(paused.get());
        assert!(max_buffered <= high + chunk + record_overhead, "buffered {max_buffered} > high {high} + one record");
        // Nothing reached the paused reader.
        anyloop::sleep(Duration::from_millis(100)).await;
        assert_eq!(during_pause.get(), 0);
        assert!(t.get_write_buffer_size() > high, "the sender's buffer drained while the reader was paused");

        // The reader resumes: everything arrives, the sender resumes.
        let sr = server_side.borrow().clone().unwrap();
        sr.borrow_mut().paused = false;
        let st = sr.borrow().transport.clone().unwrap();
        st.resume_reading();
        wait_until(|| received.borrow().len() == sent.len()).await;
        assert!(*received.borrow() == sent, "the received bytes differ");
        assert_eq!(resumes.get(), 1);
        assert!(!paused.get());
        t.close();
        server.close();
    });
}

#[test]
fn start_tls_upgrades_a_plain_connection_both_sides() {
    let p = pki();
    run(move |lp| async move {
        // A STARTTLS server: plaintext greeting, then TLS on request.
        let server_ssl = server_tls(&p.cert);
        let server = lp
            .start_server(
                move |mut r, mut w| {
                    let ssl = server_ssl.clone();
                    async move {
                        w.write(b"220 ready\r\n")?;
                        assert_eq!(r.readline().await?, b"STARTTLS\r\n");
                        w.write(b"220 go ahead\r\n")?;
                        let opts = StartTlsOptions { server_side: true, ..Default::default() };
                        w.start_tls(&mut r, ssl, opts).await?;
                        assert_eq!(w.get_extra_info("ssl_version"), Some(ExtraInfo::Text("TLSv1.3".into())));
                        echo(r, w).await
                    }
                },
                Some("127.0.0.1"),
                0,
                ServerOptions::default(),
            )
            .await
            .unwrap();
        let (mut r, mut w) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let plain = w.transport().clone();
        assert_eq!(r.readline().await.unwrap(), b"220 ready\r\n");
        w.write(b"STARTTLS\r\n").unwrap();
        assert_eq!(r.readline().await.unwrap(), b"220 go ahead\r\n");
        let opts = StartTlsOptions { server_hostname: Some("localhost".into()), ..Default::default() };
        w.start_tls(&mut r, client_tls(&p.ca), opts).await.unwrap();
        assert!(!Rc::ptr_eq(w.transport(), &plain));
        assert!(w.get_extra_info("peercert").is_some());
        // The old transport is out of the game: it refuses writes, ignores
        // reading and protocol changes, and the TLS stream goes on.
        let e = plain.write(b"plaintext!").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidState);
        assert!(e.to_string().contains("start_tls"), "{e}");
        assert!(plain.write_eof().is_err());
        assert!(plain.set_write_buffer_limits(Some(1), None).is_err());
        plain.pause_reading();
        assert!(plain.is_reading());
        let before = plain.get_protocol();
        plain.set_protocol(StreamProtocol::plain(Rec::default()).0);
        assert!(plain.get_protocol().ptr_eq(&before));
        for i in 0..20 {
            let line = format!("secret line {i}\n");
            w.write(line.as_bytes()).unwrap();
            assert_eq!(r.readline().await.unwrap(), line.as_bytes());
        }
        w.write_eof().unwrap();
        assert_eq!(r.read(10).await.unwrap(), b"");
        w.close();
        w.wait_closed().await.unwrap();
        server.close();
        server.wait_closed().await.unwrap();
    });
}

/// Where the STARTTLS protocol leaves its raw transport and the bytes that
/// followed the line.
type Upgrade = Rc<RefCell<Option<(Rc<dyn Transport>, Vec<u8>)>>>;

/// A STARTTLS server protocol at the protocol level: whatever follows the
/// `STARTTLS\r\n` line in the same read is handed to `start_tls`.
struct Starttls {
    transport: Option<Rc<dyn Transport>>,
    buf: Vec<u8>,
    upgrade: Upgrade,
    tls_data: Rc<RefCell<Vec<u8>>>,
    upgraded: bool,
}
impl BaseProtocol for Starttls {}
impl Protocol for Starttls {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if self.upgraded {
            self.tls_data.borrow_mut().extend_from_slice(data);
            return;
        }
        self.buf.extend_from_slice(data);
        if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
            assert_eq!(&self.buf[..i], b"STARTTLS");
            let rest = self.buf.split_off(i + 2);
            let t = self.transport.take().unwrap();
            t.pause_reading(); // nothing more for us until the upgrade
            self.upgraded = true;
            *self.upgrade.borrow_mut() = Some((t, rest));
        }
    }
}

#[test]
fn start_tls_keeps_bytes_pipelined_after_the_upgrade_line() {
    let p = pki();
    run(move |lp| async move {
        let upgrade: Upgrade = Rc::default();
        let tls_data: Rc<RefCell<Vec<u8>>> = Rc::default();
        let protocol: Rc<RefCell<Option<StreamProtocol>>> = Rc::default();
        let (u2, d2, p2) = (upgrade.clone(), tls_data.clone(), protocol.clone());
        let factory = Rc::new(move || {
            let (sp, _) = StreamProtocol::plain(Starttls {
                transport: None,
                buf: Vec::new(),
                upgrade: u2.clone(),
                tls_data: d2.clone(),
                upgraded: false,
            });
            *p2.borrow_mut() = Some(sp.clone());
            sp
        });
        let server =
            lp.create_server_with(factory, vec!["127.0.0.1".into()], Some(0), ServerOptions::default()).await.unwrap();

        // The client sends the line and its ClientHello in one write: a
        // blocking std socket driven by a rustls client, off the loop.
        let port = port_of(&server);
        let ca = p.ca.pem.clone();
        let client = std::thread::spawn(move || -> Vec<u8> {
            use rustls::pki_types::pem::PemObject;
            use std::io::{Read, Write};
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            let config =
                rustls::ClientConfig::builder_with_provider(rustls::crypto::aws_lc_rs::default_provider().into())
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            let mut conn = rustls::ClientConnection::new(config.into(), "localhost".try_into().unwrap()).unwrap();
            let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut first = b"STARTTLS\r\n".to_vec();
            conn.write_tls(&mut first).unwrap(); // the ClientHello
            sock.write_all(&first).unwrap();
            let mut tls = rustls::Stream::new(&mut conn, &mut sock);
            tls.write_all(b"over TLS\n").unwrap();
            let mut reply = [0u8; 9];
            tls.read_exact(&mut reply).unwrap();
            conn.send_close_notify();
            let _ = conn.complete_io(&mut sock);
            reply.to_vec()
        });

        wait_until(|| upgrade.borrow().is_some()).await;
        let (raw, pipelined) = upgrade.borrow_mut().take().unwrap();
        assert!(!pipelined.is_empty(), "the ClientHello came with the STARTTLS line");
        let sp = protocol.borrow().clone().unwrap();
        let opts = StartTlsOptions { server_side: true, initial_data: pipelined, ..Default::default() };
        let tls = lp.start_tls(raw.clone(), sp, server_tls(&p.cert), opts).await.unwrap();
        assert!(!raw.get_protocol().ptr_eq(protocol.borrow().as_ref().unwrap())); // the raw transport carries TLS
        wait_until(|| tls_data.borrow().len() >= 9).await;
        assert_eq!(*tls_data.borrow(), b"over TLS\n");
        tls.write(b"answered\n").unwrap();
        let reply = anyloop::get_running_loop().unwrap().run_in_executor(move || client.join().unwrap()).await.unwrap();
        assert_eq!(reply, b"answered\n");
        tls.close();
        server.close();
    });
}

#[test]
fn unix_sockets_and_accepted_sockets_carry_tls() {
    let p = pki();
    run(move |lp| async move {
        let dir = anyloop_tests::pki::TempDir::new("tls-unix");
        let path = dir.path().join("s.sock").to_string_lossy().into_owned();
        let opts = ServerOptions { ssl: Some(server_tls(&p.cert)), ..Default::default() };
        let server = lp.start_unix_server(echo, &path, opts).await.unwrap();
        // Without a host, server_hostname is required.
        let e = lp
            .create_unix_connection(
                Rec::default,
                &path,
                ConnectOptions { ssl: Some(client_tls(&p.ca)), ..Default::default() },
            )
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("server_hostname"), "{e}");
        let (t, rec) =
            lp.create_unix_connection(Rec::default, &path, connect_opts(client_tls(&p.ca), "localhost")).await.unwrap();
        t.write(b"via unix").unwrap();
        wait_until(|| rec.borrow().data.len() >= 8).await;
        assert_eq!(rec.borrow().data, b"via unix");
        t.close();
        server.close();

        // connect_accepted_socket runs the server side.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ca = p.ca.pem.clone();
        let client = lp
            .create_task({
                let lp = lp.clone();
                async move {
                    let ssl = Rc::new(TlsConfig::client().root_certificates_pem(ca.as_bytes())?.build()?);
                    let (mut r, w) =
                        lp.open_connection_with("127.0.0.1", port, connect_opts(ssl, "127.0.0.1"), 1024).await?;
                    w.write(b"accepted\n")?;
                    let line = r.readline().await?;
                    w.close();
                    Ok::<_, Error>(line)
                }
            })
            .unwrap();
        let (sock, _) = lp.run_in_executor(move || listener.accept().unwrap()).await.unwrap();
        sock.set_nonblocking(true).unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(sock);
        let opts = ConnectOptions { ssl: Some(server_tls(&p.cert)), ..Default::default() };
        let (t, rec) = lp.connect_accepted_socket(Rec::default, fd, opts).await.unwrap();
        wait_until(|| rec.borrow().data.len() >= 9).await;
        t.write(&rec.borrow().data.clone()).unwrap();
        assert_eq!(client.await.unwrap().unwrap(), b"accepted\n");
        t.close();
    });
}

#[test]
fn tls_options_are_checked() {
    let p = pki();
    run(move |lp| async move {
        let plain = ConnectOptions { server_hostname: Some("x".into()), ..Default::default() };
        let e = lp.create_connection(Rec::default, "127.0.0.1", 9, plain).await.err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("only meaningful with ssl"), "{e}");
        let wrong_side = ServerOptions { ssl: Some(client_tls(&p.ca)), ..Default::default() };
        let e = lp.create_server(Rec::default, Some("127.0.0.1"), 0, wrong_side).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("client TLS configuration"), "{e}");
        let e = TlsConfig::server(b"not pem", p.cert.key.as_bytes()).build().unwrap_err();
        assert!(e.to_string().contains("server certificate"), "{e}");
        let e =
            TlsConfig::server(p.cert.pem.as_bytes(), Ca::new("x").server(&["a"]).key.as_bytes()).build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let e = TlsConfig::client().cipher_suites(["TLS_NOPE"]).build().unwrap_err();
        assert!(e.to_string().contains("unknown cipher suite"), "{e}");
        // A name that is no DNS name: refused before any byte is sent.
        let server = tls_echo_server(&lp, server_tls(&p.cert)).await;
        let e = connect_err(&lp, port_of(&server), client_tls(&p.ca), "not a host name!").await;
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("invalid server_hostname"), "{e}");
        server.close();
    });
}
