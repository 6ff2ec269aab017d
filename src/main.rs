//! The `cosync` binary: parses arguments, runs the command, exits with its status.

fn main() -> std::process::ExitCode {
    cosync::cli::main()
}
