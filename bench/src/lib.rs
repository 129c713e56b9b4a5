//! Shared helpers of anyloop's benchmark binaries: process CPU time and
//! a deterministic random generator.

use std::time::Duration;

/// CPU time (user + system) used by this process so far.
#[cfg(unix)]
pub fn process_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Without a process CPU clock, wall time is the best we have.
#[cfg(not(unix))]
pub fn process_cpu() -> Duration {
    use std::sync::OnceLock;
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// xorshift64: the same sequence on every run.
pub fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// The median of a non-empty list.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// CPU time the whole machine spent busy (all cores), from `/proc/stat`.
#[cfg(target_os = "linux")]
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal: busy = all but idle, iowait.
    let f: Vec<u64> = cpu.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let busy = f.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum::<u64>();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_micros(busy * 1_000_000 / hz))
}

/// Waits (at most `max`) until the rest of the machine is quiet: other
/// processes using under 15% of one core over half a second while this one
/// idles. On these shared VMs other tenants' load swings the ratios of a
/// side-by-side benchmark; reps run in quiet spells compare best. Returns
/// whether it was quiet (always true where it cannot tell).
pub fn wait_quiet(max: Duration) -> bool {
    #[cfg(target_os = "linux")]
    {
        let start = std::time::Instant::now();
        loop {
            let (Some(b0), c0) = (machine_busy(), process_cpu()) else { return true };
            let t0 = std::time::Instant::now();
            std::thread::sleep(Duration::from_millis(500));
            let (Some(b1), c1) = (machine_busy(), process_cpu()) else { return true };
            let others = (b1 - b0).saturating_sub(c1 - c0).as_secs_f64() / t0.elapsed().as_secs_f64();
            if others < 0.15 {
                return true;
            }
            if start.elapsed() >= max {
                return false;
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = max;
        true
    }
}
