//! Retry delays for a reconciler's `error_policy`, per object: one object that keeps failing
//! waits longer and longer without slowing the others, and a success starts it afresh.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The delay after `failures` consecutive failures: 1 s, 2 s, 4 s … at most `max`.
pub fn delay(failures: u32, max: Duration) -> Duration {
    let secs = 1u64
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(max)
}

/// Consecutive failures per object (by name), for [`delay`].
#[derive(Debug)]
pub struct PerObject {
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl PerObject {
    /// Delays doubling from 1 s, at most `max`.
    pub fn new(max: Duration) -> PerObject {
        PerObject {
            max,
            failures: Mutex::default(),
        }
    }

    /// Count one more failure of `name`; the delay before its retry.
    pub fn failed(&self, name: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(name.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        delay(*n, self.max)
    }

    /// `name` succeeded: its next failure waits 1 s again.
    pub fn succeeded(&self, name: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let max = Duration::from_secs(300);
        // (failures, delay in seconds)
        let table = [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 4),
            (9, 256),
            (10, 300),
            (64, 300),
            (65, 300),
            (u32::MAX, 300),
        ];
        for (failures, secs) in table {
            assert_eq!(
                delay(failures, max),
                Duration::from_secs(secs),
                "{failures}"
            );
        }
    }

    #[test]
    fn each_object_backs_off_alone_and_starts_afresh_after_a_success() {
        let b = PerObject::new(Duration::from_secs(300));
        assert_eq!(b.failed("a"), Duration::from_secs(1));
        assert_eq!(b.failed("a"), Duration::from_secs(2));
        assert_eq!(b.failed("b"), Duration::from_secs(1));
        assert_eq!(b.failed("a"), Duration::from_secs(4));
        b.succeeded("a");
        assert_eq!(b.failed("a"), Duration::from_secs(1));
        assert_eq!(b.failed("b"), Duration::from_secs(2));
    }
}
