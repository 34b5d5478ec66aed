//! A bound on the requests waiting for a model: past it, requests are turned away at
//! once (503 with `Retry-After`) instead of piling up behind the one model worker.

use docchat_core::{Foreground, Priority};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Admission to one model worker: one request runs, up to `queue` wait.
#[derive(Debug)]
pub struct Admission {
    limit: usize,
    in_flight: AtomicUsize,
    /// Moving average of how long a request holds its place, in milliseconds.
    avg_ms: AtomicU64,
    /// Held in the foreground by every admitted request, so background indexing
    /// pauses while a user waits (absent: requests do not pause it).
    priority: Option<Arc<Priority>>,
}

/// A place in the line; dropping it (the request finished or its client left)
/// frees the place.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    since: Instant,
    _foreground: Option<Foreground>,
}

/// Why a request was turned away, and when to come back.
#[derive(Debug, Clone, Copy)]
pub struct Busy {
    /// Seconds after which a retry has a fair chance.
    pub retry_after_s: u64,
}

impl Admission {
    /// One running request and `queue` waiting ones.
    pub fn new(queue: usize) -> Arc<Self> {
        Self::with_priority(queue, None)
    }

    /// Like [`Admission::new`]; each admitted request holds `priority` in the
    /// foreground until it finishes.
    pub fn with_priority(queue: usize, priority: Option<Arc<Priority>>) -> Arc<Self> {
        Arc::new(Self {
            limit: queue + 1,
            in_flight: AtomicUsize::new(0),
            avg_ms: AtomicU64::new(2_000),
            priority,
        })
    }

    /// Takes a place, or says how long to wait when all are taken.
    pub fn try_enter(self: &Arc<Self>) -> Result<Permit, Busy> {
        let taken = self
            .in_flight
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.limit).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(Permit {
                admission: Arc::clone(self),
                since: Instant::now(),
                _foreground: self.priority.as_ref().map(Priority::foreground),
            }),
            Err(n) => {
                let avg = self.avg_ms.load(Ordering::Relaxed);
                Err(Busy {
                    retry_after_s: (avg * n as u64).div_ceil(1000).max(1),
                })
            }
        }
    }

    /// Requests admitted and not finished.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Most requests admitted at once.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let a = &self.admission;
        let ms = self.since.elapsed().as_millis() as u64;
        let old = a.avg_ms.load(Ordering::Relaxed);
        a.avg_ms.store((old * 3 + ms) / 4, Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_freed_on_drop() {
        let a = Admission::new(2);
        let p1 = a.try_enter().expect("first");
        let _p2 = a.try_enter().expect("second");
        let _p3 = a.try_enter().expect("third");
        let busy = a.try_enter().expect_err("the fourth waits past the bound");
        assert!(busy.retry_after_s >= 1);
        assert_eq!(a.in_flight(), 3);
        drop(p1);
        assert_eq!(a.in_flight(), 2);
        assert!(a.try_enter().is_ok(), "a freed place is taken again");
    }

    #[test]
    fn an_admitted_request_holds_the_foreground_until_it_ends() {
        let p = Priority::new();
        let a = Admission::with_priority(1, Some(Arc::clone(&p)));
        assert!(!p.busy());
        let permit = a.try_enter().expect("admitted");
        assert!(p.busy(), "background work pauses while the request runs");
        drop(permit);
        assert!(!p.busy());
    }
}
