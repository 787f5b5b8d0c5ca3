//! `cargo xtask fuzz [--long]`: the project's property-based fuzzers with large case counts.
//!
//! The fuzzers are ordinary proptest tests that read `PROPTEST_CASES`; `cargo test` runs them
//! at small counts, this runs them at large ones: a CI-sized run by default (under about three
//! minutes on 2 cores), ten times that with `--long`. Each suite names its tests exactly
//! (`--exact`), and the run fails if libtest did not run every one of them, so a renamed test
//! cannot silently drop out of the fuzz run.
//!
//! hostexec-nsenter's `tests/resolve_fuzz.rs` runs behind [`nsenter_fuzz_is_safe`]: its tree
//! builder used to populate the sandbox through `/proc/PID/root/...` paths with std::fs, which
//! follows the symlinks the fuzzer itself generates (an absolute link resolves against *our*
//! root there), so at a large case count it could create files outside its sandbox.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

/// One test binary's fuzzers.
#[derive(Debug)]
struct Suite {
    package: &'static str,
    /// Which test target: `--lib` or `--test NAME`.
    target: &'static [&'static str],
    /// Exact libtest names, with how many cases each runs at a given PROPTEST_CASES.
    tests: &'static [(&'static str, Cases)],
    short_cases: u32,
    long_cases: u32,
    /// Why the suite may not run now, if it may not.
    gate: Option<fn() -> Result<(), String>>,
}

/// How a test turns PROPTEST_CASES into its own case count.
#[derive(Clone, Copy, Debug)]
enum Cases {
    /// Exactly PROPTEST_CASES.
    Same,
    /// PROPTEST_CASES / 8 + 1 (resolve_fuzz's nsenter-binary launcher run).
    EighthPlusOne,
}

impl Cases {
    fn of(self, n: u32) -> u32 {
        match self {
            Cases::Same => n,
            Cases::EighthPlusOne => n / 8 + 1,
        }
    }
}

/// Case counts are sized from debug-build timings on the 2 shared cores: a short run took
/// 154 s in all (rootfs 42 s, fake 11 s, mount 1 + 11 + 9 s, nsenter 79 s), more under heavy
/// load. `--long` is ten times that.
const SUITES: &[Suite] = &[
    Suite {
        package: "hostexec-rootfs",
        target: &["--lib"],
        tests: &[(
            "fuzz::differential_against_gnu_realpath_and_the_kernel",
            Cases::Same,
        )],
        short_cases: 800,
        long_cases: 8_000,
        gate: None,
    },
    Suite {
        package: "hostexec-fake",
        target: &["--test", "realpath_oracle"],
        tests: &[
            ("relative_trees_agree_with_gnu_realpath", Cases::Same),
            (
                "absolute_and_climbing_links_stay_in_the_fake_root",
                Cases::Same,
            ),
        ],
        short_cases: 120,
        long_cases: 1_200,
        gate: None,
    },
    // The mountinfo proptests share one PROPTEST_CASES per run, and their cost per case
    // differs by two orders of magnitude, hence three runs.
    Suite {
        package: "hostexec-mount",
        target: &["--test", "mountinfo_parse"],
        tests: &[
            ("unescape_inverts_escape", Cases::Same),
            ("mutated_real_lines_never_panic", Cases::Same),
        ],
        short_cases: 100_000,
        long_cases: 1_000_000,
        gate: None,
    },
    Suite {
        package: "hostexec-mount",
        target: &["--test", "mountinfo_parse"],
        tests: &[
            ("mountinfo_round_trips", Cases::Same),
            ("proc_mounts_round_trips", Cases::Same),
        ],
        short_cases: 3_000,
        long_cases: 30_000,
        gate: None,
    },
    Suite {
        package: "hostexec-mount",
        target: &["--test", "mountinfo_parse"],
        tests: &[("arbitrary_bytes_never_panic", Cases::Same)],
        short_cases: 1_000,
        long_cases: 10_000,
        gate: None,
    },
    Suite {
        package: "hostexec-nsenter",
        target: &["--test", "resolve_fuzz"],
        tests: &[
            (
                "resolution_matches_gnu_realpath_and_the_kernel",
                Cases::Same,
            ),
            (
                "resolution_matches_with_the_nsenter_binary_launcher",
                Cases::EighthPlusOne,
            ),
        ],
        short_cases: 600,
        long_cases: 6_000,
        gate: Some(nsenter_fuzz_is_safe),
    },
];

/// Calls that reach a sandbox path through `/proc/PID/root` with the kernel following every
/// symlink on the way. resolve_fuzz's `build()` must make none of them: it must populate trees
/// only through the SandboxHost populate helpers.
const LINK_FOLLOWING_CALLS: &[&str] = &[
    "std::fs::",
    "fs::create_dir",
    "fs::write",
    "fs::File",
    "os::unix::fs::symlink(",
    "sb.local(",
];

/// hostexec-nsenter's own proof that the populate helpers never follow a link out of the
/// sandbox (links to `/`, to an outside directory, `../..` chains; onto a link).
const HELPERS_PROOF: Suite = Suite {
    package: "hostexec-nsenter",
    target: &["--test", "sandbox"],
    tests: &[(
        "populate_helpers_never_follow_links_out_of_the_sandbox",
        Cases::Same,
    )],
    short_cases: 1,
    long_cases: 1,
    gate: None,
};

/// resolve_fuzz builds trees full of links (absolute ones, `..` chains), and a later entry's
/// parent path may run through an earlier entry's link, so a builder that lets the kernel
/// follow links writes wherever they point: into the real filesystem, outside the sandbox's
/// tmpfs. It may run only when both hold, checked now:
/// 1. its `fn build` (read from the source) makes none of [`LINK_FOLLOWING_CALLS`], so every
///    entry is created by a SandboxHost populate helper;
/// 2. those helpers' no-follow test ([`HELPERS_PROOF`]) passes in this same run.
///
/// (Until commit a4be415 the helpers were std::fs calls on `/proc/PID/root/...` paths and
/// this gate stayed shut.)
fn nsenter_fuzz_is_safe() -> Result<(), String> {
    let file = crate::bench::workspace_root().join("crates/hostexec-nsenter/tests/resolve_fuzz.rs");
    let src = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let body = fn_body(&src, "fn build(")
        .ok_or_else(|| format!("no `fn build(` in {}", file.display()))?;
    let found: Vec<&str> = LINK_FOLLOWING_CALLS
        .iter()
        .copied()
        .filter(|c| body.contains(c))
        .collect();
    if !found.is_empty() {
        return Err(format!(
            "its build() populates trees with calls that follow symlinks ({}): at large case \
             counts it could write outside its sandbox; see xtask/src/fuzz.rs",
            found.join(", ")
        ));
    }
    run_suite(&HELPERS_PROOF, 1).map(|_| ()).map_err(|e| {
        format!(
            "the populate helpers' no-follow test (hostexec-nsenter tests/sandbox.rs {}) did \
             not pass, so the fuzzer's trees could be written through links: {e}",
            HELPERS_PROOF.tests[0].0
        )
    })
}

/// The text between the braces of the first function whose signature starts with `sig`.
fn fn_body<'a>(src: &'a str, sig: &str) -> Option<&'a str> {
    let at = src.find(sig)?;
    let open = at + src[at..].find('{')?;
    let mut depth = 0usize;
    for (i, ch) in src[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&src[open + 1..open + i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// What one suite's run came to.
#[derive(Debug)]
struct Ran {
    what: String,
    outcome: String,
}

pub(crate) fn fuzz(args: &[String]) -> Result<(), String> {
    let long = match args {
        [] => false,
        [a] if a == "--long" => true,
        _ => {
            return Err(
                "usage: cargo xtask fuzz [--long]  (default: a CI-sized run, under ~3 minutes)"
                    .into(),
            )
        }
    };
    let start = Instant::now();
    let mut ran = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for s in SUITES {
        let cases = if long { s.long_cases } else { s.short_cases };
        let what = format!(
            "{} {}: {}",
            s.package,
            s.target.join(" "),
            s.tests
                .iter()
                .map(|(t, c)| format!("{t} ({} cases)", c.of(cases)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(gate) = s.gate {
            if let Err(why) = gate() {
                eprintln!("xtask fuzz: NOT running {}: {why}", s.package);
                ran.push(Ran {
                    what,
                    outcome: format!("not run: {why}"),
                });
                continue;
            }
        }
        match run_suite(s, cases) {
            Ok(outcome) => ran.push(Ran { what, outcome }),
            Err(e) => {
                failed.push(format!("{} {}", s.package, s.target.join(" ")));
                ran.push(Ran { what, outcome: e });
            }
        }
    }
    eprintln!(
        "\nxtask fuzz summary ({} run, {:.0} s):",
        if long { "long" } else { "short" },
        start.elapsed().as_secs_f64()
    );
    for r in &ran {
        eprintln!("- {}\n    {}", r.what, r.outcome);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzzing failed in {}", failed.join(", ")))
    }
}

fn run_suite(s: &Suite, cases: u32) -> Result<String, String> {
    // Build first, so the time reported is the fuzzer's.
    let mut build = vec!["test", "--no-run", "-p", s.package];
    build.extend(s.target);
    crate::cargo(&build, &[])?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args: Vec<&str> = vec!["test", "-p", s.package];
    args.extend(s.target);
    args.extend(["--", "--exact", "--nocapture"]);
    args.extend(s.tests.iter().map(|(t, _)| *t));
    let cases_s = cases.to_string();
    eprintln!("+ PROPTEST_CASES={cases_s} cargo {}", args.join(" "));
    let t0 = Instant::now();
    let mut child = Command::new(cargo)
        .args(&args)
        .env("PROPTEST_CASES", &cases_s)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    // Echo both streams as they come, keeping the lines the summary needs.
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut keep = Vec::new();
        if let Some(e) = stderr {
            for line in BufReader::new(e).lines().map_while(Result::ok) {
                eprintln!("{line}");
                if line.starts_with("skipping ")
                    || line.contains(" trees: ")
                    || line.starts_with("Test failed:")
                {
                    keep.push(line);
                }
            }
        }
        keep
    });
    let mut passed = 0usize;
    let mut result_lines = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                result_lines.push(rest.to_string());
                passed += passed_count(rest).unwrap_or(0);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo test: {e}"))?;
    let kept = err_thread.join().unwrap_or_default();
    let secs = t0.elapsed().as_secs_f64();
    if !status.success() {
        let mut e = format!("FAILED after {secs:.0} s ({status})");
        for k in &kept {
            e.push_str("\n    ");
            e.push_str(k);
        }
        return Err(e);
    }
    if passed != s.tests.len() {
        return Err(format!(
            "FAILED: libtest ran {passed} of the {} named tests ({}): renamed?",
            s.tests.len(),
            result_lines.join(" | ")
        ));
    }
    let mut outcome = format!("passed in {secs:.0} s");
    for k in kept {
        outcome.push_str("\n    ");
        outcome.push_str(&k);
    }
    Ok(outcome)
}

/// The `N passed` of a libtest `test result: ` line (given without that prefix).
fn passed_count(result: &str) -> Option<usize> {
    let first = result.split("; ").next()?;
    let n = first.split_once(". ").map_or(first, |(_, n)| n);
    n.strip_suffix(" passed")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fn_body_takes_the_balanced_braces() {
        let src = "fn a() { x }\nfn build(sb: &S) {\n    if y { z(); }\n    sb.mkdir_all(p);\n}\nfn c() {}";
        let b = fn_body(src, "fn build(").unwrap();
        assert!(b.contains("sb.mkdir_all(p)"));
        assert!(!b.contains("fn c"));
        assert_eq!(fn_body("fn x() {}", "fn build("), None);
    }

    #[test]
    fn the_gate_finds_the_real_builder_and_flags_link_following_calls() {
        let file =
            crate::bench::workspace_root().join("crates/hostexec-nsenter/tests/resolve_fuzz.rs");
        let src = std::fs::read_to_string(file).unwrap();
        let body = fn_body(&src, "fn build(").unwrap();
        assert!(
            body.contains("sb."),
            "build() no longer uses the sandbox: revisit the gate"
        );
        let unsafe_builder = "fn build(sb: &S) {\n    std::fs::write(sb.local(&p), b\"f\");\n}";
        let b = fn_body(unsafe_builder, "fn build(").unwrap();
        assert!(LINK_FOLLOWING_CALLS.iter().any(|c| b.contains(c)));
    }

    #[test]
    fn libtest_result_lines_count() {
        let ok = "ok. 2 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out; finished in 3.1s";
        assert_eq!(passed_count(ok), Some(2));
        let failed = "FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(passed_count(failed), Some(0));
        assert_eq!(passed_count("garbage"), None);
    }
}
