//! Debug mode: the `ANYLOOP_DEBUG` default, slow-callback warnings, source
//! locations in exception contexts. One test: it sets an environment
//! variable and installs a global logger, which must not race with others.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

use anyloop_core::testing::VirtualClock;
use anyloop_core::{EventLoop, Host, HostWaker, Instant, NoopWaker};

static LOGGED: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Capture;
impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LOGGED.lock().unwrap().push((record.level(), record.args().to_string()));
    }
    fn flush(&self) {}
}

/// A virtual clock where each `now()` advances 30 ms: every callback
/// "takes" at least that long.
#[derive(Default)]
struct SlowClock(std::cell::Cell<u64>);
impl Host for SlowClock {
    fn now(&self) -> Instant {
        self.0.set(self.0.get() + 30_000_000);
        Instant::from_nanos(self.0.get())
    }
    fn wait(&self, _: &EventLoop, _: Option<Duration>) -> Result<(), anyloop_core::Error> {
        Ok(())
    }
    fn remote_waker(&self) -> Result<std::sync::Arc<dyn HostWaker>, anyloop_core::Error> {
        Ok(std::sync::Arc::new(NoopWaker))
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[test]
fn debug_mode() {
    // Default from the environment.
    assert!(!EventLoop::new(VirtualClock::new()).get_debug());
    // SAFETY: this binary has a single test, so no other thread reads the
    // environment concurrently.
    unsafe { std::env::set_var("ANYLOOP_DEBUG", "1") };
    assert!(EventLoop::new(VirtualClock::new()).get_debug());
    unsafe { std::env::set_var("ANYLOOP_DEBUG", "") };
    assert!(!EventLoop::new(VirtualClock::new()).get_debug());
    unsafe { std::env::remove_var("ANYLOOP_DEBUG") };

    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    // Slow callbacks are reported in debug mode only.
    let lp = EventLoop::new(SlowClock::default());
    assert_eq!(lp.slow_callback_duration(), Duration::from_millis(100));
    lp.set_slow_callback_duration(Duration::from_millis(20));
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert!(LOGGED.lock().unwrap().is_empty(), "no timing outside debug mode");
    lp.set_debug(true);
    assert!(lp.get_debug());
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    {
        let logged = LOGGED.lock().unwrap();
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert_eq!(logged[0].0, log::Level::Warn);
        assert!(logged[0].1.starts_with("Executing <Handle "), "{}", logged[0].1);
        assert!(logged[0].1.contains("debug.rs:"), "names where it was scheduled: {}", logged[0].1);
        assert!(logged[0].1.ends_with(" seconds"), "{}", logged[0].1);
    }
    // Below the threshold: silent.
    lp.set_slow_callback_duration(Duration::from_secs(10));
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    assert_eq!(LOGGED.lock().unwrap().len(), 1);

    // In debug mode, contexts carry the source location of the handle.
    let lp = EventLoop::new(VirtualClock::new());
    lp.set_debug(true);
    let seen = Rc::new(RefCell::new(None));
    let s = seen.clone();
    lp.set_exception_handler(Some(Rc::new(move |_, ctx| *s.borrow_mut() = ctx.source_location)));
    lp.call_soon(|_| panic!("located")).unwrap();
    let line = line!() - 1;
    lp.call_soon(|lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    let loc = seen.borrow().expect("a location");
    assert!(loc.file().ends_with("debug.rs") && loc.line() == line, "{loc:?}");

    // The default exception handler logs at error level.
    lp.set_exception_handler(None);
    lp.call_exception_handler(&anyloop_core::ExceptionContext::new("reported"));
    let logged = LOGGED.lock().unwrap();
    assert!(logged.iter().any(|(lvl, m)| *lvl == log::Level::Error && m == "reported"), "{logged:?}");
}
