//! Unix signals: the native [`SignalBackend`] (`add_signal_handler`,
//! `remove_signal_handler`), and the signal subscriptions the child watcher
//! uses internally.
//!
//! ## Why signal-hook, and no signal-handler code of our own
//!
//! An OS signal handler interrupts its thread anywhere — inside `malloc`,
//! holding a lock, in the middle of a `RefCell` borrow — so it may only call
//! async-signal-safe functions, and any slip is undefined behaviour that
//! tests almost never catch. [signal-hook] is the audited, widely used
//! implementation of the one safe pattern: the OS handler only sets an
//! atomic flag and writes a byte to a self-pipe; its registry multiplexes
//! several users of one signal and chains a handler that was installed
//! before it. [signal-hook-mio] makes the self-pipe a mio source. Nothing in
//! this module runs in signal context; its one `unsafe` call only reads a
//! signal's current disposition.
//!
//! ## How a signal reaches a loop
//!
//! Every loop that handles signals owns one
//! [`signal_hook_mio::v1_0::Signals`] (a self-pipe and one pending flag per
//! signal), registered with its reactor. When the pipe is readable,
//! [`Dispatch::ready`] drains it and schedules the handle of each pending
//! signal, so the callback runs in the loop's batch like any I/O callback and
//! may call any loop method. Arrivals of one signal before the loop looks
//! coalesce into one call, as asyncio's wakeup fd does; none is lost, because
//! the flag is set before the byte is written, and the pipe is drained before
//! the flags are read.
//!
//! Each loop has a delivery of its own, so a handler added by a loop on any
//! thread runs on that loop (no main-thread rule), and when two loops handle
//! the same signal, both are called.
//!
//! ## Restoring the disposition
//!
//! signal-hook never uninstalls its OS handler (it cannot know who chained
//! onto it), so after its last action is gone a signal would be silently
//! ignored — a second Ctrl-C that no longer stops the program. Therefore, the
//! first time a signal at its default action gets a handler, we also register
//! signal-hook's
//! [`register_conditional_default`](signal_hook::flag::register_conditional_default)
//! with a process-wide flag that is set while no loop handles the signal:
//! then the default action (terminate, stop, or ignore) is emulated — what
//! asyncio's `remove_signal_handler` achieves with `signal(sig, SIG_DFL)`.
//! A signal that was *ignored* before (Rust ignores `SIGPIPE`) stays ignored
//! once its last handler is removed, and a handler another library had
//! installed keeps being called (signal-hook chains it): removing the last
//! handler restores whatever the disposition was before the first.
//!
//! ## Which signals
//!
//! `SIGKILL` and `SIGSTOP` cannot be caught; `SIGSEGV`, `SIGILL` and
//! `SIGFPE` report a fault in the interrupted code, which cannot wait for the
//! loop. Signals whose default action signal-hook does not know
//! (Linux real-time signals, `SIGPWR`…) are refused too, since removing their
//! handler could not restore it. All of these are `InvalidInput` errors, as
//! are numbers that name no signal.
//!
//! [signal-hook]: https://docs.rs/signal-hook
//! [signal-hook-mio]: https://docs.rs/signal-hook-mio
//! [`SignalBackend`]: anyloop_core::backend::SignalBackend
//! [`Dispatch::ready`]: crate::reactor::Dispatch::ready

#[cfg(unix)]
pub(crate) use unix::{LoopSignals, NativeSignals, Owner};
#[cfg(not(unix))]
pub(crate) use unsupported::NativeSignals;

/// The name of signal `signum` (`"SIGINT"`), if it is a standard signal.
///
/// ```
/// # #[cfg(unix)] {
/// use anyloop_native::signal;
/// assert_eq!(signal::name(signal::SIGTERM), Some("SIGTERM"));
/// assert_eq!(signal::name(0), None);
/// # }
/// ```
pub fn name(signum: i32) -> Option<&'static str> {
    #[cfg(unix)]
    {
        signal_hook::low_level::signal_name(signum)
    }
    #[cfg(not(unix))]
    {
        let _ = signum;
        None
    }
}

#[cfg(unix)]
mod unix {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::{Rc, Weak};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use anyloop_core::backend::SignalBackend;
    use anyloop_core::{Error, ErrorKind, EventLoop, Handle};
    use mio::{Interest, Token};
    use signal_hook::consts::signal::{SIGKILL, SIGSTOP};
    use signal_hook_mio::v1_0::Signals;

    use crate::reactor::{Dispatch, Reactor, Readiness};

    /// Checks that `signum` can have a handler on the loop.
    pub(crate) fn check_signal(signum: i32) -> Result<&'static str, Error> {
        let name = signal_hook::low_level::signal_name(signum);
        let invalid = |msg: String| Err(Error::new(ErrorKind::InvalidInput, msg));
        match name {
            Some(n) if signum == SIGKILL || signum == SIGSTOP => {
                invalid(format!("signal {signum} ({n}) cannot be caught"))
            }
            Some(n) if signal_hook::consts::FORBIDDEN.contains(&signum) => invalid(format!(
                "signal {signum} ({n}) reports a fault in the running code and cannot be handled on the loop"
            )),
            Some(n) => Ok(n),
            None if exists(signum) => invalid(format!(
                "signal {signum} is not supported: only the standard signals, whose default action can be \
                 restored, can have a handler"
            )),
            None => invalid(format!("invalid signal number: {signum}")),
        }
    }

    /// Whether `signum` is a signal of this OS that signal-hook cannot name.
    fn exists(signum: i32) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            (1..=libc::SIGRTMAX()).contains(&signum)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = signum;
            false
        }
    }

    /// Process-wide bookkeeping: how many loops handle each signal, and the
    /// flag of its conditional default action.
    mod global {
        use super::*;

        struct Entry {
            loops: usize,
            /// Set while no loop handles the signal: its default action
            /// runs. `None` if the signal was not at its default action
            /// before (ignored, or another library's handler, which
            /// signal-hook keeps calling): that disposition simply stays.
            unhandled: Option<Arc<AtomicBool>>,
        }

        static SIGNALS: Mutex<BTreeMap<i32, Entry>> = Mutex::new(BTreeMap::new());

        fn table() -> std::sync::MutexGuard<'static, BTreeMap<i32, Entry>> {
            // The table stays consistent across a panic (no half updates).
            SIGNALS.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// One more loop handles `signum` (checked by `check_signal`).
        pub(super) fn subscribe(signum: i32) -> Result<(), Error> {
            let mut table = table();
            if let Some(e) = table.get_mut(&signum) {
                e.loops += 1;
                if let Some(flag) = &e.unhandled {
                    flag.store(false, Ordering::SeqCst);
                }
                return Ok(());
            }
            let err = |e| Error::from(e).context(format!("cannot handle signal {signum}"));
            let unhandled = if is_default(signum).map_err(err)? {
                let flag = Arc::new(AtomicBool::new(false));
                // Registered once per signal for the life of the process:
                // the registry keeps its OS handler installed anyway.
                signal_hook::flag::register_conditional_default(signum, flag.clone()).map_err(err)?;
                Some(flag)
            } else {
                None
            };
            table.insert(signum, Entry { loops: 1, unhandled });
            Ok(())
        }

        /// One loop fewer handles `signum`; at zero, the disposition from
        /// before the first handler is back.
        pub(super) fn unsubscribe(signum: i32) {
            if let Some(e) = table().get_mut(&signum) {
                e.loops = e.loops.saturating_sub(1);
                if let Some(flag) = &e.unhandled
                    && e.loops == 0
                {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        }

        /// Whether `signum` is at its default action (`SIG_DFL`) now.
        fn is_default(signum: i32) -> std::io::Result<bool> {
            let mut old = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
            // SAFETY: with a null new action, sigaction only writes the
            // current one into `old`, a plain C struct we own.
            let r = unsafe { libc::sigaction(signum, std::ptr::null(), old.as_mut_ptr()) };
            if r != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: sigaction succeeded, so it initialized `old` (and a
            // zeroed sigaction is a valid value anyway).
            let old = unsafe { old.assume_init() };
            Ok(old.sa_sigaction == libc::SIG_DFL)
        }
    }

    /// Who handles a signal on one loop. Each owner has its own handle, so
    /// none replaces another's.
    #[derive(Copy, Clone, Debug, PartialEq, Eq)]
    pub(crate) enum Owner {
        /// `add_signal_handler`.
        User,
        /// The child watcher's SIGCHLD path (`crate::process`).
        Children,
    }

    #[derive(Default)]
    struct Slots {
        user: Option<Handle>,
        children: Option<Handle>,
    }

    impl Slots {
        fn slot(&mut self, owner: Owner) -> &mut Option<Handle> {
            match owner {
                Owner::User => &mut self.user,
                Owner::Children => &mut self.children,
            }
        }
        fn is_empty(&self) -> bool {
            self.user.is_none() && self.children.is_none()
        }
        /// The child watcher first: a user's SIGCHLD handler then sees the
        /// children already reaped.
        fn handles(&self) -> impl Iterator<Item = &Handle> {
            self.children.iter().chain(self.user.iter())
        }
    }

    struct Delivery {
        signals: Signals,
        token: Token,
    }

    /// The signal state of one loop.
    pub(crate) struct LoopSignals {
        reactor: Rc<Reactor>,
        handlers: RefCell<BTreeMap<i32, Slots>>,
        delivery: RefCell<Option<Delivery>>,
        me: Weak<LoopSignals>,
    }

    /// What the reactor holds: a weak link, so a dropped loop releases its
    /// signals even if it was never closed.
    struct Wakeup(Weak<LoopSignals>);

    impl Dispatch for Wakeup {
        fn ready(&self, lp: &EventLoop, _readiness: Readiness) {
            if let Some(s) = self.0.upgrade() {
                s.deliver(lp);
            }
        }
    }

    fn io_error(e: std::io::Error, signum: i32) -> Error {
        Error::from(e).context(format!("cannot handle signal {signum}"))
    }

    impl LoopSignals {
        pub(crate) fn new(reactor: Rc<Reactor>) -> Rc<LoopSignals> {
            Rc::new_cyclic(|me| LoopSignals {
                reactor,
                handlers: RefCell::new(BTreeMap::new()),
                delivery: RefCell::new(None),
                me: me.clone(),
            })
        }

        /// Calls `handle` on the loop whenever `signum` arrives, replacing
        /// `owner`'s earlier handle for it.
        pub(crate) fn add(&self, signum: i32, owner: Owner, handle: Handle) -> Result<(), Error> {
            check_signal(signum)?;
            let first = !self.handlers.borrow().contains_key(&signum);
            if first {
                global::subscribe(signum)?;
                if let Err(e) = self.watch(signum) {
                    global::unsubscribe(signum);
                    return Err(e);
                }
            }
            let old = self.handlers.borrow_mut().entry(signum).or_default().slot(owner).replace(handle);
            if let Some(old) = old {
                old.cancel(); // drops the closure, outside any borrow
            }
            Ok(())
        }

        /// Removes `owner`'s handle for `signum`; whether there was one.
        pub(crate) fn remove(&self, lp: Option<&EventLoop>, signum: i32, owner: Owner) -> Result<bool, Error> {
            check_signal(signum)?;
            let (old, last) = {
                let mut handlers = self.handlers.borrow_mut();
                let Some(slots) = handlers.get_mut(&signum) else { return Ok(false) };
                let old = slots.slot(owner).take();
                let last = slots.is_empty();
                if last {
                    handlers.remove(&signum);
                }
                (old, last)
            };
            if last {
                global::unsubscribe(signum);
                self.rebuild(lp);
            }
            match old {
                Some(h) => {
                    h.cancel();
                    Ok(true)
                }
                None => Ok(false),
            }
        }

        /// Adds `signum` to this loop's delivery, creating it if needed.
        fn watch(&self, signum: i32) -> Result<(), Error> {
            if let Some(d) = self.delivery.borrow().as_ref() {
                return d.signals.add_signal(signum).map_err(|e| io_error(e, signum));
            }
            let d = self.open(&[signum]).map_err(|e| io_error(e, signum))?;
            *self.delivery.borrow_mut() = Some(d);
            Ok(())
        }

        fn open(&self, set: &[i32]) -> std::io::Result<Delivery> {
            let mut signals = Signals::new(set)?;
            let token = self.reactor.register(&mut signals, Interest::READABLE, Rc::new(Wakeup(self.me.clone())))?;
            Ok(Delivery { signals, token })
        }

        /// signal-hook cannot take a signal out of a delivery: replace the
        /// delivery by one for the signals still handled. Signals that
        /// arrived at the old one are still delivered (with `lp`).
        fn rebuild(&self, lp: Option<&EventLoop>) {
            let set: Vec<i32> = self.handlers.borrow().keys().copied().collect();
            let new = if set.is_empty() {
                None
            } else {
                match self.open(&set) {
                    Ok(d) => Some(d),
                    // Keep the old delivery: it still covers every handled
                    // signal, and a removed one just finds no handler.
                    Err(_) => return,
                }
            };
            let old = std::mem::replace(&mut *self.delivery.borrow_mut(), new);
            if let Some(mut old) = old {
                let pending: Vec<i32> = old.signals.pending().collect();
                if let Some(lp) = lp {
                    self.schedule(lp, &pending);
                }
                let _ = self.reactor.deregister(&mut old.signals, old.token);
            }
        }

        /// The self-pipe is readable: schedule the pending signals' handles.
        fn deliver(&self, lp: &EventLoop) {
            let pending: Vec<i32> = match self.delivery.borrow_mut().as_mut() {
                Some(d) => d.signals.pending().collect(),
                None => return,
            };
            self.schedule(lp, &pending);
        }

        fn schedule(&self, lp: &EventLoop, signals: &[i32]) {
            let handlers = self.handlers.borrow();
            for signum in signals {
                for h in handlers.get(signum).into_iter().flat_map(Slots::handles) {
                    let _ = lp.schedule_handle(h);
                }
            }
        }

        /// Drops every handler (the loop is closing).
        pub(crate) fn close(&self) {
            let handlers = std::mem::take(&mut *self.handlers.borrow_mut());
            let delivery = self.delivery.borrow_mut().take();
            if let Some(mut d) = delivery {
                let _ = self.reactor.deregister(&mut d.signals, d.token);
            }
            for (&signum, slots) in &handlers {
                global::unsubscribe(signum);
                slots.handles().for_each(Handle::cancel);
            }
        }
    }

    impl Drop for LoopSignals {
        fn drop(&mut self) {
            self.close();
        }
    }

    /// The [`SignalBackend`] of a native loop.
    pub(crate) struct NativeSignals {
        pub(crate) signals: Rc<LoopSignals>,
    }

    impl SignalBackend for NativeSignals {
        fn add_signal_handler(&self, _lp: &EventLoop, signum: i32, handle: Handle) -> Result<(), Error> {
            self.signals.add(signum, Owner::User, handle)
        }

        fn remove_signal_handler(&self, lp: &EventLoop, signum: i32) -> Result<bool, Error> {
            self.signals.remove(Some(lp), signum, Owner::User)
        }
    }
}

#[cfg(not(unix))]
mod unsupported {
    use anyloop_core::backend::SignalBackend;
    use anyloop_core::{Error, EventLoop, Handle};

    const WHY: &str = "this platform has no Unix signals";

    /// Signals on a platform without them: `Unsupported`.
    pub(crate) struct NativeSignals;

    impl SignalBackend for NativeSignals {
        fn add_signal_handler(&self, _lp: &EventLoop, _signum: i32, _handle: Handle) -> Result<(), Error> {
            Err(Error::unsupported("add_signal_handler", WHY))
        }

        fn remove_signal_handler(&self, _lp: &EventLoop, _signum: i32) -> Result<bool, Error> {
            Err(Error::unsupported("remove_signal_handler", WHY))
        }
    }
}
