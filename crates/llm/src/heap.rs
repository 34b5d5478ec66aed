//! The C heap (glibc's malloc, which Rust's allocations go through) tuned for a
//! long-running server on a small machine, and memory handed back to the system.
//!
//! The one module of docchat with `unsafe` code: three libc calls, each with its
//! reason below.
#![allow(unsafe_code)]

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

/// Hands the whole pages of the first `values` logits of `ctx` back to the
/// system once they were read: `values` is at most the outputs of the last decode
/// times the vocabulary, all of which llama.cpp's output buffer holds. The mapping
/// stays; the pages read as zeros afterwards.
pub(crate) fn release_read_logits(ctx: &llama_cpp_2::context::LlamaContext<'_>, values: usize) {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let start = ctx.get_logits().as_ptr() as usize;
    let first = start.div_ceil(page) * page;
    let end = (start + values * std::mem::size_of::<f32>()) / page * page;
    if end <= first {
        return;
    }
    // SAFETY: [first, end) is whole pages inside the logits rows of the outputs of
    // the last decode, in the context's output buffer, which llama.cpp allocated
    // (private anonymous memory) for at least that many outputs and keeps until it
    // needs more. MADV_DONTNEED keeps the mapping; the pages read as zeros, which
    // they held after llama.cpp zeroed the buffer.
    let rc = unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not release the unused logits");
    }
}
