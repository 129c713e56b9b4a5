//! No descriptor and no thread outlives the loop: a tour of the networking
//! API — servers, connections (won, refused, raced), Unix sockets, UDP,
//! sock_*, sendfile, DNS, the executor — with some things deliberately left
//! open when the loop closes. Counts /proc/self/fd and /proc/self/task.
//!
//! Its own test binary, so no parallel test opens or closes anything.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyloop::net::{Addr, AddrInfoHints, ConnectOptions, DatagramOptions, ServerOptions, SockAddr};
use anyloop::{BaseProtocol, DatagramProtocol, StreamProtocol, get_running_loop};
use anyloop_tests::sleep_ms;
use anyloop_tests::{Recorder, block_on, open_fds, pattern};

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

struct Udp;
impl BaseProtocol for Udp {}
impl DatagramProtocol for Udp {
    fn datagram_received(&mut self, _: &[u8], _: SocketAddr) {}
}

async fn tour() -> Box<dyn std::any::Any> {
    let lp = get_running_loop().unwrap();
    let rec = || Recorder::echo(&get_running_loop().unwrap());
    // TCP: a server, a few connections closed, one left open.
    let server = lp.create_server(rec, Some("127.0.0.1"), 0, ServerOptions::default()).await.unwrap();
    let Some(Addr::Ip(addr)) = server.sockets().first().cloned() else { panic!() };
    let mut open = Vec::new();
    for i in 0..5 {
        let (t, p) = lp.create_connection(rec, "127.0.0.1", addr.port(), ConnectOptions::default()).await.unwrap();
        t.write(&pattern(100_000)).unwrap();
        if i < 4 {
            t.close();
            let lost = p.borrow().lost.clone();
            lost.await.unwrap();
        } else {
            open.push((t, p)); // still open when the loop closes
        }
    }
    // Refused, and a race whose loser is still connecting when the winner wins.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert!(lp.create_connection(rec, "127.0.0.1", dead_port, ConnectOptions::default()).await.is_err());
    let hang = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    hang.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    hang.listen(0).unwrap();
    let hang_addr = hang.local_addr().unwrap().as_socket().unwrap();
    let mut fill = Vec::new();
    while let Ok(c) = std::net::TcpStream::connect_timeout(&hang_addr, Duration::from_millis(100)) {
        fill.push(c);
    }
    let live = std::net::TcpListener::bind(format!("127.0.0.3:{}", hang_addr.port())).unwrap();
    let opts = ConnectOptions { happy_eyeballs_delay: Some(Duration::from_millis(50)), ..Default::default() };
    let (sp, _) = StreamProtocol::plain(rec());
    let live_addr = live.local_addr().unwrap();
    let t = anyloop::host::net::connect::create_connection_to(&lp, sp, &[hang_addr, live_addr], opts).await.unwrap();
    t.abort();
    drop((fill, hang, live));
    // Unix, left open too.
    let path = std::env::temp_dir().join(format!("anyloop-leaks-{}.sock", std::process::id()));
    let userver = lp.create_unix_server(rec, &path.to_string_lossy(), ServerOptions::default()).await.unwrap();
    let (ut, _) = lp.create_unix_connection(rec, &path.to_string_lossy(), Default::default()).await.unwrap();
    ut.write(b"hi").unwrap();
    // UDP.
    let (u1, _) = lp
        .create_datagram_endpoint(
            || Udp,
            DatagramOptions { local_addr: Some(SockAddr::Ip("127.0.0.1:0".parse().unwrap())), ..Default::default() },
        )
        .await
        .unwrap();
    u1.sendto(b"x", Some("127.0.0.1:9".parse().unwrap())).unwrap();
    u1.close();
    let (_u2, _) = lp
        .create_datagram_endpoint(
            || Udp,
            DatagramOptions { remote_addr: Some(SockAddr::Ip(addr)), ..Default::default() },
        )
        .await
        .unwrap();
    // sock_* and sendfile through a raw socket.
    let raw = std::net::TcpStream::connect(addr).unwrap();
    raw.set_nonblocking(true).unwrap();
    let file_path = std::env::temp_dir().join(format!("anyloop-leaks-{}.bin", std::process::id()));
    std::fs::write(&file_path, pattern(300_000)).unwrap();
    let file = std::fs::File::open(&file_path).unwrap();
    lp.sock_sendfile(raw.as_raw_fd(), file.as_raw_fd(), 0, None, true).await.unwrap();
    lp.sock_sendall(raw.as_raw_fd(), b"tail").await.unwrap();
    let _ = lp.sock_recv(raw.as_raw_fd(), 1000).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let c = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (fd, _) = lp.sock_accept(listener.as_raw_fd()).await.unwrap();
    // SAFETY: sock_accept hands over a descriptor the caller owns.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    drop((c, listener, raw, file));
    let _ = std::fs::remove_file(&file_path);
    // DNS and the executor.
    lp.getaddrinfo(Some("localhost"), Some("80"), AddrInfoHints::default()).await.unwrap();
    lp.run_in_executor(|| std::thread::sleep(Duration::from_millis(10))).await.unwrap();
    sleep_ms(20).await;
    // Left running when the loop closes: two servers, a TCP and a Unix
    // connection, a UDP endpoint.
    Box::new((server, userver, open, ut, _u2))
}

#[test]
fn nothing_outlives_the_loop() {
    // The first loop may initialise process-wide things (none expected);
    // count after a warm-up loop anyway.
    anyloop::new_event_loop().unwrap().close().unwrap();
    let fds0 = open_fds();
    let threads0 = threads();
    let lp = anyloop::new_event_loop().unwrap();
    let with_loop = open_fds();
    let kept = block_on(&lp, Duration::from_secs(30), tour());
    let during = open_fds();
    assert!(during > fds0 + 5, "the tour left nothing open to check: {during} vs {fds0}");
    lp.close().unwrap();
    // Closing released the descriptors of what was still open.
    assert_eq!(open_fds(), with_loop, "only the loop's own selector and waker remain");
    drop(kept);
    drop(lp);
    assert_eq!(open_fds(), fds0, "descriptors leaked");
    let t0 = Instant::now();
    while threads() > threads0 && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(threads(), threads0, "executor threads outlived the loop");
}
