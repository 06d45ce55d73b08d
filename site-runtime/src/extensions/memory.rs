//! A memory budget per script call. Rhai checks the size of strings, arrays and maps when they
//! pass through a function or are assigned as a whole, but not a map growing key by key
//! (`m[k] = v`), so sizes alone do not bound what a call allocates. [`CountingAllocator`] counts
//! the bytes allocated, minus those freed, on the thread of a running call; the sandbox's
//! progress callback stops the call once its budget is spent.
//!
//! The server binary installs it as the global allocator (and so do this crate's tests); without
//! it the budget is never spent and only Rhai's own limits apply.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    /// Bytes the running call may still allocate; `None` outside calls.
    static BUDGET: Cell<Option<isize>> = const { Cell::new(None) };
}

/// An allocator (the system's unless another is given), counting allocations against the budget
/// of a running script call.
pub struct CountingAllocator<A = System>(pub A);

fn charge(bytes: isize) {
    // `try_with`: the thread may be tearing down its locals.
    let _ = BUDGET.try_with(|b| {
        if let Some(left) = b.get() {
            b.set(Some(left.saturating_sub(bytes)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the inner allocator; the bookkeeping touches only
// a `const`-initialized thread-local `Cell`, which never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        charge(layout.size() as isize);
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        charge(layout.size() as isize);
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        charge(-(layout.size() as isize));
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        charge(new_size as isize - layout.size() as isize);
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

/// Start counting on this thread with `bytes` to spend; returns the previous budget.
pub(crate) fn start(bytes: usize) -> Option<isize> {
    BUDGET.with(|b| b.replace(Some(bytes.min(isize::MAX as usize) as isize)))
}

/// Restore the budget [`start`] returned.
pub(crate) fn stop(previous: Option<isize>) {
    BUDGET.with(|b| b.set(previous));
}

/// Whether the running call has spent its budget.
pub(crate) fn exhausted() -> bool {
    BUDGET.with(|b| b.get().is_some_and(|left| left < 0))
}
