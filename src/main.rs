//! The `cosync` binary: parses arguments, runs the command, exits with its status.
//!
//! The allocator is mimalloc: the sync service moves many small JSON values
//! (records, run records, templates' inputs) between threads, and glibc's
//! malloc spent a quarter of `cosync bench`'s CPU time in allocation and
//! consolidation (see BENCHMARKS.md).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cosync::cli::main()
}
