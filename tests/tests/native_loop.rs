//! The scheduling core on the real native host: blocking in the OS,
//! cross-thread wake-ups, real-clock timers, idle CPU.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use anyloop::EventLoop;

fn new_loop() -> EventLoop {
    anyloop::new_event_loop().expect("a native loop")
}

#[test]
fn call_soon_threadsafe_wakes_a_loop_blocked_without_timers() {
    let lp = new_loop();
    let remote = lp.handle().unwrap();
    let t0 = StdInstant::now();
    let th = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        remote.call_soon_threadsafe(|lp| lp.stop()).unwrap();
    });
    lp.run_forever().unwrap();
    let waited = t0.elapsed();
    th.join().unwrap();
    assert!(waited >= Duration::from_millis(100), "returned before the wake-up: {waited:?}");
    assert!(waited < Duration::from_secs(5), "the wake-up did not interrupt the wait: {waited:?}");
    lp.close().unwrap();
}

#[test]
fn callbacks_from_many_threads_all_run_once_in_per_thread_order() {
    let lp = new_loop();
    let remote = lp.handle().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let remaining = Arc::new(AtomicUsize::new(4 * 2500));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let remote = remote.clone();
            let seen = seen.clone();
            let remaining = remaining.clone();
            std::thread::spawn(move || {
                for i in 0..2500 {
                    let seen = seen.clone();
                    let remaining = remaining.clone();
                    remote
                        .call_soon_threadsafe(move |lp| {
                            seen.lock().unwrap().push((t, i));
                            if remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
                                lp.stop();
                            }
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    lp.run_forever().unwrap();
    for th in threads {
        th.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10_000);
    for t in 0..4 {
        let mine: Vec<_> = seen.iter().filter(|(tt, _)| *tt == t).map(|(_, i)| *i).collect();
        assert_eq!(mine, (0..2500).collect::<Vec<_>>(), "thread {t} out of order");
    }
    lp.close().unwrap();
}

#[test]
fn a_task_woken_from_another_thread_wakes_the_blocked_loop() {
    let lp = new_loop();
    let out = lp.run_until_complete(async {
        let slot = Arc::new(Mutex::new(None::<&str>));
        let s = slot.clone();
        let mut started = false;
        std::future::poll_fn(move |cx| {
            if let Some(v) = s.lock().unwrap().take() {
                return std::task::Poll::Ready(v);
            }
            if !started {
                started = true;
                let waker = cx.waker().clone();
                let s = s.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    *s.lock().unwrap() = Some("from a thread");
                    waker.wake();
                });
            }
            std::task::Poll::Pending
        })
        .await
    });
    assert_eq!(out.unwrap(), "from a thread");
    lp.close().unwrap();
}

#[test]
fn timers_never_fire_early_on_the_real_clock() {
    let lp = new_loop();
    let fired = Arc::new(Mutex::new(Vec::new()));
    let t0 = StdInstant::now();
    for ms in [1u64, 7, 3, 15, 0, 30] {
        let fired = fired.clone();
        lp.call_later(Duration::from_millis(ms), move |_| fired.lock().unwrap().push((ms, t0.elapsed()))).unwrap();
    }
    lp.call_later(Duration::from_millis(40), |lp| lp.stop()).unwrap();
    lp.run_forever().unwrap();
    let fired = fired.lock().unwrap();
    let order: Vec<u64> = fired.iter().map(|f| f.0).collect();
    assert_eq!(order, [0, 1, 3, 7, 15, 30]);
    for (ms, at) in fired.iter() {
        assert!(*at >= Duration::from_millis(*ms), "{ms} ms timer fired after {at:?}");
    }
    lp.close().unwrap();
}

#[test]
fn loop_time_follows_the_monotonic_clock() {
    let lp = new_loop();
    let a = lp.time();
    std::thread::sleep(Duration::from_millis(20));
    let b = lp.time();
    assert!(b - a >= Duration::from_millis(20));
    assert!(b - a < Duration::from_secs(5));
    assert!((anyloop::Instant::from_std(std::time::Instant::now()) - b) < Duration::from_secs(5));
}

/// CPU time used by the calling thread.
#[cfg(unix)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(unix)]
#[test]
fn an_idle_loop_with_one_two_second_timer_sleeps_in_the_kernel() {
    let lp = new_loop();
    lp.call_later(Duration::from_secs(2), |lp| lp.stop()).unwrap();
    let cpu0 = thread_cpu();
    let t0 = StdInstant::now();
    lp.run_forever().unwrap();
    let wall = t0.elapsed();
    let cpu = thread_cpu() - cpu0;
    assert!(wall >= Duration::from_secs(2));
    // The bar is 5% of a core; a loop that sleeps in epoll uses ~0.
    assert!(cpu < wall / 20, "idle loop used {cpu:?} of CPU in {wall:?}");
    lp.close().unwrap();
}

/// A loop kept busy by a self-rescheduling callback still delivers I/O:
/// the selector is polled at least every other iteration.
#[cfg(unix)]
#[test]
fn io_is_delivered_while_the_loop_is_busy() {
    use std::cell::Cell;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;

    fn spin(lp: &EventLoop, n: Rc<Cell<u64>>) {
        n.set(n.get() + 1);
        let _ = lp.call_soon(move |lp| spin(lp, n));
    }

    let lp = new_loop();
    let (mut r, mut w) = UnixStream::pair().unwrap();
    let fd = r.as_raw_fd();
    let iterations = Rc::new(Cell::new(0u64));
    spin(&lp, iterations.clone());
    let at = Rc::new(Cell::new(None));
    let (it, a) = (iterations.clone(), at.clone());
    lp.add_reader(fd, move |lp| {
        let mut buf = [0u8; 8];
        let _ = r.read(&mut buf);
        a.set(Some(it.get()));
        lp.stop();
    })
    .unwrap();
    let written = iterations.get();
    w.write_all(b"x").unwrap();
    lp.run_forever().unwrap();
    let seen = at.get().expect("the reader ran");
    assert!(seen - written <= 3, "I/O waited {} busy iterations", seen - written);
    lp.close().unwrap();
}
