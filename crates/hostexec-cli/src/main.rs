//! The `hostexec` binary: see the `hostexec_cli` library for what it does.

fn main() -> std::process::ExitCode {
    hostexec_cli::main()
}
