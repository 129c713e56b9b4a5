//! The spec's "Display the current date with call_later()": a callback
//! prints the date every second for 5 seconds, rescheduling itself with
//! `call_later`, then stops the loop.
//!
//! ```sh
//! cargo run --example display_date
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyloop::{EventLoop, Instant};

fn display_date(end_time: Instant, lp: &EventLoop) {
    println!("{}", now_utc());
    if lp.time() + Duration::from_secs(1) < end_time {
        // call_later only fails on a closed loop, and this one is running.
        let _ = lp.call_later(Duration::from_secs(1), move |lp| display_date(end_time, lp));
    } else {
        lp.stop();
    }
}

fn main() -> Result<(), anyloop::Error> {
    let lp = anyloop::new_event_loop()?;

    // Schedule the first call to display_date()
    let end_time = lp.time() + Duration::from_secs(5);
    lp.call_soon(move |lp| display_date(end_time, lp))?;

    // Blocking call interrupted by lp.stop()
    let result = lp.run_forever();
    lp.close()?;
    result
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS.ffffff` (what Python's
/// `datetime.now()` prints, in UTC: the example needs no time-zone data).
fn now_utc() -> String {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_micros()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
