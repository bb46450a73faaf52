//! Process tuning that must happen before any work: how the allocator hands
//! memory back, transparent huge pages, and the size of the rayon pool that
//! decodes and encodes. One place, so the binary's entry point stays a
//! dispatcher. The figures that chose each setting are in
//! `benchmarks/results/tuning.md`.

use ferry_connectors::pg::PgConfig;

/// Keeps freed memory for reuse instead of handing it back to the OS shortly
/// after it is freed (mimalloc's default). A conversion frees and allocates
/// batch buffers without pause, and handing them back made the kernel fault
/// and zero the same pages again, many times over. Memory stays at the
/// process's peak, which streaming bounds. Only in a build with the
/// `mimalloc` feature: the system allocator (the default) keeps what it
/// needs by its own thresholds, and faulted no more than mimalloc did.
#[cfg(feature = "mimalloc")]
pub fn keep_freed_memory() {
    // `mi_option_purge_delay` (-1: never purge); mimalloc keeps the option
    // numbers stable (deprecated ones keep their slots), v2 and v3 alike.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one integer option, which mimalloc reads at each purge.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

/// Caps the system allocator's arenas at one per core. glibc gives each
/// thread that meets a locked arena a new one, up to eight per core, and
/// each reserves 64 MiB of address space: under an address-space limit
/// (`ulimit -v`, as the hostile-input test runs ferry with 512 MiB) a
/// conversion's threads could reserve enough that the next large block
/// failed and the process aborted, about one run in three. At one arena per
/// core the SF 1 conversion ran at the same speed with 4–7 MB less at its
/// peak (`benchmarks/results/2026-12-07-vm-allocator/`). Only for glibc; a
/// build with the `mimalloc` feature does not use it.
pub fn cap_allocator_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    {
        let arenas = i32::try_from(ferry_engine::ordered::cores().max(2)).unwrap_or(i32::MAX);
        // SAFETY: sets one integer parameter before any thread but this one
        // exists; a refusal (0) leaves glibc's default, so it is ignored.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Turns transparent huge pages off for this process. Where huge pages back
/// the heap (mimalloc, the `mimalloc` feature, asks for them on its arenas;
/// a kernel set to THP `always` gives them to any allocator), the first
/// touch of any byte of a 2 MiB region faults in and zeroes all of it: more
/// resident memory, and, after other processes had churned memory (as in
/// the benchmark suite, or on a busy host), kernel time spent finding huge
/// pages that made small loads and conversions markedly slower. With 4 KiB
/// pages ferry takes more, cheaper faults, and its times no longer depend
/// on what ran before.
pub fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes no pointers; it sets one flag on this
    // process, which the kernel checks at each later page fault. A failure
    // (a kernel without THP) leaves things as they were, so it is ignored.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Sizes the global rayon pool for a load with `streams` COPY streams to
/// `pg` (see [`ferry_engine::load::worker_threads`]: a local server's COPY
/// backends get cores of their own). It takes effect only before the pool's
/// first use, which is why every command calls it before it starts work;
/// later calls do nothing.
pub fn size_worker_pool(pg: &PgConfig, streams: usize) {
    let threads = ferry_engine::load::worker_threads(pg, streams);
    if rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .is_ok()
    {
        tracing::debug!(threads, streams, local = pg.is_local(), "worker threads");
    }
}

#[cfg(test)]
mod tests {
    /// The flag is read back from the kernel (`PR_GET_THP_DISABLE`, Linux
    /// 3.15+), which answers on every kernel this runs on: a kernel that
    /// cannot say fails the test rather than passing it unchecked.
    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_after_the_switch() {
        // SAFETY: PR_GET_THP_DISABLE takes no pointers and returns the flag.
        let flag = || unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        super::no_transparent_huge_pages();
        assert_eq!(flag(), 1, "PR_SET_THP_DISABLE did not stick");
    }
}
