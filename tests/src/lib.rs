//! Helpers shared by the native integration tests in `tests/`: running a
//! future with a deadline, and protocols that record what happened to them.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

#[cfg(feature = "tls")]
pub mod pki;

use anyloop::{BaseProtocol, Error, ErrorKind, EventLoop, LoopFuture, Protocol, Transport};

/// The port of a server's first (IP) socket.
pub fn port_of(server: &anyloop::net::Server) -> u16 {
    match server.sockets().first() {
        Some(anyloop::net::Addr::Ip(a)) => a.port(),
        other => panic!("no IP socket: {other:?}"),
    }
}

/// Runs the future `f` makes (given a fresh native loop) to completion,
/// failing after 30 s; then cancels what is left and closes the loop.
pub fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce(EventLoop) -> Fut,
    Fut: Future<Output = T> + 'static,
    T: 'static,
{
    let lp = anyloop::new_event_loop().expect("a native loop");
    let fut = f(lp.clone());
    let out = lp.run_until_complete(anyloop::timeout(Duration::from_secs(30), fut)).expect("the loop ran");
    lp.clone().run_and_close(async {}).expect("the loop closed");
    out.expect("test timed out")
}

/// Sleeps `ms` milliseconds on the running loop.
pub async fn sleep_ms(ms: u64) {
    anyloop::sleep(Duration::from_millis(ms)).await
}

/// Runs `fut` on `lp`; panics if it takes longer than `limit` of loop time.
pub fn block_on<T: 'static>(lp: &EventLoop, limit: Duration, fut: impl Future<Output = T> + 'static) -> T {
    let timer = lp.call_later(limit, |lp| lp.stop()).expect("loop open");
    let r = lp.run_until_complete(fut);
    timer.cancel();
    match r {
        Ok(v) => v,
        Err(e) if e.kind() == ErrorKind::StoppedBeforeComplete => panic!("timed out after {limit:?}"),
        Err(e) => panic!("run_until_complete failed: {e}"),
    }
}

/// What happened to a [`Recorder`], in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// connection_made
    Made,
    /// data_received (byte count)
    Data(usize),
    /// eof_received
    Eof,
    /// pause_writing
    Pause,
    /// resume_writing
    Resume,
    /// connection_lost (error kind, if any)
    Lost(Option<ErrorKind>),
}

/// A protocol that records its callbacks and the bytes it received, and
/// completes `lost` on `connection_lost`.
pub struct Recorder {
    /// Callbacks in order (Data events are merged when consecutive).
    pub events: Vec<Ev>,
    /// Every byte received.
    pub data: Vec<u8>,
    /// The transport, from connection_made.
    pub transport: Option<Rc<dyn Transport>>,
    /// What eof_received returns.
    pub keep_open_on_eof: bool,
    /// Echo received data back.
    pub echo: bool,
    /// Completed with connection_lost's argument.
    pub lost: LoopFuture<Option<Error>>,
    /// Completed on connection_made.
    pub made: LoopFuture<()>,
    /// Completed on eof_received.
    pub eof: LoopFuture<()>,
}

impl Recorder {
    /// A recorder for loop `lp`.
    pub fn new(lp: &EventLoop) -> Recorder {
        Recorder {
            events: Vec::new(),
            data: Vec::new(),
            transport: None,
            keep_open_on_eof: false,
            echo: false,
            lost: lp.create_future(),
            made: lp.create_future(),
            eof: lp.create_future(),
        }
    }

    /// An echoing recorder.
    pub fn echo(lp: &EventLoop) -> Recorder {
        Recorder { echo: true, ..Recorder::new(lp) }
    }
}

impl BaseProtocol for Recorder {
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.events.push(Ev::Lost(exc.as_ref().map(|e| e.kind())));
        self.transport = None;
        let _ = self.lost.set_result(exc);
    }
    fn pause_writing(&mut self) {
        self.events.push(Ev::Pause);
    }
    fn resume_writing(&mut self) {
        self.events.push(Ev::Resume);
    }
}

impl Protocol for Recorder {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.events.push(Ev::Made);
        self.transport = Some(transport);
        let _ = self.made.set_result(());
    }
    fn data_received(&mut self, data: &[u8]) {
        match self.events.last_mut() {
            Some(Ev::Data(n)) => *n += data.len(),
            _ => self.events.push(Ev::Data(data.len())),
        }
        self.data.extend_from_slice(data);
        if self.echo
            && let Some(t) = &self.transport
        {
            let _ = t.write(data);
        }
    }
    fn eof_received(&mut self) -> bool {
        self.events.push(Ev::Eof);
        let _ = self.eof.set_result(());
        self.keep_open_on_eof
    }
}

/// A shared recorder, as servers' factories hand them out.
pub type Shared = Rc<RefCell<Recorder>>;

/// A streams echo handler for `start_server`: echoes until EOF, then
/// closes and waits until the connection is gone.
pub async fn stream_echo(mut r: anyloop::StreamReader, w: anyloop::StreamWriter) -> Result<(), Error> {
    loop {
        let data = r.read(64 * 1024).await?;
        if data.is_empty() {
            break;
        }
        w.write(&data)?;
        w.drain().await?;
    }
    w.close();
    w.wait_closed().await
}

/// Deterministic test data: `n` bytes of a pattern that does not repeat
/// with any short period.
pub fn pattern(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Number of open file descriptors of this process (Linux: /proc).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}
