//! Who gets the CPU first: a user waiting for an answer, before background indexing.
//!
//! On a laptop with a few cores, generation and embedding that run at the same time
//! each get half the machine, and the user's answer crawls while a folder is being
//! indexed. Work done for a user holds a [`Foreground`] guard for as long as the user
//! waits; background work calls [`Priority::wait_turn`] between small steps and
//! pauses while any guard is held.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The shared count of foreground work in progress.
#[derive(Debug, Default)]
pub struct Priority {
    active: Mutex<usize>,
    changed: Condvar,
}

/// Held while a user waits; dropping it lets background work go on.
#[derive(Debug)]
#[must_use = "background work only yields while the guard is held"]
pub struct Foreground {
    priority: Arc<Priority>,
}

impl Priority {
    /// A new count with nothing in the foreground.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Marks foreground work until the guard is dropped.
    pub fn foreground(self: &Arc<Self>) -> Foreground {
        *self.active.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Foreground {
            priority: Arc::clone(self),
        }
    }

    /// Whether foreground work is in progress.
    pub fn busy(&self) -> bool {
        *self.active.lock().unwrap_or_else(PoisonError::into_inner) > 0
    }

    /// Waits until no foreground work is in progress, or at most `timeout`; returns
    /// whether background work may go on. Background work that has other things to
    /// watch meanwhile (a queue of foreground requests) waits in short steps.
    pub fn wait_turn(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        while *active > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            active = self
                .changed
                .wait_timeout(active, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Drop for Foreground {
    fn drop(&mut self) {
        let p = &self.priority;
        let mut active = p.active.lock().unwrap_or_else(PoisonError::into_inner);
        *active = active.saturating_sub(1);
        if *active == 0 {
            p.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_waits_while_a_guard_is_held_and_goes_on_when_it_drops() {
        let p = Priority::new();
        assert!(p.wait_turn(Duration::ZERO), "idle: background goes on");
        let a = p.foreground();
        let b = p.foreground();
        assert!(p.busy());
        assert!(
            !p.wait_turn(Duration::from_millis(5)),
            "held: background waits"
        );
        drop(a);
        assert!(p.busy(), "one guard is still held");
        let waiter = {
            let p = Arc::clone(&p);
            std::thread::spawn(move || p.wait_turn(Duration::from_secs(30)))
        };
        drop(b);
        assert!(waiter.join().expect("waiter"), "woken when the last drops");
        assert!(!p.busy());
    }
}
