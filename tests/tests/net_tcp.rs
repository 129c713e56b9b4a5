//! TCP transports, servers and create_connection on the native host, over
//! real loopback sockets.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use anyloop::net::{Addr, ConnectOptions, Server, ServerOptions};
use anyloop::{ErrorKind, EventLoop, ExtraInfo, StreamProtocol, get_running_loop};
use anyloop_tests::sleep_ms;
use anyloop_tests::{Ev, Recorder, Shared, block_on, pattern};

const T: Duration = Duration::from_secs(20);

fn lp() -> EventLoop {
    anyloop::new_event_loop().unwrap()
}

/// A server whose per-connection recorders are collected in the returned list.
async fn recording_server(echo: bool, opts: ServerOptions) -> (Server, SocketAddr, Rc<RefCell<Vec<Shared>>>) {
    let lp = get_running_loop().unwrap();
    let list: Rc<RefCell<Vec<Shared>>> = Rc::default();
    let l2 = list.clone();
    let factory = Rc::new(move || {
        let lp = get_running_loop().unwrap();
        let r = if echo { Recorder::echo(&lp) } else { Recorder::new(&lp) };
        let (sp, rc) = StreamProtocol::plain(r);
        l2.borrow_mut().push(rc);
        sp
    });
    let server = lp.create_server_with(factory, vec!["127.0.0.1".into()], Some(0), opts).await.unwrap();
    let Some(Addr::Ip(addr)) = server.sockets().first().cloned() else { panic!("no address") };
    (server, addr, list)
}

async fn connect(addr: SocketAddr, r: Recorder) -> Shared {
    let lp = get_running_loop().unwrap();
    let (_t, p) = lp.create_connection(move || r, "127.0.0.1", addr.port(), ConnectOptions::default()).await.unwrap();
    p
}

async fn eof(p: &Shared) {
    let f = p.borrow().eof.clone();
    f.await.unwrap()
}

async fn lost(p: &Shared) -> Option<anyloop::Error> {
    let f = p.borrow().lost.clone();
    f.await.unwrap()
}

#[test]
fn echo_round_trip_with_extra_info() {
    let lp = lp();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let (server, addr, conns) = recording_server(true, ServerOptions::default()).await;
        assert!(server.is_serving());
        let c = connect(addr, Recorder::new(&lp)).await;
        let t = c.borrow().transport.clone().unwrap();
        assert_eq!(t.peername(), Some(addr));
        let local = t.sockname().unwrap();
        assert!(matches!(t.get_extra_info("socket"), Some(ExtraInfo::Fd(fd)) if fd >= 0));
        assert_eq!(t.get_write_buffer_limits(), (16 * 1024, 64 * 1024));
        t.write(b"hello ").unwrap();
        t.writelines(&[b"wor", b"", b"ld"]).unwrap();
        while c.borrow().data.len() < 11 {
            sleep_ms(5).await;
        }
        assert_eq!(c.borrow().data, b"hello world");
        // The server side sees the client's address as its peer.
        let s = conns.borrow()[0].clone();
        assert_eq!(s.borrow().transport.as_ref().unwrap().peername(), Some(local));
        t.close();
        assert!(t.is_closing());
        assert_eq!(t.write(b"x").unwrap_err().kind(), ErrorKind::InvalidState);
        assert!(lost(&c).await.is_none());
        assert!(lost(&s).await.is_none());
        assert_eq!(c.borrow().events, vec![Ev::Made, Ev::Data(11), Ev::Lost(None)]);
        assert_eq!(s.borrow().events, vec![Ev::Made, Ev::Data(11), Ev::Eof, Ev::Lost(None)]);
        server.close();
        server.wait_closed().await.unwrap();
        assert!(server.sockets().is_empty());
    });
    lp.close().unwrap();
}

#[test]
fn many_concurrent_connections() {
    const N: usize = 200;
    let lp = lp();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let (server, addr, conns) = recording_server(true, ServerOptions::default()).await;
        let mut tasks = Vec::new();
        for i in 0..N {
            let lp2 = lp.clone();
            tasks.push(
                lp.create_task(async move {
                    let c = connect(addr, Recorder::new(&lp2)).await;
                    let msg = format!("message number {i}").into_bytes();
                    let t = c.borrow().transport.clone().unwrap();
                    t.write(&msg).unwrap();
                    t.write_eof().unwrap();
                    eof(&c).await;
                    assert_eq!(c.borrow().data, msg);
                    t.close();
                    lost(&c).await;
                })
                .unwrap(),
            );
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(conns.borrow().len(), N);
        server.close();
        server.wait_closed().await.unwrap();
    });
    lp.close().unwrap();
}

#[test]
fn half_close_both_ways() {
    let lp = lp();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let (server, addr, conns) = recording_server(false, ServerOptions::default()).await;
        let mut r = Recorder::new(&lp);
        r.keep_open_on_eof = true;
        let c = connect(addr, r).await;
        let t = c.borrow().transport.clone().unwrap();
        assert!(t.can_write_eof());
        t.write(b"request").unwrap();
        t.write_eof().unwrap();
        assert_eq!(t.write(b"more").unwrap_err().kind(), ErrorKind::InvalidState);
        while conns.borrow().is_empty() {
            sleep_ms(2).await;
        }
        let s = conns.borrow()[0].clone();
        s.borrow_mut().keep_open_on_eof = true;
        eof(&s).await;
        assert_eq!(s.borrow().data, b"request");
        // The server still writes after the client's EOF.
        let st = s.borrow().transport.clone().unwrap();
        st.write(b"response").unwrap();
        st.write_eof().unwrap();
        eof(&c).await;
        assert_eq!(c.borrow().data, b"response");
        t.close();
        st.close();
        lost(&c).await;
        lost(&s).await;
        assert_eq!(c.borrow().events, vec![Ev::Made, Ev::Data(8), Ev::Eof, Ev::Lost(None)]);
        server.close();
    });
    lp.close().unwrap();
}

#[test]
fn ten_mib_each_way_byte_for_byte() {
    let lp = lp();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let (server, addr, _conns) = recording_server(true, ServerOptions::default()).await;
        let c = connect(addr, Recorder::new(&lp)).await;
        let t = c.borrow().transport.clone().unwrap();
        let data = pattern(10 * 1024 * 1024);
        // One big write: most of it is buffered, pause_writing fires.
        t.write(&data).unwrap();
        t.write_eof().unwrap();
        eof(&c).await;
        assert!(c.borrow().data == data, "echoed data differs");
        let ev = c.borrow().events.clone();
        assert!(ev.contains(&Ev::Pause) && ev.contains(&Ev::Resume), "{ev:?}");
        t.close();
        lost(&c).await;
        server.close();
        server.wait_closed().await.unwrap();
    });
    lp.close().unwrap();
}

#[test]
fn writes_from_a_std_peer_arrive_in_order() {
    // The loop's server against a blocking std client in another thread.
    let lp = lp();
    let (server, addr, conns) = block_on(&lp, T, recording_server(true, ServerOptions::default()));
    let data = pattern(3 * 1024 * 1024 + 17);
    let d2 = data.clone();
    let th = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut r = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            got
        });
        s.write_all(&d2).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        reader.join().unwrap()
    });
    block_on(&lp, T, async move {
        while conns.borrow().is_empty() {
            sleep_ms(2).await;
        }
        let s = conns.borrow()[0].clone();
        lost(&s).await;
    });
    assert!(th.join().unwrap() == data);
    server.close();
    lp.close().unwrap();
}
