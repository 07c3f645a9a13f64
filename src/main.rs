fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    kycdesk::cli::main()
}

/// glibc gives each thread that allocates an arena of its own (up to 8 per
/// core) and keeps the memory freed in each. SQLite's connection threads,
/// the HTTP workers and tokio's blocking pool each grew one, and `serve`
/// at 1M cases kept ~70 MB of freed pages that way (bench: peak RSS 164 MB
/// with the default, 95 MB with two arenas). An explicit
/// `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter, and runs before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
