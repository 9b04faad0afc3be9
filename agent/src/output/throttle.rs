//! How often a detection reaches the API server. The first detection of a rule in a
//! container is published at once; repeats within the window are counted and published
//! together when it ends, so a shell loop in one pod cannot flood the API server, and nothing
//! is lost: the count says how many there were.
//!
//! The state is bounded: at most `capacity` (rule, container) pairs are remembered, the least
//! recently seen forgotten first (a forgotten pair starts again with an immediate publish).

use hashlink::LruCache;

/// A rule in a container.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub rule: &'static str,
    pub container_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    /// Detections in all, since first seen.
    total: u64,
    /// Of those, not published yet.
    pending: u64,
    last_published_ns: u64,
}

/// What to do with one detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Publish now, with this many in all.
    Publish { total: u64 },
    /// Counted; [`Throttle::due`] will publish it.
    Held,
}

pub struct Throttle {
    window_ns: u64,
    states: LruCache<Key, State>,
}

impl Throttle {
    pub fn new(window_ns: u64, capacity: usize) -> Throttle {
        Throttle {
            window_ns,
            states: LruCache::new(capacity.max(1)),
        }
    }

    pub fn observe(&mut self, key: Key, now_ns: u64) -> Verdict {
        match self.states.get_mut(&key) {
            Some(state) => {
                state.total += 1;
                if now_ns.saturating_sub(state.last_published_ns) >= self.window_ns {
                    state.pending = 0;
                    state.last_published_ns = now_ns;
                    Verdict::Publish { total: state.total }
                } else {
                    state.pending += 1;
                    Verdict::Held
                }
            }
            None => {
                self.states.insert(
                    key,
                    State {
                        total: 1,
                        pending: 0,
                        last_published_ns: now_ns,
                    },
                );
                Verdict::Publish { total: 1 }
            }
        }
    }

    /// The pairs whose window ended with detections not yet published, with their totals;
    /// they count as published now.
    pub fn due(&mut self, now_ns: u64) -> Vec<(Key, u64)> {
        let mut due = Vec::new();
        for (key, state) in self.states.iter_mut() {
            if state.pending > 0 && now_ns.saturating_sub(state.last_published_ns) >= self.window_ns
            {
                state.pending = 0;
                state.last_published_ns = now_ns;
                due.push((key.clone(), state.total));
            }
        }
        due.sort();
        due
    }

    pub fn len(&self) -> usize {
        self.states.len()
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn key(rule: &'static str, c: &str) -> Key {
        Key {
            rule,
            container_id: c.into(),
        }
    }

    #[test]
    fn the_first_is_published_repeats_are_counted_and_published_once_per_window() {
        let mut t = Throttle::new(10 * S, 16);
        let shell = key("runtime.terminalShell", "c1");
        assert_eq!(t.observe(shell.clone(), 0), Verdict::Publish { total: 1 });
        for i in 1..=5 {
            assert_eq!(t.observe(shell.clone(), i * S), Verdict::Held);
        }
        assert_eq!(t.due(9 * S), [], "the window is not over");
        assert_eq!(t.due(10 * S), [(shell.clone(), 6)]);
        assert_eq!(t.due(30 * S), [], "nothing new");
        // after a quiet window, the next one goes out at once with the running total
        assert_eq!(
            t.observe(shell.clone(), 31 * S),
            Verdict::Publish { total: 7 }
        );
    }

    #[test]
    fn rules_and_containers_are_throttled_apart() {
        let mut t = Throttle::new(10 * S, 16);
        assert_eq!(t.observe(key("a", "c1"), 0), Verdict::Publish { total: 1 });
        assert_eq!(t.observe(key("b", "c1"), 0), Verdict::Publish { total: 1 });
        assert_eq!(t.observe(key("a", "c2"), 0), Verdict::Publish { total: 1 });
        assert_eq!(t.observe(key("a", "c1"), 1), Verdict::Held);
        assert_eq!(t.due(10 * S), [(key("a", "c1"), 2)]);
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Throttle::new(10 * S, 2);
        for c in ["c1", "c2", "c3"] {
            t.observe(key("a", c), 0);
        }
        assert_eq!(t.len(), 2);
        // c1 was forgotten: it starts again with a publish
        assert_eq!(t.observe(key("a", "c1"), 1), Verdict::Publish { total: 1 });
    }
}
