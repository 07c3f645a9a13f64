/// mimalloc for every allocation in the process, SQLite's included (the
/// `override` feature replaces malloc/free too). With glibc's malloc, rows
/// were allocated on SQLite's connection threads and freed on the HTTP
/// workers, and every such free locked the arena it came from: at 16
/// concurrent desk requests on SQLite, malloc's arena locks and the futex
/// hand-offs they caused were the largest cost of a queue page (perf).
/// glibc also kept freed memory per arena, which `M_ARENA_MAX=2` had been
/// set to bound. `no_thp`: mimalloc would otherwise ask for transparent
/// huge pages on its regions, and each touched 2 MiB page counts whole in
/// RSS (idle `serve` 49 MB instead of 22 MB).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    return_freed_memory_at_once();
    kycdesk::cli::main()
}

/// mimalloc hands freed pages back to the system 1 s after they empty by
/// default; at once keeps `serve` within its memory target under bursts
/// (bench at 1M cases: peak RSS 80 MB with the delay, 65 MB without, and
/// the same throughput).
fn return_freed_memory_at_once() {
    // `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (mimalloc 3, as
    // vendored by libmimalloc-sys 0.1.49, pinned in Cargo.lock); the Rust
    // bindings name only the older options.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one allocator option; mimalloc reads it at each purge.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}
