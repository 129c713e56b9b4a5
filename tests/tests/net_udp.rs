//! Datagram endpoints over loopback UDP.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use anyloop::net::{DatagramOptions, Family, SockAddr};
use anyloop::{
    BaseProtocol, DatagramProtocol, DatagramTransport, Error, ErrorKind, EventLoop, ExtraInfo, get_running_loop,
};
use anyloop_tests::block_on;

const T: Duration = Duration::from_secs(20);

#[derive(Default)]
struct Rec {
    transport: Option<Rc<dyn DatagramTransport>>,
    got: Vec<(Vec<u8>, SocketAddr)>,
    errors: Vec<ErrorKind>,
    lost: Option<Option<ErrorKind>>,
    echo: bool,
}

impl BaseProtocol for Rec {
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.lost = Some(exc.map(|e| e.kind()));
        self.transport = None;
    }
}

impl DatagramProtocol for Rec {
    fn connection_made(&mut self, t: Rc<dyn DatagramTransport>) {
        self.transport = Some(t);
    }
    fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
        self.got.push((data.to_vec(), addr));
        if self.echo
            && let Some(t) = &self.transport
        {
            t.sendto(data, Some(addr)).unwrap();
        }
    }
    fn error_received(&mut self, exc: Error) {
        self.errors.push(exc.kind());
    }
}

async fn until(lp: &EventLoop, mut cond: impl FnMut() -> bool) {
    while !cond() {
        let f = lp.create_future::<()>();
        let f2 = f.clone();
        lp.call_later(Duration::from_millis(2), move |_| {
            let _ = f2.set_result(());
        })
        .unwrap();
        f.await.unwrap();
    }
}

fn addr_of(t: &Rc<dyn DatagramTransport>, key: &str) -> SocketAddr {
    match t.get_extra_info(key) {
        Some(ExtraInfo::Addr(a)) => a,
        other => panic!("{key}: {other:?}"),
    }
}

fn fd_of(t: &Rc<dyn DatagramTransport>) -> i32 {
    match t.get_extra_info("socket") {
        Some(ExtraInfo::Fd(fd)) => fd as i32,
        other => panic!("socket: {other:?}"),
    }
}

async fn endpoint(opts: DatagramOptions, echo: bool) -> (Rc<dyn DatagramTransport>, Rc<RefCell<Rec>>) {
    let lp = get_running_loop().unwrap();
    lp.create_datagram_endpoint(move || Rec { echo, ..Default::default() }, opts).await.unwrap()
}

fn loopback() -> Option<SockAddr> {
    Some(SockAddr::Ip("127.0.0.1:0".parse().unwrap()))
}

#[test]
fn udp_echo_between_two_endpoints() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let (st, sp) = endpoint(DatagramOptions { local_addr: loopback(), ..Default::default() }, true).await;
        let server = addr_of(&st, "sockname");
        assert!(st.get_extra_info("peername").is_none());
        let (ct, cp) =
            endpoint(DatagramOptions { remote_addr: Some(SockAddr::Ip(server)), ..Default::default() }, false).await;
        assert_eq!(addr_of(&ct, "peername"), server);
        let me = addr_of(&ct, "sockname");
        for i in 0..50u8 {
            ct.sendto(&[i; 100], None).unwrap();
        }
        ct.sendto(b"", None).unwrap(); // an empty datagram is a datagram
        until(&lp, || cp.borrow().got.len() == 51).await;
        assert_eq!(sp.borrow().got.len(), 51);
        for (i, (d, from)) in cp.borrow().got.iter().take(50).enumerate() {
            assert_eq!((d.as_slice(), *from), (&[i as u8; 100][..], server));
        }
        assert!(sp.borrow().got.iter().all(|(_, from)| *from == me));
        assert_eq!(ct.sendto(b"x", Some(me)).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(st.sendto(b"x", None).unwrap_err().kind(), ErrorKind::InvalidInput);
        ct.close();
        st.abort();
        assert!(ct.is_closing());
        assert_eq!(ct.sendto(b"x", None).unwrap_err().kind(), ErrorKind::InvalidState);
        until(&lp, || cp.borrow().lost.is_some() && sp.borrow().lost.is_some()).await;
        assert_eq!(cp.borrow().lost, Some(None));
    });
    lp.close().unwrap();
}

#[test]
fn icmp_port_unreachable_reaches_error_received() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        // A UDP port with nobody behind it.
        let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let (ct, cp) =
            endpoint(DatagramOptions { remote_addr: Some(SockAddr::Ip(dead)), ..Default::default() }, false).await;
        ct.sendto(b"anyone?", None).unwrap();
        until(&lp, || !cp.borrow().errors.is_empty()).await;
        assert_eq!(cp.borrow().errors[0], ErrorKind::ConnectionRefused);
        // The endpoint stays open and usable.
        assert!(!ct.is_closing());
        ct.sendto(b"still here", None).unwrap();
        until(&lp, || cp.borrow().errors.len() >= 2).await;
        ct.close();
        until(&lp, || cp.borrow().lost.is_some()).await;
    });
    lp.close().unwrap();
}

fn sockopt(fd: i32, level: i32, name: i32) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid for getsockopt's writes.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut libc::c_int).cast(), &mut len) };
    assert_eq!(rc, 0);
    v
}

#[test]
fn allow_broadcast_and_reuse_port_are_set() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let (a, _) =
            endpoint(DatagramOptions { local_addr: loopback(), allow_broadcast: true, ..Default::default() }, false)
                .await;
        assert_eq!(sockopt(fd_of(&a), libc::SOL_SOCKET, libc::SO_BROADCAST), 1);
        let (b, _) = endpoint(DatagramOptions { local_addr: loopback(), ..Default::default() }, false).await;
        assert_eq!(sockopt(fd_of(&b), libc::SOL_SOCKET, libc::SO_BROADCAST), 0);
        // Two endpoints on one port with SO_REUSEPORT.
        let (c, _) =
            endpoint(DatagramOptions { local_addr: loopback(), reuse_port: true, ..Default::default() }, false).await;
        let port = addr_of(&c, "sockname");
        let (d, _) = endpoint(
            DatagramOptions { local_addr: Some(SockAddr::Ip(port)), reuse_port: true, ..Default::default() },
            false,
        )
        .await;
        assert_eq!(addr_of(&d, "sockname"), port);
        assert_eq!(sockopt(fd_of(&d), libc::SOL_SOCKET, libc::SO_REUSEPORT), 1);
        // An endpoint with neither address needs a family.
        let lp = get_running_loop().unwrap();
        let e = lp.create_datagram_endpoint(Rec::default, DatagramOptions::default()).await.err();
        assert_eq!(e.map(|e| e.kind()), Some(ErrorKind::InvalidInput));
        let (e6, _) = endpoint(DatagramOptions { family: Family::Inet6, ..Default::default() }, false).await;
        assert!(addr_of(&e6, "sockname").is_ipv6());
        for t in [a, b, c, d, e6] {
            t.close();
        }
    });
    lp.close().unwrap();
}

#[test]
fn endpoint_on_an_existing_socket() {
    use std::os::fd::IntoRawFd;
    let lp = anyloop::new_event_loop().unwrap();
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let mine = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let my_addr = mine.local_addr().unwrap();
    let fd = mine.into_raw_fd();
    block_on(&lp, T, async move {
        let lp = get_running_loop().unwrap();
        let opts = DatagramOptions { sock: Some(fd), ..Default::default() };
        let (t, p) = lp.create_datagram_endpoint(Rec::default, opts).await.map_err(|e| e.to_string()).unwrap();
        assert_eq!(addr_of(&t, "sockname"), my_addr);
        peer.send_to(b"to an adopted socket", my_addr).unwrap();
        until(&lp, || !p.borrow().got.is_empty()).await;
        assert_eq!(p.borrow().got[0], (b"to an adopted socket".to_vec(), peer_addr));
        // Options that would change the socket are refused with sock.
        let opts = DatagramOptions { sock: Some(fd), allow_broadcast: true, ..Default::default() };
        let e = lp.create_datagram_endpoint(Rec::default, opts).await.err().map(|e| e.kind());
        assert_eq!(e, Some(ErrorKind::InvalidInput));
        t.close();
    });
    lp.close().unwrap();
}
