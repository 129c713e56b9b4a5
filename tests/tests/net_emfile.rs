//! A server out of file descriptors: accept fails with EMFILE, the error
//! goes to the exception handler, the server pauses accepting for a second
//! instead of spinning, then takes the waiting connections.
//!
//! Its own test binary: it lowers RLIMIT_NOFILE for the whole process.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyloop::net::{Addr, ServerOptions};
use anyloop::{BaseProtocol, ErrorKind, Protocol, get_running_loop};
use anyloop_tests::block_on;
use anyloop_tests::sleep_ms;

/// What the exception handler saw: message, error kind, when.
type Report = (String, Option<ErrorKind>, Instant);

struct Quiet;
impl BaseProtocol for Quiet {}
impl Protocol for Quiet {
    fn data_received(&mut self, _: &[u8]) {}
}

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The limit that leaves exactly `n` descriptor numbers free: the kernel
/// hands out the lowest free number, and RLIMIT_NOFILE caps the number
/// (descriptors already open above it stay valid).
fn limit_leaving(n: usize) -> u64 {
    let listed: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The listing's own directory descriptor is closed by now.
    let open: std::collections::HashSet<u64> =
        listed.into_iter().filter(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok()).collect();
    (0u64..).filter(|fd| !open.contains(fd)).nth(n - 1).unwrap() + 1
}

fn set_nofile(soft: libc::rlim_t) -> libc::rlimit {
    // SAFETY: plain get/setrlimit calls with valid structs.
    unsafe {
        let mut old: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let new = libc::rlimit { rlim_cur: soft, rlim_max: old.rlim_max };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &new), 0);
        old
    }
}

#[test]
fn accept_backs_off_on_emfile_and_recovers() {
    const CLIENTS: usize = 6;
    let lp = anyloop::new_event_loop().unwrap();
    let errors: Rc<RefCell<Vec<Report>>> = Rc::default();
    let e2 = errors.clone();
    lp.set_exception_handler(Some(Rc::new(move |_, ctx| {
        e2.borrow_mut().push((ctx.message.clone(), ctx.exception.as_ref().map(|e| e.kind()), Instant::now()));
    })));
    let accepted = Rc::new(Cell::new(0usize));
    let a2 = accepted.clone();
    let server = block_on(&lp, Duration::from_secs(10), async move {
        let lp = get_running_loop().unwrap();
        lp.create_server(
            move || {
                a2.set(a2.get() + 1);
                Quiet
            },
            Some("127.0.0.1"),
            0,
            ServerOptions::default(),
        )
        .await
        .unwrap()
    });
    let Some(Addr::Ip(addr)) = server.sockets().first().cloned() else { panic!() };
    // The kernel completes these handshakes into the backlog at once; the
    // loop is not running, so nothing is accepted yet.
    let clients: Vec<_> = (0..CLIENTS).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();

    // Leave room for exactly two more descriptors.
    let free = 2;
    let old = set_nofile(limit_leaving(free));

    let cpu0 = cpu_time();
    block_on(&lp, Duration::from_secs(10), sleep_ms(400));
    let cpu = cpu_time() - cpu0;
    set_nofile(old.rlim_cur);

    assert_eq!(accepted.get(), free, "accepted before running out");
    {
        let errs = errors.borrow();
        assert_eq!(errs.len(), 1, "one report, no retry storm: {errs:?}");
        assert_eq!(errs[0].0, "socket.accept() out of system resource");
        assert_eq!(errs[0].1, Some(ErrorKind::TooManyOpenFiles));
    }
    assert!(cpu < Duration::from_millis(150), "the server spun: {cpu:?} of CPU in 400 ms");
    assert!(server.is_serving());

    // With descriptors back, the waiting connections are accepted after the pause.
    let first_error = errors.borrow()[0].2;
    let a3 = accepted.clone();
    block_on(&lp, Duration::from_secs(10), async move {
        while a3.get() < CLIENTS {
            sleep_ms(10).await;
        }
    });
    let waited = first_error.elapsed();
    assert!(waited >= Duration::from_millis(900), "accepting resumed after {waited:?}");
    assert_eq!(errors.borrow().len(), 1);
    drop(clients);
    server.close();
    lp.close().unwrap();
}
