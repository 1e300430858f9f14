//! Failed sign-in throttling: after `max` failures within `window` for one key (an address,
//! a login), that key is refused until the oldest failure leaves the window. The caller
//! passes the time, so this stays pure and testable.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

pub struct Throttle {
    max: usize,
    window: Duration,
    /// Keys remembered at most; an attacker cycling through names cannot grow this forever.
    capacity: usize,
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Throttle {
    pub fn new(max: usize, window: Duration) -> Throttle {
        Throttle {
            max,
            window,
            capacity: 100_000,
            failures: HashMap::new(),
        }
    }

    /// Whether any of `keys` has had too many recent failures.
    pub fn blocked(&mut self, keys: &[&str], now: Instant) -> bool {
        let window = self.window;
        keys.iter().any(|key| {
            self.failures.get_mut(*key).is_some_and(|times| {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > window)
                {
                    times.pop_front();
                }
                times.len() >= self.max
            })
        })
    }

    /// Record a failure against each of `keys`.
    pub fn failed(&mut self, keys: &[&str], now: Instant) {
        if self.failures.len() >= self.capacity {
            let window = self.window;
            self.failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) <= window)
            });
        }
        for key in keys {
            if self.failures.len() < self.capacity || self.failures.contains_key(*key) {
                self.failures
                    .entry((*key).to_owned())
                    .or_default()
                    .push_back(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_each_key_after_max_failures_until_the_window_passes() {
        let mut t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..2 {
            t.failed(&["ip:10.0.0.1", "user:payroll"], start);
        }
        assert!(!t.blocked(&["ip:10.0.0.1", "user:payroll"], start));
        t.failed(&["ip:10.0.0.1", "user:payroll"], start);
        assert!(
            t.blocked(&["ip:10.0.0.1", "user:other"], start),
            "by address"
        );
        assert!(
            t.blocked(&["ip:10.0.0.2", "user:payroll"], start),
            "by login"
        );
        assert!(!t.blocked(&["ip:10.0.0.2", "user:other"], start));
        let later = start + Duration::from_secs(61);
        assert!(
            !t.blocked(&["ip:10.0.0.1", "user:payroll"], later),
            "the window passed"
        );
    }
}
