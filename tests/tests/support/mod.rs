//! Shared by the process tests: a subprocess protocol that records what it
//! hears, and loops on either child watcher.
#![allow(dead_code)] // each test binary uses a part

use std::rc::Rc;
use std::time::Duration;

use anyloop::host::{ChildWatcher, NativeHost};
use anyloop::net::SubprocessOptions;
use anyloop::{BaseProtocol, Error, ErrorKind, EventLoop, LoopFuture, SubprocessProtocol, SubprocessTransport};

/// Both ways of learning about exits; every process test runs through both.
pub const WATCHERS: [ChildWatcher; 2] = [ChildWatcher::Auto, ChildWatcher::Sigchld];

/// What a [`Recorder`] heard, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Made,
    Data(i32),
    PipeLost(i32, Option<ErrorKind>),
    Exited,
    Lost,
}

/// Records every protocol call; `done` resolves at `connection_lost`.
pub struct Recorder {
    pub events: Vec<Event>,
    pub out: Vec<u8>,
    pub err: Vec<u8>,
    pub transport: Option<Rc<dyn SubprocessTransport>>,
    pub returncode_at_exit: Option<i32>,
    pub done: LoopFuture<()>,
    pub exited: LoopFuture<()>,
}

impl Recorder {
    pub fn new(lp: &EventLoop) -> Recorder {
        Recorder {
            events: Vec::new(),
            out: Vec::new(),
            err: Vec::new(),
            transport: None,
            returncode_at_exit: None,
            done: lp.create_future(),
            exited: lp.create_future(),
        }
    }
}

impl BaseProtocol for Recorder {
    fn connection_lost(&mut self, exc: Option<Error>) {
        assert!(exc.is_none(), "{exc:?}");
        self.events.push(Event::Lost);
        let _ = self.done.set_result(());
    }
}

impl SubprocessProtocol for Recorder {
    fn connection_made(&mut self, transport: Rc<dyn SubprocessTransport>) {
        self.events.push(Event::Made);
        self.transport = Some(transport);
    }

    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        if self.events.last() != Some(&Event::Data(fd)) {
            self.events.push(Event::Data(fd));
        }
        match fd {
            1 => self.out.extend_from_slice(data),
            2 => self.err.extend_from_slice(data),
            _ => panic!("data on fd {fd}"),
        }
    }

    fn pipe_connection_lost(&mut self, fd: i32, exc: Option<Error>) {
        self.events.push(Event::PipeLost(fd, exc.map(|e| e.kind())));
    }

    fn process_exited(&mut self) {
        self.events.push(Event::Exited);
        self.returncode_at_exit = self.transport.as_ref().and_then(|t| t.get_returncode());
        let _ = self.exited.set_result(());
    }
}

/// A loop whose children are watched by `watcher`.
pub fn new_loop(watcher: ChildWatcher) -> EventLoop {
    EventLoop::new(NativeHost::new().unwrap().with_child_watcher(watcher))
}

/// Runs `f` as a task on a fresh loop with `watcher`, failing after `secs`.
pub fn run<T: 'static>(watcher: ChildWatcher, secs: u64, f: impl AsyncFnOnce(EventLoop) -> T + 'static) -> T {
    let lp = new_loop(watcher);
    let l2 = lp.clone();
    let task = lp.create_task(async move { f(l2).await }).unwrap();
    let t2 = task.as_any();
    lp.call_later(Duration::from_secs(secs), move |_| {
        t2.cancel(Some("timed out"));
    })
    .unwrap();
    let r = lp.run_until_complete(task);
    lp.close().unwrap();
    match r {
        Ok(Ok(v)) => v,
        Ok(Err(e)) | Err(e) => panic!("{watcher:?}: {e}"),
    }
}

/// Spawns `sh -c cmd` with `opts` and a [`Recorder`], and waits until the
/// transport is done; returns the recorder.
pub async fn shell(lp: &EventLoop, cmd: &str, opts: SubprocessOptions) -> Result<Recorder, Error> {
    let rec = Recorder::new(lp);
    let done = rec.done.clone();
    let (_t, p) = lp.subprocess_shell(move || rec, cmd, opts).await?;
    done.await?;
    let rec = std::mem::replace(&mut *p.borrow_mut(), Recorder::new(lp));
    Ok(rec)
}
