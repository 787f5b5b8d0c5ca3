//! `cargo xtask ci`: the one list of CI steps (`.ci/run` installs what a fresh machine lacks and
//! runs this).
//!
//! Each step prints what it runs and stops the list at the first failure:
//!
//! 1. `cargo fmt --check`;
//! 2. clippy on every target with the workspace's lints, then once more on library and binary
//!    targets with the lints that hold for library code only ([`LIBRARY_ONLY_LINTS`]);
//! 3. the lint policy: `unsafe_code` is allowed only where [`UNSAFE_ALLOWED_IN`] says, and docs/ARCHITECTURE.md's dependency block is the real graph;
//!    no tracked file holds a merge conflict marker;
//! 4. `cargo doc` with warnings denied;
//! 5. the MSRV: no package in the resolved dependency graph declares a `rust-version` above
//!    the workspace's (only one toolchain is installed, so this is what can be checked);
//! 6. each publishable library crate built alone (clippy) with no features and with each feature;
//! 7. `cargo publish --workspace --dry-run` (packages and builds every publishable crate);
//! 8. `cargo test --workspace` (the README's test command);
//! 9. `cargo xtask demo` (the README's main job);
//! 10. `cargo xtask e2e` (the binary in a runc container against a simulated node).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cargo;

/// Lints for library and binary code that test helpers are exempt from: library code never
/// unwraps (it returns typed errors), and `pub` means reachable from outside the crate.
/// Cargo's `[lints]` apply to every target of a package, so these are added here.
pub(crate) const LIBRARY_ONLY_LINTS: [&str; 2] = ["clippy::unwrap_used", "unreachable_pub"];

/// The files allowed to hold `allow(unsafe_code)`, and how often: hostexec-sys, the crate
/// for unsafe code.
const UNSAFE_ALLOWED_IN: [(&str, usize); 1] = [("crates/hostexec-sys/src/lib.rs", 1)];

/// Runs the steps in order.
pub(crate) fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    let mut lib_clippy = vec![
        "clippy",
        "--workspace",
        "--lib",
        "--bins",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ];
    for lint in LIBRARY_ONLY_LINTS {
        lib_clippy.extend(["-W", lint]);
    }
    cargo(&lib_clippy, &[])?;
    let root = workspace_root()?;
    step(
        "lint policy: unsafe_code allowed only in UNSAFE_ALLOWED_IN",
        || check_unsafe_allows(&root),
    )?;
    step("no merge conflict markers in tracked files", || {
        check_conflict_markers(&root)
    })?;
    let metadata = metadata(&root)?;
    step("docs/ARCHITECTURE.md's dependency block", || {
        let doc = std::fs::read_to_string(root.join("docs/ARCHITECTURE.md"))
            .map_err(|e| format!("docs/ARCHITECTURE.md: {e}"))?;
        check_architecture(&doc, &metadata)
    })?;
    cargo(
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    step(
        "MSRV: no dependency needs a newer Rust than rust-version",
        || check_msrv(&metadata),
    )?;
    // clippy rather than check, so that a warning only one feature set shows (an import
    // used only under a feature) fails too; selecting one package with `-p` builds it with
    // exactly these features, not those other workspace members turn on.
    for (package, features) in library_features(&metadata) {
        let mut sets = vec![None];
        sets.extend(features.iter().map(Some));
        for feature in sets {
            let mut args = vec!["clippy", "-p", &package, "--no-default-features"];
            if let Some(f) = feature {
                args.extend(["--features", f]);
            }
            args.extend(["--", "-D", "warnings"]);
            cargo(&args, &[])?;
        }
    }
    // --allow-dirty: the dry run checks what would be published, here and in a CI checkout
    // alike; whether the tree is committed is not its business.
    // Its own target directory too: its dependencies are built from the private home's
    // paths, and sharing target/ would make every later step rebuild them.
    let home = publish_home(&root)?;
    let home = home.to_str().ok_or("the workspace path is not UTF-8")?;
    let target = root.join("target/xtask-publish");
    let target = target.to_str().ok_or("the workspace path is not UTF-8")?;
    cargo(
        &[
            "publish",
            "--workspace",
            "--dry-run",
            "--allow-dirty",
            "--target-dir",
            target,
        ],
        &[("CARGO_HOME", home)],
    )?;
    // The README's two commands: the tests, then the main job.
    cargo(&["test", "--workspace"], &[])?;
    crate::demo::demo(false)?;
    // The binary in a real container (runc), as docs/deploy.md deploys it.
    crate::e2e::e2e(&[])?;
    Ok(())
}

/// A `CARGO_HOME` for the publish dry run: target/xtask-publish-home, with the real home's
/// downloaded crates (`registry/cache`) and config linked in, and no unpacked copy of a
/// local registry's packages left from an earlier run.
///
/// The dry run verifies each package by building it against the others, served from a local
/// registry under target/package and unpacked into `$CARGO_HOME/registry/src/-HASH/` (a
/// local registry's directory has no host name). Cargo reuses an unpacked directory that
/// already exists, and ours keep their version while their contents change, so with the
/// shared home a second run would build against the first run's sources (and other
/// checkouts on the machine share that home). In this private home those `-HASH`
/// directories are removed before each run; crates.io's unpacked sources stay, so that the
/// dry run's own target directory stays valid from one run to the next.
fn publish_home(root: &Path) -> Result<PathBuf, String> {
    fn io(what: &Path) -> impl Fn(std::io::Error) -> String + '_ {
        move |e| format!("{}: {e}", what.display())
    }
    let home = root.join("target/xtask-publish-home");
    let src = home.join("registry/src");
    std::fs::create_dir_all(&src).map_err(io(&src))?;
    for entry in std::fs::read_dir(&src).map_err(io(&src))?.flatten() {
        if entry.file_name().to_string_lossy().starts_with('-') {
            let dir = entry.path();
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
    }
    let real = match std::env::var_os("CARGO_HOME") {
        Some(h) => Some(PathBuf::from(h)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")),
    };
    if let Some(real) = real {
        for rel in ["registry/cache", "config.toml", "config"] {
            let (from, to) = (real.join(rel), home.join(rel));
            if from.exists() && to.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(&from, &to).map_err(io(&to))?;
            }
        }
    }
    Ok(home)
}

fn step(what: &str, check: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    eprintln!("+ check: {what}");
    check().map_err(|e| format!("{what}: {e}"))
}

pub(crate) fn workspace_root() -> Result<PathBuf, String> {
    // xtask/ is one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "xtask has no parent directory".to_string())
}

fn metadata(root: &Path) -> Result<Value, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

fn packages(metadata: &Value) -> impl Iterator<Item = &Value> {
    metadata["packages"].as_array().into_iter().flatten()
}

fn workspace_members(metadata: &Value) -> BTreeSet<&str> {
    metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Fails unless `#[allow(unsafe_code)]` appears exactly where [`UNSAFE_ALLOWED_IN`] says.
fn check_unsafe_allows(root: &Path) -> Result<(), String> {
    let mut found = BTreeMap::new();
    for dir in ["crates", "tests", "xtask"] {
        scan_rs(&root.join(dir), &mut |path, text| {
            // Attributes only: `#[allow(unsafe_code)]`, `#![allow(…, unsafe_code)]`, `expect`.
            let n = text
                .lines()
                .map(str::trim_start)
                .filter(|l| l.starts_with("#[") || l.starts_with("#!["))
                .filter(|l| l.contains("unsafe_code"))
                .filter(|l| l.contains("allow(") || l.contains("expect("))
                .count();
            if n > 0 {
                let rel = path.strip_prefix(root).unwrap_or(path);
                found.insert(rel.display().to_string(), n);
            }
        })?;
    }
    let want: BTreeMap<String, usize> = UNSAFE_ALLOWED_IN
        .iter()
        .map(|(path, n)| (path.to_string(), *n))
        .collect();
    if found == want {
        Ok(())
    } else {
        Err(format!(
            "allow(unsafe_code) found {found:?}, expected only {want:?} (the workspace denies \
             unsafe_code; a new exception belongs in docs/ARCHITECTURE.md and here)"
        ))
    }
}

/// Fails if a tracked text file holds a line a merge conflict leaves (`<<<<<<< ` or
/// `>>>>>>> ` at its start): the compiler catches them in code, nothing in docs.
fn check_conflict_markers(root: &Path) -> Result<(), String> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    if !out.status.success() {
        return Err(format!("git ls-files: {}", out.status));
    }
    let mut found = Vec::new();
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let path = root.join(String::from_utf8_lossy(name).as_ref());
        // Binary or unreadable files are not text a merge marks.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        found.extend(
            conflict_marker_lines(&text)
                .into_iter()
                .map(|n| format!("{}:{n}", path.display())),
        );
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(format!("merge conflict markers at {}", found.join(", ")))
    }
}

/// The 1-based numbers of the lines that start a conflict's first or last marker.
fn conflict_marker_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> "))
        .map(|(i, _)| i + 1)
        .collect()
}

fn scan_rs(dir: &Path, f: &mut dyn FnMut(&Path, &str)) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if kind.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            scan_rs(&path, f)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            f(&path, &text);
        }
    }
    Ok(())
}

/// The workspace crates each member depends on (normal dependencies only), from `cargo
/// metadata`.
fn dependency_graph(metadata: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let members = workspace_members(metadata);
    let names: BTreeSet<&str> = packages(metadata)
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .filter_map(|p| p["name"].as_str())
        .collect();
    packages(metadata)
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        .filter_map(|p| {
            let name = p["name"].as_str()?.to_string();
            let deps = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].is_null())
                .filter_map(|d| d["name"].as_str())
                .filter(|d| names.contains(d))
                .map(str::to_string)
                .collect();
            Some((name, deps))
        })
        .collect()
}

/// The block of docs/ARCHITECTURE.md that follows the line naming this check: one line per
/// crate, `NAME → DEP, DEP   (comment)` or just `NAME   (comment)`.
fn documented_graph(doc: &str) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let after = doc
        .split_once("checks this block against `cargo metadata`")
        .map(|(_, rest)| rest)
        .ok_or("no block introduced by \"checks this block against `cargo metadata`\"")?;
    let block = after
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .ok_or("no ```text block after the introduction")?;
    let mut graph = BTreeMap::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        // Drop a trailing "(comment)".
        let line = line.split_once("  (").map_or(line, |(l, _)| l);
        let (name, deps) = line.split_once('→').unwrap_or((line, ""));
        let deps = deps
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
        graph.insert(name.trim().to_string(), deps);
    }
    Ok(graph)
}

fn check_architecture(doc: &str, metadata: &Value) -> Result<(), String> {
    let documented = documented_graph(doc)?;
    let real = dependency_graph(metadata);
    if documented == real {
        return Ok(());
    }
    let mut diff = String::new();
    for name in documented
        .keys()
        .chain(real.keys())
        .collect::<BTreeSet<_>>()
    {
        let (d, r) = (documented.get(name), real.get(name));
        if d != r {
            diff.push_str(&format!(
                "\n  {name}: documented {d:?}, cargo metadata {r:?}"
            ));
        }
    }
    Err(format!("the block differs from the real graph:{diff}"))
}

/// A `rust-version` as (major, minor, patch); a missing part is 0.
fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.trim().split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

fn check_msrv(metadata: &Value) -> Result<(), String> {
    let members = workspace_members(metadata);
    // The workspace's rust-version: what every publishable member declares (they inherit
    // [workspace.package]); all must agree.
    let mut msrv: Option<(String, (u64, u64, u64))> = None;
    let mut declared = Vec::new();
    for p in packages(metadata) {
        let name = p["name"].as_str().unwrap_or("?");
        let member = p["id"].as_str().is_some_and(|id| members.contains(id));
        let publishable = !p["publish"].as_array().is_some_and(Vec::is_empty);
        let Some(v) = p["rust_version"].as_str() else {
            if member && publishable {
                return Err(format!("{name} declares no rust-version"));
            }
            continue;
        };
        let parsed = parse_version(v).ok_or_else(|| format!("{name}: bad rust-version {v:?}"))?;
        if member {
            match &msrv {
                Some((text, m)) if *m != parsed => {
                    return Err(format!("{name} declares rust-version {v}, others {text}"))
                }
                _ => msrv = Some((v.to_string(), parsed)),
            }
        }
        let version = p["version"].as_str().unwrap_or("?");
        declared.push((name.to_string(), version.to_string(), v.to_string(), parsed));
    }
    let (msrv_text, msrv) = msrv.ok_or("no workspace member declares a rust-version")?;
    check_msrv_of(&msrv_text, msrv, &declared)
}

/// A package's declared `rust-version`: name, version, the text and its parsed form.
type Declared = (String, String, String, (u64, u64, u64));

/// Every declared version must be at most the workspace's.
fn check_msrv_of(
    msrv_text: &str,
    msrv: (u64, u64, u64),
    declared: &[Declared],
) -> Result<(), String> {
    let above: Vec<String> = declared
        .iter()
        .filter(|(_, _, _, v)| *v > msrv)
        .map(|(name, version, text, _)| format!("{name} {version} needs {text}"))
        .collect();
    if above.is_empty() {
        eprintln!(
            "  rust-version {msrv_text}: {} packages checked",
            declared.len()
        );
        Ok(())
    } else {
        Err(format!(
            "the workspace declares rust-version {msrv_text}, but: {} (raise \
             [workspace.package] rust-version or pin the dependency)",
            above.join("; ")
        ))
    }
}

/// The publishable workspace packages with a library target, and the features of each.
fn library_features(metadata: &Value) -> Vec<(String, Vec<String>)> {
    let members = workspace_members(metadata);
    packages(metadata)
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)))
        // `publish = false` is an empty list in cargo metadata.
        .filter(|p| !p["publish"].as_array().is_some_and(Vec::is_empty))
        .filter(|p| {
            p["targets"].as_array().into_iter().flatten().any(|t| {
                t["kind"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k == "lib")
            })
        })
        .filter_map(|p| {
            let name = p["name"].as_str()?.to_string();
            let features = p["features"]
                .as_object()
                .into_iter()
                .flat_map(|f| f.keys())
                .filter(|f| *f != "default")
                .cloned()
                .collect();
            Some((name, features))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_markers_are_found_and_headings_are_not() {
        let merged = "a\n<<<<<<< HEAD\nours\n=======\ntheirs\n>>>>>>> main\nb\n";
        assert_eq!(conflict_marker_lines(merged), vec![2, 6]);
        assert!(conflict_marker_lines("Title\n=======\n<<<<<<<<\n").is_empty());
        assert!(check_conflict_markers(&workspace_root().unwrap()).is_ok());
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("1.88"), Some((1, 88, 0)));
        assert_eq!(parse_version("1.85.1"), Some((1, 85, 1)));
        assert!(parse_version("1.9").unwrap() < parse_version("1.85").unwrap());
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn msrv_check_fails_on_a_newer_dependency() {
        let declared = vec![
            ("a".into(), "1".into(), "1.85".into(), (1, 85, 0)),
            (
                "proptest".into(),
                "1.12.0".into(),
                "1.88".into(),
                (1, 88, 0),
            ),
        ];
        let err = check_msrv_of("1.85", (1, 85, 0), &declared).unwrap_err();
        assert!(err.contains("proptest 1.12.0 needs 1.88"), "{err}");
        assert!(check_msrv_of("1.88", (1, 88, 0), &declared).is_ok());
    }

    #[test]
    fn architecture_block_is_parsed_and_compared() {
        let doc = "x (`cargo xtask ci` checks this block against `cargo metadata`):\n\n\
                   ```text\n\
                   a                 (root)\n\
                   b   → a\n\
                   c   → a, b   (comment)\n\
                   ```\n";
        let g = documented_graph(doc).unwrap();
        assert_eq!(g["a"], BTreeSet::new());
        assert_eq!(g["c"], BTreeSet::from(["a".to_string(), "b".to_string()]));
        let metadata = serde_json::json!({
            "workspace_members": ["a", "b", "c"],
            "packages": [
                {"id": "a", "name": "a", "dependencies": []},
                {"id": "b", "name": "b", "dependencies": [{"name": "a", "kind": null}]},
                {"id": "c", "name": "c", "dependencies": [
                    {"name": "a", "kind": null},
                    {"name": "b", "kind": "dev"}
                ]}
            ]
        });
        let err = check_architecture(doc, &metadata).unwrap_err();
        assert!(err.contains("c: documented"), "{err}");
    }

    #[test]
    fn the_real_architecture_doc_parses() {
        let doc = include_str!("../../docs/ARCHITECTURE.md");
        let g = documented_graph(doc).unwrap();
        assert!(g.contains_key("hostexec-api"), "{g:?}");
    }
}
