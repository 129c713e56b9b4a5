//! The subprocess transport (asyncio's `BaseSubprocessTransport`) and the
//! adapters that connect its pipe transports to the subprocess protocol.
//!
//! Order of protocol calls, as in asyncio: `connection_made` first (calls
//! that happen before it — output read while the transport was being set
//! up — wait for it); then `pipe_data_received` / `pipe_connection_lost`;
//! `process_exited` once the child was reaped *and* every pipe is closed, so
//! all its output came first; then `connection_lost(None)`.
//!
//! Every call reaches the protocol as a loop callback of its own, in order
//! (a queue, one scheduled callback per entry, each taking the front): a
//! panicking protocol method goes to the loop's exception handler like any
//! callback's, and the rest still arrive. `pause_writing` / `resume_writing`
//! (the stdin pipe's flow control) are delivered at once when the protocol
//! is free, else right after the protocol call that holds it returns.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use anyloop_core::{
    BaseProtocol, BaseTransport, Error, ErrorKind, EventLoop, ExtraInfo, PipeFd, Protocol, SubprocessProtocol,
    SubprocessTransport, Transport, WeakLoop,
};

type Call = Box<dyn FnOnce(&mut dyn SubprocessProtocol)>;
type SharedProtocol = Rc<RefCell<dyn SubprocessProtocol>>;

struct Pipe {
    transport: Rc<dyn Transport>,
    lost: bool,
}

/// A child process, as its protocol and user see it.
pub(crate) struct ProcessTransport {
    pid: u32,
    pidfd: Cell<Option<i32>>,
    lp: WeakLoop,
    /// Dropped once `connection_lost` was delivered (breaks the cycle with a
    /// protocol that keeps its transport).
    protocol: RefCell<Option<SharedProtocol>>,
    calls: RefCell<VecDeque<Call>>,
    /// `connection_made` was scheduled: later calls are scheduled at once.
    started: Cell<bool>,
    /// Deferred `pause_writing` (true) / `resume_writing` (false).
    flow: RefCell<Vec<bool>>,
    flow_scheduled: Cell<bool>,
    pipes: RefCell<[Option<Pipe>; 3]>,
    returncode: Cell<Option<i32>>,
    closed: Cell<bool>,
    finished: Cell<bool>,
    me: Weak<ProcessTransport>,
}

impl ProcessTransport {
    pub(crate) fn new(lp: &EventLoop, pid: u32, protocol: SharedProtocol) -> Rc<ProcessTransport> {
        Rc::new_cyclic(|me| ProcessTransport {
            pid,
            pidfd: Cell::new(None),
            lp: lp.downgrade(),
            protocol: RefCell::new(Some(protocol)),
            calls: RefCell::new(VecDeque::new()),
            started: Cell::new(false),
            flow: RefCell::new(Vec::new()),
            flow_scheduled: Cell::new(false),
            pipes: RefCell::new([None, None, None]),
            returncode: Cell::new(None),
            closed: Cell::new(false),
            finished: Cell::new(false),
            me: me.clone(),
        })
    }

    /// The adapter protocol for the pipe of stream `fd`. It keeps the
    /// transport alive until the pipe is lost, as asyncio's pipe protocols
    /// do, so the protocol hears the end even if nobody else keeps it.
    pub(crate) fn pipe_protocol(self: &Rc<Self>, fd: PipeFd) -> PipeProtocol {
        PipeProtocol { fd, process: self.clone() }
    }

    /// Records the transport of the pipe of stream `fd`.
    pub(crate) fn set_pipe(&self, fd: PipeFd, transport: Rc<dyn Transport>) {
        let Ok(i) = usize::try_from(fd) else { return };
        if let Some(slot) = self.pipes.borrow_mut().get_mut(i) {
            *slot = Some(Pipe { transport, lost: false });
        }
    }

    pub(crate) fn set_pidfd(&self, fd: Option<i32>) {
        self.pidfd.set(fd);
    }

    /// Schedules `connection_made`, then the calls that waited for it.
    pub(crate) fn start(&self, lp: &EventLoop) -> Result<(), Error> {
        let Some(me) = self.me.upgrade() else { return Ok(()) };
        self.calls.borrow_mut().push_front(Box::new(move |p| p.connection_made(me)));
        self.started.set(true);
        for _ in 0..self.calls.borrow().len() {
            self.schedule(lp)?;
        }
        Ok(())
    }

    fn call(&self, f: impl FnOnce(&mut dyn SubprocessProtocol) + 'static) {
        self.calls.borrow_mut().push_back(Box::new(f));
        if self.started.get()
            && let Some(lp) = self.lp.upgrade()
        {
            let _ = self.schedule(&lp);
        }
    }

    fn schedule(&self, lp: &EventLoop) -> Result<(), Error> {
        // A strong reference: the calls are delivered even if nobody else
        // keeps the transport.
        let Some(me) = self.me.upgrade() else { return Ok(()) };
        lp.call_soon(move |lp| me.deliver_one(lp))?;
        Ok(())
    }

    /// Runs the first queued call (a loop callback).
    fn deliver_one(&self, lp: &EventLoop) {
        let Some(p) = self.protocol.borrow().clone() else { return };
        let Ok(mut guard) = p.try_borrow_mut() else {
            // User code holds the protocol borrowed: try again next time.
            let _ = self.schedule(lp);
            return;
        };
        let Some(f) = self.calls.borrow_mut().pop_front() else { return };
        f(&mut *guard);
        drop(guard);
        self.flush_flow(lp);
    }

    fn flow_control(&self, pause: bool) {
        self.flow.borrow_mut().push(pause);
        if let Some(lp) = self.lp.upgrade() {
            self.flush_flow(&lp);
        }
    }

    /// Delivers deferred pause/resume calls if the protocol is free.
    fn flush_flow(&self, lp: &EventLoop) {
        if self.flow.borrow().is_empty() {
            return;
        }
        let Some(p) = self.protocol.borrow().clone() else {
            self.flow.borrow_mut().clear();
            return;
        };
        let Ok(mut guard) = p.try_borrow_mut() else {
            if !self.flow_scheduled.replace(true)
                && let Some(me) = self.me.upgrade()
            {
                let _ = lp.call_soon(move |lp| {
                    me.flow_scheduled.set(false);
                    me.flush_flow(lp);
                });
            }
            return;
        };
        let pending = std::mem::take(&mut *self.flow.borrow_mut());
        for pause in pending {
            if pause { guard.pause_writing() } else { guard.resume_writing() }
        }
    }

    /// The child was reaped with status `code`.
    pub(crate) fn process_exited(&self, code: i32) {
        if self.returncode.get().is_none() {
            self.returncode.set(Some(code));
        }
        self.try_finish();
    }

    fn pipe_lost(&self, fd: PipeFd, exc: Option<Error>) {
        if let Ok(i) = usize::try_from(fd)
            && let Some(Some(p)) = self.pipes.borrow_mut().get_mut(i)
        {
            p.lost = true;
        }
        self.call(move |p| p.pipe_connection_lost(fd, exc));
        self.try_finish();
    }

    /// `process_exited` and `connection_lost` once the child is reaped and
    /// every pipe is closed.
    fn try_finish(&self) {
        if self.finished.get() || self.returncode.get().is_none() {
            return;
        }
        if self.pipes.borrow().iter().any(|p| p.as_ref().is_some_and(|p| !p.lost)) {
            return;
        }
        self.finished.set(true);
        self.call(|p| p.process_exited());
        let me = self.me.clone();
        self.call(move |p| {
            p.connection_lost(None);
            if let Some(t) = me.upgrade() {
                // Delivered after this call returns: drop the protocol then.
                if let Some(lp) = t.lp.upgrade() {
                    let _ = lp.call_soon(move |_| {
                        t.protocol.borrow_mut().take();
                        t.flow.borrow_mut().clear();
                    });
                }
            }
        });
    }

    fn signal(&self, signum: i32) -> Result<(), Error> {
        if self.returncode.get().is_some() {
            // Reaped: the pid may belong to another process by now.
            return Err(Error::from_raw_os_error(
                libc::ESRCH,
                ErrorKind::NotFound,
                format!("process {} has already exited", self.pid),
            ));
        }
        let pid = libc::pid_t::try_from(self.pid)
            .map_err(|_| Error::new(ErrorKind::InvalidState, format!("pid {} out of range", self.pid)))?;
        // SAFETY: kill() takes two integers; the child is ours and not yet
        // reaped, so `pid` still names it.
        if unsafe { libc::kill(pid, signum) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EINVAL) => Error::new(ErrorKind::InvalidInput, format!("invalid signal number: {signum}")),
                _ => Error::from(e).context(format!("cannot signal process {}", self.pid)),
            });
        }
        Ok(())
    }
}

impl ProcessTransport {
    /// Closes the pipes that are still open.
    pub(crate) fn close_pipes(&self) {
        self.closed.set(true);
        let pipes: Vec<Rc<dyn Transport>> =
            self.pipes.borrow().iter().flatten().filter(|p| !p.lost).map(|p| p.transport.clone()).collect();
        for t in pipes {
            t.close();
        }
    }
}

impl BaseTransport for ProcessTransport {
    /// Closes the pipes and kills the child if it still runs (asyncio).
    fn close(&self) {
        if self.closed.get() {
            return;
        }
        self.close_pipes();
        if self.returncode.get().is_none() {
            let _ = self.signal(libc::SIGKILL);
        }
    }

    fn is_closing(&self) -> bool {
        self.closed.get()
    }

    fn get_extra_info(&self, name: &str) -> Option<ExtraInfo> {
        match name {
            "pid" => Some(ExtraInfo::Int(i64::from(self.pid))),
            "pidfd" => self.pidfd.get().map(|fd| ExtraInfo::Fd(i64::from(fd))),
            _ => None,
        }
    }
}

impl SubprocessTransport for ProcessTransport {
    fn get_pid(&self) -> Option<u32> {
        Some(self.pid)
    }

    fn get_returncode(&self) -> Option<i32> {
        self.returncode.get()
    }

    fn get_pipe_transport(&self, fd: PipeFd) -> Option<Rc<dyn Transport>> {
        let i = usize::try_from(fd).ok()?;
        self.pipes.borrow().get(i)?.as_ref().map(|p| p.transport.clone())
    }

    fn send_signal(&self, signal: i32) -> Result<(), Error> {
        self.signal(signal)
    }

    fn terminate(&self) -> Result<(), Error> {
        self.signal(libc::SIGTERM)
    }

    fn kill(&self) -> Result<(), Error> {
        self.signal(libc::SIGKILL)
    }
}

/// The stream protocol of one pipe of a child: forwards to the subprocess
/// protocol with the stream's number (asyncio's `ReadSubprocessPipeProto`
/// and `WriteSubprocessPipeProto`). The pipe transport lets go of it once
/// the pipe is lost, which ends the reference cycle.
pub(crate) struct PipeProtocol {
    fd: PipeFd,
    process: Rc<ProcessTransport>,
}

impl BaseProtocol for PipeProtocol {
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.process.pipe_lost(self.fd, exc);
    }

    fn pause_writing(&mut self) {
        self.process.flow_control(true);
    }

    fn resume_writing(&mut self) {
        self.process.flow_control(false);
    }
}

impl Protocol for PipeProtocol {
    fn data_received(&mut self, data: &[u8]) {
        let (fd, data) = (self.fd, data.to_vec());
        self.process.call(move |p| p.pipe_data_received(fd, &data));
    }
}
