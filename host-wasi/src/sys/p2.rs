//! wasip2: waiting in `wasi:io/poll.poll`.
//!
//! One `poll(list<pollable>)` per wait: the pollable of every active
//! registration, plus a `monotonic-clock.subscribe-duration` pollable for
//! the timeout (created per wait, since the duration changes). Pollables
//! are level-triggered and reusable, so a registration keeps its own for
//! as long as it lives.
//!
//! A pollable is a *child* of the resource it came from (a stream, a
//! socket): it must be dropped first, or the runtime traps. The reactor
//! drops sources before the handles that own their parents.

use std::time::Duration;

use anyloop_core::Error;
use wasip2::io::poll::Pollable;

use crate::reactor::Outcome;

/// What a wasip2 registration waits for.
pub(crate) enum Source {
    /// A pollable (of a stream, a socket, a name lookup…).
    Pollable(Pollable),
}

/// One `wasi:io/poll.poll`.
pub(crate) fn poll(sources: &[&Source], timeout: Option<Duration>) -> Result<Outcome, Error> {
    let clock = timeout.map(|t| wasip2::clocks::monotonic_clock::subscribe_duration(super::timeout_nanos(t)));
    let mut list: Vec<&Pollable> = sources
        .iter()
        .map(|s| match s {
            Source::Pollable(p) => p,
        })
        .collect();
    if let Some(c) = &clock {
        list.push(c);
    }
    let n = sources.len();
    let ready =
        wasip2::io::poll::poll(&list).into_iter().filter_map(|i| usize::try_from(i).ok()).filter(|i| *i < n).collect();
    drop(list);
    drop(clock);
    Ok(Outcome { ready, broken: Vec::new() })
}
