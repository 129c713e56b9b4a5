//! Servers (close, wait_closed, serve_forever, start_serving, reuse_port,
//! several hosts), Happy Eyeballs, Unix and abstract sockets,
//! connect_accepted_socket.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyloop::net::{Addr, ConnectOptions, Server, ServerOptions};
use anyloop::{ErrorKind, ExtraInfo, StreamProtocol, Transport, get_running_loop};
use anyloop_tests::sleep_ms;
use anyloop_tests::{Recorder, Shared, block_on};

const T: Duration = Duration::from_secs(30);

type Conns = Rc<RefCell<Vec<Shared>>>;

fn echo_factory(list: Conns) -> anyloop::backend::StreamProtocolFactory {
    Rc::new(move || {
        let (sp, rc) = StreamProtocol::plain(Recorder::echo(&get_running_loop().unwrap()));
        list.borrow_mut().push(rc);
        sp
    })
}

fn ip(server: &Server) -> SocketAddr {
    match server.sockets().first() {
        Some(Addr::Ip(a)) => *a,
        other => panic!("{other:?}"),
    }
}

async fn client(port: u16) -> Result<(Rc<dyn Transport>, Shared), anyloop::Error> {
    let lp = get_running_loop().unwrap();
    lp.create_connection(|| Recorder::new(&get_running_loop().unwrap()), "127.0.0.1", port, ConnectOptions::default())
        .await
}

async fn roundtrip(t: &Rc<dyn Transport>, p: &Shared, msg: &[u8]) {
    let before = p.borrow().data.len();
    t.write(msg).unwrap();
    while p.borrow().data.len() < before + msg.len() {
        sleep_ms(1).await;
    }
    assert_eq!(&p.borrow().data[before..], msg);
}

#[test]
fn close_with_clients_connected_then_wait_closed() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let conns = Rc::default();
        let server = lp
            .create_server_with(echo_factory(conns), vec!["127.0.0.1".into()], Some(0), ServerOptions::default())
            .await
            .unwrap();
        let port = ip(&server).port();
        let (t1, p1) = client(port).await.unwrap();
        let (t2, p2) = client(port).await.unwrap();
        roundtrip(&t1, &p1, b"one").await;
        server.close();
        assert!(!server.is_serving());
        assert!(server.sockets().is_empty());
        // New connections are refused; the existing ones still work.
        assert_eq!(client(port).await.err().map(|e| e.kind()), Some(ErrorKind::ConnectionRefused));
        roundtrip(&t2, &p2, b"two").await;
        // wait_closed waits for the connections (asyncio 3.12+).
        let s2 = server.clone();
        let waiting = lp.create_task(async move { s2.wait_closed().await }).unwrap();
        sleep_ms(50).await;
        assert!(!waiting.done());
        t1.close();
        sleep_ms(20).await;
        assert!(!waiting.done());
        // close_clients closes what is left.
        server.close_clients();
        waiting.await.unwrap().unwrap();
        let lost = p2.borrow().lost.clone();
        lost.await.unwrap();
        assert!(t2.is_closing());
        assert_eq!(server.start_serving().unwrap_err().kind(), ErrorKind::InvalidState);
    });
    lp.close().unwrap();
}

#[test]
fn serve_forever_cancelled_closes_the_server() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let opts = ServerOptions { start_serving: false, ..Default::default() };
        let server =
            lp.create_server_with(echo_factory(Rc::default()), vec!["127.0.0.1".into()], Some(0), opts).await.unwrap();
        let port = ip(&server).port();
        assert!(!server.is_serving());
        // Bound but not listening: refused.
        assert_eq!(client(port).await.err().map(|e| e.kind()), Some(ErrorKind::ConnectionRefused));
        let s2 = server.clone();
        let forever = lp.create_task(async move { s2.serve_forever().await }).unwrap();
        sleep_ms(10).await;
        assert!(server.is_serving());
        let (t, p) = client(port).await.unwrap();
        roundtrip(&t, &p, b"hello").await;
        forever.cancel(None);
        sleep_ms(10).await;
        assert!(forever.cancelled());
        assert!(!server.is_serving());
        assert_eq!(client(port).await.err().map(|e| e.kind()), Some(ErrorKind::ConnectionRefused));
        t.close();
        server.wait_closed().await.unwrap();
    });
    lp.close().unwrap();
}

#[test]
fn reuse_port_lets_two_servers_share_a_port() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let c1: Conns = Rc::default();
        let c2: Conns = Rc::default();
        let opts = ServerOptions { reuse_port: true, ..Default::default() };
        let s1 = lp
            .create_server_with(echo_factory(c1.clone()), vec!["127.0.0.1".into()], Some(0), opts.clone())
            .await
            .unwrap();
        let port = ip(&s1).port();
        let s2 =
            lp.create_server_with(echo_factory(c2.clone()), vec!["127.0.0.1".into()], Some(port), opts).await.unwrap();
        assert_eq!(ip(&s2).port(), port);
        // Without reuse_port the port is taken.
        let e = lp
            .create_server_with(
                echo_factory(Rc::default()),
                vec!["127.0.0.1".into()],
                Some(port),
                ServerOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse);
        let mut clients = Vec::new();
        for _ in 0..40 {
            let (t, p) = client(port).await.unwrap();
            roundtrip(&t, &p, b"x").await;
            clients.push(t);
        }
        let (n1, n2) = (c1.borrow().len(), c2.borrow().len());
        assert_eq!(n1 + n2, 40);
        assert!(n1 > 0 && n2 > 0, "the kernel sent every connection to one server: {n1}/{n2}");
        for t in clients {
            t.close();
        }
        s1.close();
        s2.close();
    });
    lp.close().unwrap();
}

#[test]
fn servers_on_several_hosts_and_all_interfaces() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let s = lp
            .create_server_with(
                echo_factory(Rc::default()),
                vec!["127.0.0.1".into(), "::1".into()],
                Some(0),
                ServerOptions::default(),
            )
            .await
            .unwrap();
        let addrs = s.sockets();
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        assert_eq!(s.fds().len(), 2);
        for a in &addrs {
            let Addr::Ip(a) = a else { panic!() };
            assert!(a.ip().is_loopback());
            let (t, p) = lp
                .create_connection(
                    || Recorder::new(&get_running_loop().unwrap()),
                    &a.ip().to_string(),
                    a.port(),
                    Default::default(),
                )
                .await
                .unwrap();
            roundtrip(&t, &p, b"ping").await;
            t.close();
        }
        s.close();
        // No host: every interface, one socket per family. Only loopback is contacted.
        let all = lp
            .create_server(|| Recorder::new(&get_running_loop().unwrap()), None, 0, ServerOptions::default())
            .await
            .unwrap();
        let fams: Vec<bool> = all.sockets().iter().map(|a| matches!(a, Addr::Ip(a) if a.is_ipv6())).collect();
        assert!(fams.contains(&false), "{:?}", all.sockets());
        let port = match &all.sockets()[0] {
            Addr::Ip(a) => a.port(),
            _ => panic!(),
        };
        let (t, _) = client(port).await.unwrap();
        t.close();
        all.close();
    });
    lp.close().unwrap();
}

/// A listener nobody accepts from, with a full backlog: SYNs to it are
/// dropped, so connecting hangs — a "dead" address on loopback.
fn dead_listener(addr: &str) -> (socket2::Socket, Vec<std::net::TcpStream>) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&addr.parse::<SocketAddr>().unwrap().into()).unwrap();
    s.listen(0).unwrap();
    let target = s.local_addr().unwrap().as_socket().unwrap();
    let mut fill = Vec::new();
    while let Ok(c) = std::net::TcpStream::connect_timeout(&target, Duration::from_millis(200)) {
        fill.push(c);
        assert!(fill.len() < 64, "the backlog never filled");
    }
    (s, fill)
}

#[test]
fn happy_eyeballs_skips_a_dead_address_after_the_delay() {
    let (dead, _fill) = dead_listener("127.0.0.2:0");
    let port = dead.local_addr().unwrap().as_socket().unwrap().port();
    let live_addr: SocketAddr = format!("127.0.0.3:{port}").parse().unwrap();
    let live = std::net::TcpListener::bind(live_addr).unwrap();
    let dead_addr: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let lp = anyloop::new_event_loop().unwrap();
    let delay = Duration::from_millis(300);
    let (took, peer) = block_on(&lp, T, async move {
        let lp = get_running_loop().unwrap();
        let opts = ConnectOptions { happy_eyeballs_delay: Some(delay), ..Default::default() };
        let (sp, _p) = StreamProtocol::plain(Recorder::new(&lp));
        let t0 = Instant::now();
        let t =
            anyloop::host::net::connect::create_connection_to(&lp, sp, &[dead_addr, live_addr], opts).await.unwrap();
        let took = t0.elapsed();
        let peer = t.peername();
        t.close();
        (took, peer)
    });
    assert_eq!(peer, Some(live_addr));
    assert!(took >= delay - Duration::from_millis(5), "connected before the delay: {took:?}");
    assert!(took < delay + Duration::from_millis(700), "took {took:?}");
    // Without Happy Eyeballs the dead address would hold the attempt.
    let opts = ConnectOptions::default();
    let r = block_on(&lp, Duration::from_secs(60), async move {
        let lp = get_running_loop().unwrap();
        let (sp, _p) = StreamProtocol::plain(Recorder::new(&lp));
        let l2 = lp.clone();
        let attempt = async move {
            anyloop::host::net::connect::create_connection_to(&l2, sp, &[dead_addr, live_addr], opts).await
        };
        let timeout = lp.create_future::<()>();
        let f2 = timeout.clone();
        lp.call_later(Duration::from_millis(800), move |_| {
            let _ = f2.set_result(());
        })
        .unwrap();
        let task = lp.create_task(attempt).unwrap();
        timeout.await.unwrap();
        let done = task.done();
        task.cancel(None);
        done
    });
    assert!(!r, "a sequential attempt got past the dead address within 800 ms");
    drop(live);
    lp.close().unwrap();
}

#[test]
fn unix_and_abstract_sockets() {
    let lp = anyloop::new_event_loop().unwrap();
    let path = std::env::temp_dir().join(format!("anyloop-test-{}.sock", std::process::id()));
    let p = path.to_string_lossy().into_owned();
    let abs = format!("\0anyloop-test-{}", std::process::id());
    block_on(&lp, T, async move {
        let lp = get_running_loop().unwrap();
        for name in [p.clone(), abs] {
            let server = lp
                .create_unix_server(|| Recorder::echo(&get_running_loop().unwrap()), &name, ServerOptions::default())
                .await
                .unwrap();
            assert_eq!(server.sockets(), vec![Addr::Unix(name.clone())]);
            let (t, pr) = lp
                .create_unix_connection(|| Recorder::new(&get_running_loop().unwrap()), &name, Default::default())
                .await
                .unwrap();
            assert_eq!(t.get_extra_info("peername"), Some(ExtraInfo::Path(name.clone())));
            roundtrip(&t, &pr, b"over a unix socket").await;
            t.write_eof().unwrap();
            let lost = pr.borrow().lost.clone();
            lost.await.unwrap();
            server.close();
            server.wait_closed().await.unwrap();
        }
        // The socket file was removed on close.
        assert!(!std::path::Path::new(&p).exists());
        let e = lp.create_unix_connection(|| Recorder::new(&get_running_loop().unwrap()), &p, Default::default()).await;
        assert!(matches!(e.err().map(|e| e.kind()), Some(ErrorKind::NotFound | ErrorKind::ConnectionRefused)));
    });
    lp.close().unwrap();
}

#[test]
fn connect_accepted_socket_wraps_a_std_connection() {
    let lp = anyloop::new_event_loop().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut s, b"from the peer").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut back).unwrap();
        back
    });
    let (s, _) = listener.accept().unwrap();
    let fd = s.into_raw_fd();
    block_on(&lp, T, async move {
        let lp = get_running_loop().unwrap();
        let (t, p) = lp
            .connect_accepted_socket(|| Recorder::echo(&get_running_loop().unwrap()), fd, Default::default())
            .await
            .unwrap();
        assert!(t.peername().is_some());
        let lost = p.borrow().lost.clone();
        lost.await.unwrap();
        assert_eq!(p.borrow().data, b"from the peer");
        let e =
            lp.connect_accepted_socket(|| Recorder::new(&get_running_loop().unwrap()), -1, Default::default()).await;
        assert_eq!(e.err().map(|e| e.kind()), Some(ErrorKind::InvalidInput));
    });
    assert_eq!(peer.join().unwrap(), b"from the peer");
    lp.close().unwrap();
}

#[test]
fn abort_clients_drops_every_connection() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let conns: Conns = Rc::default();
        let server = lp
            .create_server_with(
                echo_factory(conns.clone()),
                vec!["127.0.0.1".into()],
                Some(0),
                ServerOptions::default(),
            )
            .await
            .unwrap();
        let port = ip(&server).port();
        let mut clients = Vec::new();
        for _ in 0..3 {
            let (t, p) = client(port).await.unwrap();
            roundtrip(&t, &p, b"hi").await;
            clients.push((t, p));
        }
        server.close();
        server.abort_clients();
        server.wait_closed().await.unwrap();
        for s in conns.borrow().iter() {
            assert!(s.borrow().lost.done());
        }
        for (_, p) in &clients {
            let lost = p.borrow().lost.clone();
            lost.await.unwrap();
        }
    });
    lp.close().unwrap();
}

#[test]
fn failed_attempts_are_reported_one_or_all() {
    let lp = anyloop::new_event_loop().unwrap();
    // Two loopback addresses where nobody listens on the port.
    let port = std::net::TcpListener::bind("127.0.0.4:0").unwrap().local_addr().unwrap().port();
    let a: SocketAddr = format!("127.0.0.4:{port}").parse().unwrap();
    let b: SocketAddr = format!("127.0.0.5:{port}").parse().unwrap();
    block_on(&lp, T, async move {
        let lp = get_running_loop().unwrap();
        for (all_errors, delay) in [(false, None), (true, None), (true, Some(Duration::from_millis(50)))] {
            let opts = ConnectOptions { all_errors, happy_eyeballs_delay: delay, ..Default::default() };
            let (sp, _) = StreamProtocol::plain(Recorder::new(&lp));
            let e = anyloop::host::net::connect::create_connection_to(&lp, sp, &[a, b], opts).await.err().unwrap();
            let msg = e.to_string();
            assert!(msg.contains(&a.to_string()) && msg.contains(&b.to_string()), "{msg}");
            if all_errors {
                assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{msg}");
                assert!(msg.starts_with("create_connection failed"), "{msg}");
            } else {
                assert!(msg.starts_with("Multiple exceptions"), "{msg}");
            }
        }
        // Through name resolution, with Happy Eyeballs on: localhost works.
        let server = lp
            .create_server(
                || Recorder::echo(&get_running_loop().unwrap()),
                Some("127.0.0.1"),
                0,
                ServerOptions::default(),
            )
            .await
            .unwrap();
        let opts = ConnectOptions { happy_eyeballs_delay: Some(Duration::from_millis(250)), ..Default::default() };
        let (t, p) = lp
            .create_connection(|| Recorder::new(&get_running_loop().unwrap()), "localhost", ip(&server).port(), opts)
            .await
            .unwrap();
        roundtrip(&t, &p, b"via localhost").await;
        t.close();
        server.close();
    });
    lp.close().unwrap();
}
