//! The server-wide bound on the memory pack generation may use. Every clone or fetch that makes
//! a pack takes a share of the budget (`[limits] pack_memory_mb`) before it plans, and waits
//! while the shares taken would pass it: a burst of clones queues instead of growing the
//! server. A share is a fixed bound on one pack generation's working memory ([`PACK_SHARE`]);
//! it is returned when the pack is sent (or the request fails).

use std::sync::{Condvar, Mutex};

/// What one pack generation may hold at once: the delta-base cache and object cache of its
/// repository handle (`repository::PACK_CACHE_BYTES`, `OBJECT_CACHE_BYTES`), the entries being
/// copied, and the plan of a history of ~100,000 objects (~200 bytes each). Measured by
/// `scripts/bench-clone-memory.sh`.
pub const PACK_SHARE: u64 = 32 * 1024 * 1024;

/// Shares of a memory budget, handed out in turn.
#[derive(Debug)]
pub struct MemoryBudget {
    capacity: u64,
    in_use: Mutex<u64>,
    freed: Condvar,
}

impl MemoryBudget {
    /// A budget of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        MemoryBudget { capacity, in_use: Mutex::new(0), freed: Condvar::new() }
    }

    /// Take `bytes`, waiting while they would pass the budget. A share larger than the whole
    /// budget is granted once nothing else is held, so every request gets its turn.
    pub fn take(&self, bytes: u64) -> Share<'_> {
        let mut in_use = self.in_use.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while *in_use > 0 && *in_use + bytes > self.capacity {
            in_use = self.freed.wait(in_use).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *in_use += bytes;
        Share { budget: self, bytes }
    }

    /// Bytes handed out now.
    pub fn in_use(&self) -> u64 {
        *self.in_use.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A share of a [`MemoryBudget`], given back when dropped.
#[must_use]
#[derive(Debug)]
pub struct Share<'a> {
    budget: &'a MemoryBudget,
    bytes: u64,
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut in_use = self.budget.in_use.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *in_use -= self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn shares_never_pass_the_budget_and_all_are_served() {
        let budget = Arc::new(MemoryBudget::new(100));
        let peak = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (budget, peak) = (budget.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _share = budget.take(30);
                    peak.fetch_max(budget.in_use(), Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 90, "three shares of 30 fit in 100, never four");
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_share_larger_than_the_budget_waits_for_an_empty_one() {
        let budget = MemoryBudget::new(10);
        let big = budget.take(50);
        assert_eq!(budget.in_use(), 50);
        drop(big);
        let _small = budget.take(5);
        assert_eq!(budget.in_use(), 5);
    }
}
