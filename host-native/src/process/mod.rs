//! Pipes and child processes: the native [`ProcessBackend`].
//!
//! * [`spawn`] maps `SubprocessOptions` onto `std::process::Command`;
//! * [`reaper`] learns of exits (pidfd, or SIGCHLD) and reaps the loop's own
//!   children only;
//! * [`subprocess`] is the transport and protocol plumbing;
//! * [`pipe`] wraps pipe-like descriptors in stream transports.
//!
//! [`ProcessBackend`]: anyloop_core::backend::ProcessBackend

#[cfg(unix)]
mod pipe;
#[cfg(unix)]
pub(crate) mod reaper;
#[cfg(unix)]
mod spawn;
#[cfg(unix)]
mod subprocess;

#[cfg(unix)]
pub use reaper::ChildWatcher;
#[cfg(unix)]
pub(crate) use unix::NativeProcess;
#[cfg(not(unix))]
pub(crate) use unsupported::NativeProcess;

/// How a native loop learns that its child processes exited (Unix only;
/// on other platforms there is nothing to choose).
#[cfg(not(unix))]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum ChildWatcher {
    /// The platform's way.
    #[default]
    Auto,
    /// SIGCHLD (Unix only; the same as `Auto` here).
    Sigchld,
}

#[cfg(not(unix))]
impl ChildWatcher {
    /// Whether the environment forces SIGCHLD: never, without Unix.
    pub fn forced_by_env() -> bool {
        false
    }
}

#[cfg(unix)]
mod unix {
    use std::cell::RefCell;
    use std::rc::Rc;

    use anyloop_core::backend::{IoFuture, ProcessBackend, RawFd};
    use anyloop_core::net::SubprocessOptions;
    use anyloop_core::{
        Error, ErrorKind, EventLoop, StreamProtocol, SubprocessProtocol, SubprocessTransport, Transport,
    };

    use super::pipe;
    use super::reaper::Reaper;
    use super::spawn::{Spawned, spawn};
    use super::subprocess::ProcessTransport;
    use crate::reactor::Reactor;

    /// The [`ProcessBackend`] of a native loop.
    pub(crate) struct NativeProcess {
        pub(crate) reactor: Rc<Reactor>,
        pub(crate) reaper: Rc<Reaper>,
    }

    struct CloseOnDrop(Option<Rc<ProcessTransport>>);

    impl Drop for CloseOnDrop {
        fn drop(&mut self) {
            if let Some(t) = self.0.take() {
                anyloop_core::BaseTransport::close(&*t);
            }
        }
    }

    fn closed() -> Error {
        Error::new(ErrorKind::Closed, "Event loop is closed")
    }

    impl ProcessBackend for NativeProcess {
        fn connect_read_pipe(
            &self,
            lp: &EventLoop,
            protocol: StreamProtocol,
            fd: RawFd,
        ) -> IoFuture<'static, Rc<dyn Transport>> {
            let r = pipe::connect(lp, &self.reactor, fd, pipe::End::Read, protocol);
            Box::pin(async move { r?.await })
        }

        fn connect_write_pipe(
            &self,
            lp: &EventLoop,
            protocol: StreamProtocol,
            fd: RawFd,
        ) -> IoFuture<'static, Rc<dyn Transport>> {
            let r = pipe::connect(lp, &self.reactor, fd, pipe::End::Write, protocol);
            Box::pin(async move { r?.await })
        }

        fn subprocess(
            &self,
            lp: &EventLoop,
            protocol: Rc<RefCell<dyn SubprocessProtocol>>,
            program: String,
            args: Vec<String>,
            shell: bool,
            opts: SubprocessOptions,
        ) -> IoFuture<'static, Rc<dyn SubprocessTransport>> {
            let weak = lp.downgrade();
            let reactor = self.reactor.clone();
            let reaper = self.reaper.clone();
            Box::pin(async move {
                let lp = weak.upgrade().ok_or_else(closed)?;
                let Spawned { child, pipes } = spawn(&program, &args, shell, &opts)?;
                let t = ProcessTransport::new(&lp, child.id(), protocol);
                // Pipes first: if one cannot be made, the child is still
                // watched (and killed), so it never becomes a zombie.
                let mut failed = None;
                for (fd, parent) in (0..).zip(pipes) {
                    let Some(parent) = parent else { continue };
                    let end = if fd == 0 { pipe::End::Write } else { pipe::End::Read };
                    let (sp, _) = StreamProtocol::plain(t.pipe_protocol(fd));
                    // The pipe's connection_made (the adapter's) runs before
                    // the subprocess protocol's; no need to wait for it.
                    match pipe::transport(&lp, &reactor, parent, end, sp) {
                        Ok((pt, _connected)) => t.set_pipe(fd, pt),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                let t2 = t.clone();
                match reaper.watch(&lp, child, Box::new(move |_, code| t2.process_exited(code))) {
                    Ok(pidfd) => t.set_pidfd(pidfd),
                    Err(e) => {
                        // The watcher killed and reaped the child already.
                        t.close_pipes();
                        return Err(e);
                    }
                }
                if let Some(e) = failed {
                    use anyloop_core::BaseTransport;
                    t.close();
                    return Err(e);
                }
                // If the caller stops waiting (its task is cancelled), the
                // child is killed, as asyncio does.
                let mut guard = CloseOnDrop(Some(t.clone()));
                t.start(&lp)?;
                // Resolves in the iteration after `connection_made` ran.
                let ready = lp.create_future::<()>();
                let r = ready.clone();
                lp.call_soon(move |_| {
                    let _ = r.set_result(());
                })?;
                ready.await?;
                guard.0 = None;
                Ok(t as Rc<dyn SubprocessTransport>)
            })
        }
    }
}

#[cfg(not(unix))]
mod unsupported {
    use std::cell::RefCell;
    use std::rc::Rc;

    use anyloop_core::backend::{IoFuture, ProcessBackend, RawFd, failed};
    use anyloop_core::net::SubprocessOptions;
    use anyloop_core::{Error, EventLoop, StreamProtocol, SubprocessProtocol, SubprocessTransport, Transport};

    const WHY: &str = "pipes and child processes are implemented for Unix only";

    /// Pipes and processes where they are not implemented: `Unsupported`.
    pub(crate) struct NativeProcess;

    fn unsupported<T: 'static>(what: &'static str) -> IoFuture<'static, T> {
        failed(Error::unsupported(what, WHY))
    }

    impl ProcessBackend for NativeProcess {
        fn connect_read_pipe(
            &self,
            _: &EventLoop,
            _: StreamProtocol,
            _: RawFd,
        ) -> IoFuture<'static, Rc<dyn Transport>> {
            unsupported("connect_read_pipe")
        }

        fn connect_write_pipe(
            &self,
            _: &EventLoop,
            _: StreamProtocol,
            _: RawFd,
        ) -> IoFuture<'static, Rc<dyn Transport>> {
            unsupported("connect_write_pipe")
        }

        fn subprocess(
            &self,
            _: &EventLoop,
            _: Rc<RefCell<dyn SubprocessProtocol>>,
            _: String,
            _: Vec<String>,
            _: bool,
            _: SubprocessOptions,
        ) -> IoFuture<'static, Rc<dyn SubprocessTransport>> {
            unsupported("subprocess_exec / subprocess_shell")
        }
    }
}
