//! The C heap (glibc's malloc, which Rust's allocations go through) tuned for a
//! long-running server on a small machine.

/// One malloc arena per core. glibc's default of eight per core lets each of the
/// many threads that allocate (the runtime's, the database's, the models') keep a
/// heap of its own, and the memory freed in each stays resident: 24 MB more under
/// the mixed load of `docchat bench load`. A `MALLOC_ARENA_MAX` set by the user wins.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let arenas = i32::try_from(cores.max(2)).unwrap_or(i32::MAX);
        // SAFETY: called before any other thread starts; mallopt only sets a limit.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Hands the heap memory freed by a burst of work (a folder indexed, the search
/// indexes rebuilt) back to the system, so a server that goes back to answering
/// questions shrinks back too.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
