//! `sock_sendfile` and `loop.sendfile`, through sendfile(2) and through the
//! read-and-send fallback, with the received bytes checked.
//!
//! The fallback is forced honestly: Linux's sendfile(2) refuses a socket
//! with `O_APPEND` set (`EINVAL`), while plain sends to it work.

use std::fs::File;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Duration;

use anyloop::net::{Addr, ConnectOptions, ServerOptions};
use anyloop::{ErrorKind, ExtraInfo, StreamProtocol, get_running_loop};
use anyloop_tests::{Recorder, Shared, block_on, pattern};

const T: Duration = Duration::from_secs(30);

struct TempFile(std::path::PathBuf, File);

impl TempFile {
    fn new(tag: &str, data: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("anyloop-sendfile-{}-{tag}", std::process::id()));
        File::create(&path).unwrap().write_all(data).unwrap();
        let f = File::open(&path).unwrap();
        TempFile(path, f)
    }
    fn fd(&self) -> i32 {
        self.1.as_raw_fd()
    }
    fn position(&self) -> i64 {
        // SAFETY: lseek on our own open file.
        unsafe { libc::lseek(self.fd(), 0, libc::SEEK_CUR) }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn set_append(fd: i32) {
    // SAFETY: fcntl on a socket we own; only the status flags change.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        assert!(fl >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, fl | libc::O_APPEND), 0);
    }
}

/// A connected pair: (the loop's raw client fd, a std reader thread's result).
fn reader(listener: std::net::TcpListener) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut s, &mut v).unwrap();
        v
    })
}

fn raw_client(addr: SocketAddr) -> OwnedFd {
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nonblocking(true).unwrap();
    OwnedFd::from(s)
}

#[test]
fn sock_sendfile_zero_copy_and_fallback() {
    let data = pattern(3 * 1024 * 1024 + 5);
    let file = TempFile::new("sock", &data);
    let lp = anyloop::new_event_loop().unwrap();
    for (mode, offset, count) in [("native", 1000u64, None), ("fallback", 7, Some(2_000_000u64))] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let th = reader(listener);
        let sock = raw_client(addr);
        let fd = sock.as_raw_fd();
        let ffd = file.fd();
        let sent = block_on(&lp, T, async move {
            let lp = get_running_loop().unwrap();
            if mode == "fallback" {
                set_append(fd);
                let e = lp.sock_sendfile(fd, ffd, offset, count, false).await.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
            }
            // Zero-copy must work without the fallback's help.
            lp.sock_sendfile(fd, ffd, offset, count, mode == "fallback").await.unwrap()
        });
        drop(sock);
        let got = th.join().unwrap();
        let end = count.map_or(data.len(), |c| offset as usize + c as usize);
        assert_eq!(sent as usize, end - offset as usize, "{mode}");
        assert!(got == data[offset as usize..end], "{mode}: contents differ");
        assert_eq!(file.position(), end as i64, "{mode}: file position");
    }
    lp.close().unwrap();
}

async fn recording_server() -> (anyloop::net::Server, SocketAddr, Rc<std::cell::RefCell<Vec<Shared>>>) {
    let lp = get_running_loop().unwrap();
    let list: Rc<std::cell::RefCell<Vec<Shared>>> = Rc::default();
    let l2 = list.clone();
    let factory = Rc::new(move || {
        let (sp, rc) = StreamProtocol::plain(Recorder::new(&get_running_loop().unwrap()));
        l2.borrow_mut().push(rc);
        sp
    });
    let server =
        lp.create_server_with(factory, vec!["127.0.0.1".into()], Some(0), ServerOptions::default()).await.unwrap();
    let Some(Addr::Ip(addr)) = server.sockets().first().cloned() else { panic!() };
    (server, addr, list)
}

#[test]
fn loop_sendfile_over_a_transport_both_ways() {
    let data = pattern(2 * 1024 * 1024 + 3);
    let file = TempFile::new("transport", &data);
    let ffd = file.fd();
    let lp = anyloop::new_event_loop().unwrap();
    for fallback_only in [false, true] {
        let d2 = data.clone();
        block_on(&lp, T, async move {
            let lp = get_running_loop().unwrap();
            let (server, addr, conns) = recording_server().await;
            let (t, p) = lp
                .create_connection(
                    || Recorder::new(&get_running_loop().unwrap()),
                    "127.0.0.1",
                    addr.port(),
                    ConnectOptions::default(),
                )
                .await
                .unwrap();
            if fallback_only {
                let Some(ExtraInfo::Fd(fd)) = t.get_extra_info("socket") else { panic!() };
                set_append(fd as i32);
                let e = lp.sendfile(t.clone(), ffd, 0, None, false).await.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Unsupported);
            }
            t.write(b"header:").unwrap();
            let sent = lp.sendfile(t.clone(), ffd, 0, None, fallback_only).await.unwrap();
            assert_eq!(sent as usize, d2.len());
            // The transport is ours again: same protocol, reading, writable.
            assert!(t.get_protocol().ptr_eq(&StreamProtocol::Plain(p.clone())));
            assert!(t.is_reading());
            t.write(b":trailer").unwrap();
            t.write_eof().unwrap();
            while conns.borrow().is_empty() {
                let f = lp.create_future::<()>();
                let f2 = f.clone();
                lp.call_later(Duration::from_millis(2), move |_| {
                    let _ = f2.set_result(());
                })
                .unwrap();
                f.await.unwrap();
            }
            let s = conns.borrow()[0].clone();
            let lost = s.borrow().lost.clone();
            lost.await.unwrap();
            let mut want = b"header:".to_vec();
            want.extend_from_slice(&d2);
            want.extend_from_slice(b":trailer");
            assert!(s.borrow().data == want, "contents differ (fallback_only={fallback_only})");
            t.close();
            server.close();
        });
    }
    lp.close().unwrap();
}
