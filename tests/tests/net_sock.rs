//! `sock_*` on raw loopback sockets, DNS, and the default executor.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use anyloop::net::{Addr, AddrInfoHints, Family, SockAddr};
use anyloop::{ErrorKind, EventLoop, get_running_loop};
use anyloop_tests::{block_on, pattern};
use socket2::{Domain, Socket, Type};

const T: Duration = Duration::from_secs(20);

fn lp() -> EventLoop {
    anyloop::new_event_loop().unwrap()
}

fn nonblocking(domain: Domain, ty: Type) -> Socket {
    let s = Socket::new(domain, ty, None).unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

fn local(s: &Socket) -> SocketAddr {
    s.local_addr().unwrap().as_socket().unwrap()
}

#[test]
fn sock_connect_accept_sendall_recv() {
    let lp = lp();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let listener = nonblocking(Domain::IPV4, Type::STREAM);
        listener.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        listener.listen(8).unwrap();
        let port = local(&listener).port();
        let lfd = listener.as_raw_fd();

        // accept waits (nothing pending yet) while connect resolves a name.
        let l2 = lp.clone();
        let accept = lp.create_task(async move { l2.sock_accept(lfd).await }).unwrap();
        let client = nonblocking(Domain::IPV4, Type::STREAM);
        let cfd = client.as_raw_fd();
        lp.sock_connect(cfd, SockAddr::Host("127.0.0.1".into(), port)).await.unwrap();
        let (sfd, peer) = accept.await.unwrap().unwrap();
        // SAFETY: sock_accept hands the caller a new descriptor it owns.
        let server_side = unsafe { OwnedFd::from_raw_fd(sfd) };
        assert_eq!(peer, Addr::Ip(local(&client)));

        // 4 MiB: far more than the socket buffers, so sendall must wait.
        let data = pattern(4 * 1024 * 1024);
        let d2 = data.clone();
        let l2 = lp.clone();
        let sender = lp.create_task(async move { l2.sock_sendall(cfd, &d2).await }).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 100_000];
        while got.len() < data.len() {
            if got.len() % 2 == 0 {
                got.extend(lp.sock_recv(sfd, 65536).await.unwrap());
            } else {
                let n = lp.sock_recv_into(sfd, &mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
        }
        sender.await.unwrap().unwrap();
        assert!(got == data);
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(lp.sock_recv(sfd, 10).await.unwrap(), b"");
        drop(server_side);
    });
    lp.close().unwrap();
}

#[test]
fn sock_connect_refused_and_bad_fds() {
    let lp = lp();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        // A port nobody listens on: bind one, note it, close it.
        let port = {
            let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let c = nonblocking(Domain::IPV4, Type::STREAM);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let e = lp.sock_connect(c.as_raw_fd(), SockAddr::Ip(addr)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
        assert_eq!(lp.sock_recv(-1, 10).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        let e = lp.sock_sendall(1_000_000, b"x").await.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e:?}");
    });
    lp.close().unwrap();
}

#[test]
fn sock_sendto_recvfrom() {
    let lp = lp();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let a = nonblocking(Domain::IPV4, Type::DGRAM);
        let b = nonblocking(Domain::IPV4, Type::DGRAM);
        a.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        b.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        let (afd, bfd) = (a.as_raw_fd(), b.as_raw_fd());
        // The receive is waiting before anything is sent.
        let l2 = lp.clone();
        let recv = lp.create_task(async move { l2.sock_recvfrom(bfd, 2048).await }).unwrap();
        assert_eq!(lp.sock_sendto(afd, b"ping", local(&b)).await.unwrap(), 4);
        let (data, from) = recv.await.unwrap().unwrap();
        assert_eq!((data.as_slice(), from), (&b"ping"[..], local(&a)));
        lp.sock_sendto(bfd, b"pong!", local(&a)).await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = lp.sock_recvfrom_into(afd, &mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"pong!"[..], local(&b)));
    });
    lp.close().unwrap();
}

#[test]
fn getaddrinfo_and_getnameinfo_of_localhost() {
    let lp = lp();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let hints = AddrInfoHints { socktype: 1, ..Default::default() };
        let infos = lp.getaddrinfo(Some("localhost"), Some("80"), hints).await.unwrap();
        assert!(infos.iter().any(|i| i.addr == "127.0.0.1:80".parse().unwrap()), "{infos:?}");
        assert!(infos.iter().all(|i| i.socktype == 1));
        let v4 = AddrInfoHints { family: Family::Inet, ..Default::default() };
        let infos = lp.getaddrinfo(Some("127.0.0.1"), None, v4).await.unwrap();
        assert!(!infos.is_empty() && infos.iter().all(|i| i.addr.ip().to_string() == "127.0.0.1"), "{infos:?}");
        let numeric = libc::NI_NUMERICHOST | libc::NI_NUMERICSERV;
        let (h, s) = lp.getnameinfo("127.0.0.1:8080".parse().unwrap(), numeric).await.unwrap();
        assert_eq!((h.as_str(), s.as_str()), ("127.0.0.1", "8080"));
        let (h, _) = lp.getnameinfo("127.0.0.1:80".parse().unwrap(), 0).await.unwrap();
        assert_eq!(h, "localhost");
        let e = lp.getaddrinfo(Some("no-such-host.invalid"), None, AddrInfoHints::default()).await.unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Other), "{e:?}");
    });
    lp.close().unwrap();
}

#[test]
fn run_in_executor_results_and_panics() {
    let lp = lp();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let main = std::thread::current().id();
        let (n, tid) = lp.run_in_executor(|| (6 * 7, std::thread::current().id())).await.unwrap();
        assert_eq!(n, 42);
        assert_ne!(tid, main, "the job ran on the loop's thread");
        // Many jobs at once, each blocking a little: they overlap.
        let jobs: Vec<_> = (0..8u64)
            .map(|i| {
                lp.run_in_executor(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    i * i
                })
            })
            .collect();
        let t0 = std::time::Instant::now();
        let mut sum = 0;
        for j in jobs {
            sum += j.await.unwrap();
        }
        assert_eq!(sum, (0..8).map(|i| i * i).sum());
        assert!(t0.elapsed() < Duration::from_millis(350), "jobs did not run in parallel: {:?}", t0.elapsed());
        let e = lp.run_in_executor(|| -> u32 { panic!("boom in a thread") }).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Panic);
        assert!(e.to_string().contains("boom in a thread"), "{e}");
        // The pool survives a panicking job.
        assert_eq!(lp.run_in_executor(|| 1).await.unwrap(), 1);
        lp.shutdown_default_executor().await.unwrap();
        assert_eq!(lp.run_in_executor(|| 1).await.unwrap_err().kind(), ErrorKind::Closed);
        // Name resolution uses the executor too; literals do not.
        assert!(lp.getaddrinfo(Some("localhost"), None, AddrInfoHints::default()).await.is_err());
    });
    lp.close().unwrap();
}
