//! The spec's "Set signal handlers for SIGINT and SIGTERM", written with
//! `run_forever` as in the Python 3.6 version of the spec: the handlers stop
//! the loop.
//!
//! ```sh
//! cargo run --example signals &
//! kill -INT $!        # or -TERM, or Ctrl+C in the foreground
//! ```
//!
//! The handlers run on the loop like any callback (not inside the OS signal
//! handler), so they may call any loop method.

#[cfg(unix)]
fn main() -> Result<(), anyloop::Error> {
    use anyloop::EventLoop;
    use anyloop::host::signal::{SIGINT, SIGTERM};

    fn ask_exit(signame: &str, lp: &EventLoop) {
        println!("got signal {signame}: exit");
        lp.stop();
    }

    let lp = anyloop::new_event_loop()?;
    for (signame, signum) in [("SIGINT", SIGINT), ("SIGTERM", SIGTERM)] {
        lp.add_signal_handler(signum, move |lp| ask_exit(signame, lp))?;
    }

    println!("Event loop running forever, press Ctrl+C to interrupt.");
    println!("pid {}: send SIGINT or SIGTERM to exit.", std::process::id());
    let result = lp.run_forever();
    lp.close()?;
    result
}

#[cfg(not(unix))]
fn main() {
    eprintln!("signals needs Unix signals");
}
