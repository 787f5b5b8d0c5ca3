//! `cargo xtask`: the project's own tasks.
//!
//! - `cargo xtask ci`: the CI step list that `.ci/run` runs — fmt, clippy, lint policy, doc,
//!   MSRV, feature builds, publish dry run, `cargo test --workspace`, the demo (see [`ci`]).
//! - `cargo xtask demo`: the guided demo — the real `hostexec` binary against a sandbox host,
//!   every step checked (`--fake`: the fake backend's tour, which is also what runs without
//!   CAP_SYS_ADMIN).
//! - `cargo xtask e2e [--bin PATH]`: the `hostexec` binary in a real runc container in the
//!   DaemonSet shape of docs/deploy.md, against a simulated node (see [`e2e`]).
//! - `cargo xtask bench [--quick] [FILTER]`: runs the criterion benchmarks of hostexec-nsenter
//!   and hostexec-mount and writes the benchmark table, docs/BENCHMARKS.md.
//! - `cargo xtask man [DIR]`: the man pages of `hostexec` and its subcommands (clap_mangen),
//!   into DIR (default `target/man`).
//! - `cargo xtask fuzz [--long]`: the property-based fuzzers (resolvers against GNU realpath
//!   and the kernel, the mountinfo parser) with large case counts; not part of `ci`.

use std::process::{Command, ExitCode};

mod bench;
mod ci;
mod demo;
mod e2e;
mod fake_demo;
mod fuzz;
mod man;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::ci(),
        Some("demo") => match args.get(1).map(String::as_str) {
            None => demo::demo(false),
            Some("--fake") => demo::demo(true),
            Some(other) => {
                eprintln!(
                    "xtask demo: unknown option {other:?} (usage: cargo xtask demo [--fake])"
                );
                return ExitCode::from(2);
            }
        },
        Some("e2e") => e2e::e2e(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("man") => man::man(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci|demo [--fake]|e2e [--bin PATH]|bench [--quick] [FILTER]|fuzz [--long]|man [DIR]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("+ cargo {}", args.join(" "));
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}
