//! Helpers shared by the benches that print their own figures next to criterion's.
#![allow(dead_code)] // each bench uses only some of these

/// `name` from the environment as a number, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// CPU time of this thread in seconds (Linux schedstat; None elsewhere). On the shared
/// machine wall-clock QPS depends on the other processes; CPU-time QPS much less so.
pub fn thread_cpu() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}
