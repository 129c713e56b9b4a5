//! Flow control and connection ends: water marks, pause_reading, close
//! flushing, abort, peer reset, buffered protocols.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use anyloop::net::{Addr, ConnectOptions, ServerOptions};
use anyloop::{
    BaseProtocol, BufferedProtocol, Error, ErrorKind, EventLoop, ExtraInfo, Protocol, StreamProtocol, Transport,
    get_running_loop,
};
use anyloop_tests::sleep_ms;
use anyloop_tests::{Ev, Recorder, Shared, block_on, pattern};

const T: Duration = Duration::from_secs(30);

/// A server whose connections get `make()`'s recorder; returns them as they come.
async fn server_with(
    make: impl Fn(&EventLoop) -> Recorder + 'static,
) -> (anyloop::net::Server, SocketAddr, Rc<RefCell<Vec<Shared>>>) {
    let lp = get_running_loop().unwrap();
    let list: Rc<RefCell<Vec<Shared>>> = Rc::default();
    let l2 = list.clone();
    let factory = Rc::new(move || {
        let (sp, rc) = StreamProtocol::plain(make(&get_running_loop().unwrap()));
        l2.borrow_mut().push(rc);
        sp
    });
    let server =
        lp.create_server_with(factory, vec!["127.0.0.1".into()], Some(0), ServerOptions::default()).await.unwrap();
    let Some(Addr::Ip(addr)) = server.sockets().first().cloned() else { panic!() };
    (server, addr, list)
}

async fn first(list: &Rc<RefCell<Vec<Shared>>>) -> Shared {
    while list.borrow().is_empty() {
        sleep_ms(1).await;
    }
    list.borrow()[0].clone()
}

async fn lost(p: &Shared) -> Option<Error> {
    let f = p.borrow().lost.clone();
    f.await.unwrap()
}

/// Records the write buffer size whenever pause/resume_writing is called.
struct Marks {
    transport: Option<Rc<dyn Transport>>,
    seen: Vec<(bool, usize)>,
}
impl BaseProtocol for Marks {
    fn pause_writing(&mut self) {
        let n = self.transport.as_ref().map_or(0, |t| t.get_write_buffer_size());
        self.seen.push((true, n));
    }
    fn resume_writing(&mut self) {
        let n = self.transport.as_ref().map_or(0, |t| t.get_write_buffer_size());
        self.seen.push((false, n));
    }
}
impl Protocol for Marks {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.transport = Some(t);
    }
    fn data_received(&mut self, _: &[u8]) {}
}

#[test]
fn pause_and_resume_writing_at_the_water_marks() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        // The server's side does not read at first.
        let (server, addr, conns) = server_with(Recorder::new).await;
        let (t, p) = lp
            .create_connection(|| Marks { transport: None, seen: vec![] }, "127.0.0.1", addr.port(), Default::default())
            .await
            .unwrap();
        let s = first(&conns).await;
        s.borrow().transport.as_ref().unwrap().pause_reading();
        t.set_write_buffer_limits(Some(100_000), Some(20_000)).unwrap();
        assert_eq!(t.get_write_buffer_limits(), (20_000, 100_000));
        assert_eq!(t.set_write_buffer_limits(Some(10), Some(20)).unwrap_err().kind(), ErrorKind::InvalidInput);
        let chunk = pattern(8192);
        let mut written = 0;
        while p.borrow().seen.is_empty() {
            t.write(&chunk).unwrap();
            written += chunk.len();
            if written % (256 * 1024) == 0 {
                sleep_ms(1).await; // let the kernel buffers fill
            }
            assert!(written < 64 * 1024 * 1024, "pause_writing never came");
        }
        let (paused, size) = p.borrow().seen[0];
        assert!(paused && size > 100_000 && size <= 100_000 + chunk.len(), "{:?}", p.borrow().seen);
        // The reader starts reading: the buffer drains, resume comes at the low mark.
        s.borrow().transport.as_ref().unwrap().resume_reading();
        while p.borrow().seen.len() < 2 {
            sleep_ms(1).await;
        }
        let (paused, size) = p.borrow().seen[1];
        assert!(!paused && size <= 20_000, "{:?}", p.borrow().seen);
        while s.borrow().data.len() < written {
            sleep_ms(1).await;
        }
        assert_eq!(s.borrow().data.len(), written);
        assert!(s.borrow().data.chunks(8192).all(|c| c == chunk.as_slice()));
        t.close();
        server.close();
    });
    lp.close().unwrap();
}

fn fionread(fd: i64) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    assert_eq!(unsafe { libc::ioctl(fd as i32, libc::FIONREAD, &mut n) }, 0);
    n as usize
}

#[test]
fn pause_reading_keeps_data_in_the_kernel() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let (server, addr, conns) = server_with(Recorder::new).await;
        let c = lp.create_connection(
            || Recorder::new(&get_running_loop().unwrap()),
            "127.0.0.1",
            addr.port(),
            Default::default(),
        );
        let (t, _) = c.await.unwrap();
        let s = first(&conns).await;
        let st = s.borrow().transport.clone().unwrap();
        st.pause_reading();
        assert!(!st.is_reading());
        st.pause_reading(); // idempotent
        let data = pattern(1024 * 1024);
        t.write(&data).unwrap();
        sleep_ms(100).await;
        assert!(s.borrow().data.is_empty(), "data was delivered while paused");
        let Some(ExtraInfo::Fd(fd)) = st.get_extra_info("socket") else { panic!() };
        let queued = fionread(fd);
        assert!(queued > 0, "nothing waits in the kernel");
        assert!(t.get_write_buffer_size() + queued <= data.len());
        st.resume_reading();
        assert!(st.is_reading());
        while s.borrow().data.len() < data.len() {
            sleep_ms(1).await;
        }
        assert!(s.borrow().data == data);
        t.close();
        server.close();
    });
    lp.close().unwrap();
}

#[test]
fn close_flushes_everything_and_abort_drops_it() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let (server, addr, conns) = server_with(Recorder::new).await;
        let (t, p) = lp
            .create_connection(
                || Recorder::new(&get_running_loop().unwrap()),
                "127.0.0.1",
                addr.port(),
                Default::default(),
            )
            .await
            .unwrap();
        let data = pattern(8 * 1024 * 1024);
        t.write(&data).unwrap();
        assert!(t.get_write_buffer_size() > 0, "8 MiB went out in one send");
        t.close(); // flush first, then connection_lost(None)
        assert!(lost(&p).await.is_none());
        let s = first(&conns).await;
        assert!(lost(&s).await.is_none());
        assert!(s.borrow().data == data, "data lost on close");

        // abort: the buffer is dropped, connection_lost(None) still comes.
        let (t, p) = lp
            .create_connection(
                || Recorder::new(&get_running_loop().unwrap()),
                "127.0.0.1",
                addr.port(),
                Default::default(),
            )
            .await
            .unwrap();
        t.write(&data).unwrap();
        t.abort();
        assert_eq!(t.get_write_buffer_size(), 0);
        assert!(lost(&p).await.is_none());
        assert_eq!(p.borrow().events.last(), Some(&Ev::Lost(None)));
        server.close();
    });
    lp.close().unwrap();
}

#[test]
fn peer_reset_while_writing_reports_the_error() {
    let lp = anyloop::new_event_loop().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The peer accepts, then resets the connection (SO_LINGER 0 + close).
    let peer = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let s = socket2::Socket::from(s);
        std::thread::sleep(Duration::from_millis(50));
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    });
    block_on(&lp, T, async move {
        let lp = get_running_loop().unwrap();
        let (t, p) = lp
            .create_connection(
                || Recorder::new(&get_running_loop().unwrap()),
                "127.0.0.1",
                addr.port(),
                Default::default(),
            )
            .await
            .unwrap();
        let chunk = pattern(64 * 1024);
        // Keep writing until the transport notices the reset.
        while !t.is_closing() {
            t.write(&chunk).unwrap();
            sleep_ms(5).await;
        }
        let e = lost(&p).await.expect("connection_lost(None) after a reset");
        assert!(matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe), "{e:?}");
        assert_eq!(t.write(b"x").unwrap_err().kind(), ErrorKind::InvalidState);
    });
    peer.join().unwrap();
    lp.close().unwrap();
}

/// Receives into one big buffer of its own; counts get_buffer calls.
struct Sink {
    buf: Vec<u8>,
    len: usize,
    hints: Vec<usize>,
    handed_out: Vec<(usize, usize)>,
    eof: bool,
}
impl BaseProtocol for Sink {}
impl BufferedProtocol for Sink {
    fn get_buffer(&mut self, sizehint: usize) -> &mut [u8] {
        self.hints.push(sizehint);
        let end = (self.len + 100_000).min(self.buf.len());
        self.handed_out.push((self.len, end));
        &mut self.buf[self.len..end]
    }
    fn buffer_updated(&mut self, nbytes: usize) {
        self.len += nbytes;
    }
    fn eof_received(&mut self) -> bool {
        self.eof = true;
        false
    }
}

#[test]
fn buffered_protocol_receives_into_its_own_buffer() {
    let lp = anyloop::new_event_loop().unwrap();
    let data = pattern(3 * 1024 * 1024);
    let d2 = data.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut s, &d2).unwrap();
    });
    let sink = block_on(&lp, T, async move {
        let lp = get_running_loop().unwrap();
        let (sp, sink) = StreamProtocol::buffered(Sink {
            buf: vec![0; 4 * 1024 * 1024],
            len: 0,
            hints: vec![],
            handed_out: vec![],
            eof: false,
        });
        let t = lp
            .create_connection_with(sp, Some("127.0.0.1"), Some(addr.port()), ConnectOptions::default())
            .await
            .unwrap();
        while !sink.borrow().eof {
            sleep_ms(2).await;
        }
        assert!(t.is_closing());
        sink
    });
    peer.join().unwrap();
    let sink = sink.borrow();
    assert_eq!(sink.len, data.len());
    assert!(sink.buf[..sink.len] == data, "bytes differ");
    // Every read went into a slice the protocol handed out, in order.
    assert!(sink.handed_out.windows(2).all(|w| w[0].0 <= w[1].0));
    assert!(sink.hints.iter().all(|&h| h > 0));
    lp.close().unwrap();
}

#[test]
fn set_protocol_takes_effect_between_callbacks() {
    let lp = anyloop::new_event_loop().unwrap();
    block_on(&lp, T, async {
        let lp = get_running_loop().unwrap();
        let (server, addr, conns) = server_with(Recorder::new).await;
        let (t, one) = lp
            .create_connection(
                || Recorder::new(&get_running_loop().unwrap()),
                "127.0.0.1",
                addr.port(),
                Default::default(),
            )
            .await
            .unwrap();
        let s = first(&conns).await;
        let st = s.borrow().transport.clone().unwrap();
        st.write(b"to the first protocol").unwrap();
        while one.borrow().data.len() < 21 {
            sleep_ms(1).await;
        }
        let (sp, second) = StreamProtocol::plain(Recorder::new(&lp));
        t.set_protocol(sp.clone());
        assert!(t.get_protocol().ptr_eq(&sp));
        st.write(b"to the second").unwrap();
        st.close();
        let lost = second.borrow().lost.clone();
        assert!(lost.await.unwrap().is_none());
        assert_eq!(one.borrow().data, b"to the first protocol");
        assert_eq!(second.borrow().data, b"to the second");
        assert_eq!(one.borrow().events.last(), Some(&Ev::Data(21)), "the first protocol heard the end");
        // After the connection is gone, get_protocol still names the protocol.
        assert!(t.get_protocol().ptr_eq(&sp));
        server.close();
    });
    lp.close().unwrap();
}
