//! Hostile input and secrets at the command line, against a sandbox host, with
//! util-linux and coreutils run in the same sandbox as the oracles:
//!
//! - non-UTF-8 names come out of `realpath` and `mounts` byte for byte (GNU `realpath` and
//!   `findmnt --raw` agree), `is-mountpoint` agrees with mountpoint(1);
//! - mount point names with a newline, a tab, a backslash and the literal text `\040`, next to
//!   decoys named with the escaped form: `is-mountpoint` agrees with mountpoint(1), `mounts
//!   --json` with findmnt, and the table never shows a forged row;
//! - paths of 4,096 bytes and more: "File name too long", exit 1;
//! - `mount --sensitive-options` with `-vvv` and `HOSTEXEC_LOG=trace`: the secret is on neither
//!   stdout nor stderr, for a mount that succeeds, one that mount(8) refuses and one whose
//!   helper echoes its argv.
//!
//! These tests create no symlink in the sandbox, so writing through `SandboxHost::local`
//! (which follows links in this process's view) cannot leave the scratch tmpfs.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hostexec_testing::sandbox::SandboxHost;

mod common;
use common::{os, run_on as run, run_on_env as run_env, sandbox};

fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(b.to_vec()))
}

fn under(base: &Path, name: &[u8]) -> PathBuf {
    let mut v = base.as_os_str().as_bytes().to_vec();
    v.push(b'/');
    v.extend_from_slice(name);
    bytes_path(&v)
}

/// mountpoint(1) in the sandbox: true for 0, false for 32.
fn mountpoint(sb: &SandboxHost, p: &Path) -> bool {
    let out = sb.oracle(&[os("mountpoint"), os("-q"), p.as_os_str()]);
    match out.status.code() {
        Some(0) => true,
        Some(32) => false,
        _ => panic!("mountpoint {}: {out:?}", p.display()),
    }
}

#[test]
fn non_utf8_names_round_trip_through_realpath_mounts_and_is_mountpoint() {
    let Some(sb) = sandbox("non_utf8_names_round_trip_through_realpath_mounts_and_is_mountpoint")
    else {
        return;
    };
    let s = sb.scratch();
    let mut name: Vec<u8> = (0x80u8..=0xff).step_by(3).collect();
    name.extend_from_slice(b" \xc0\xaf end");
    let dir = under(s, &name);
    sb.mkdir_all(&dir.join("sub")).unwrap();
    sb.symlink(OsStr::from_bytes(&name), &under(s, b"link\xfe"))
        .unwrap();
    let queries = [
        under(s, b"link\xfe"),
        under(s, b"link\xfe/sub/.."),
        under(&dir, b"sub"),
    ];
    // GNU realpath in the sandbox and hostexec print the same bytes.
    let mut args = vec![os("realpath"), os("-e")];
    args.extend(queries.iter().map(|q| q.as_os_str()));
    let ours = run(&sb, &args);
    assert_eq!(ours.status.code(), Some(0), "{ours:?}");
    let gnu = sb.oracle(&args);
    assert!(gnu.status.success(), "{gnu:?}");
    assert_eq!(ours.stdout, gnu.stdout, "hostexec vs GNU realpath");
    let mut want = Vec::new();
    for p in [&dir, &dir, &dir.join("sub")] {
        want.extend_from_slice(p.as_os_str().as_bytes());
        want.push(b'\n');
    }
    assert_eq!(ours.stdout, want);
    // -m keeps a missing non-UTF-8 tail as written.
    let tail = under(&under(s, b"link\xfe"), b"gone\x80/x\xff");
    let out = run(&sb, &[os("realpath"), os("-m"), tail.as_os_str()]);
    assert_eq!(
        out.stdout,
        [under(&dir, b"gone\x80/x\xff").as_os_str().as_bytes(), b"\n"].concat()
    );

    // A mount at the non-UTF-8 directory.
    let out = run(
        &sb,
        &[
            os("mount"),
            os("-t"),
            os("tmpfs"),
            os("--no-systemd"),
            os("hostexec-t"),
            dir.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let table = run(&sb, &[os("mounts")]);
    assert_eq!(table.status.code(), Some(0));
    let mut row_start = dir.as_os_str().as_bytes().to_vec();
    row_start.push(b' ');
    let rows: Vec<&[u8]> = table
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(&row_start))
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "one row, with the raw bytes: {}",
        table.stdout.escape_ascii()
    );
    let found = sb.oracle(&[
        os("findmnt"),
        os("--raw"),
        os("-n"),
        os("-o"),
        os("TARGET"),
        os("--mountpoint"),
        dir.as_os_str(),
    ]);
    assert_eq!(
        hostexec_testing::unescape_findmnt(found.stdout.strip_suffix(b"\n").unwrap()),
        dir.as_os_str().as_bytes()
    );
    // JSON cannot hold the bytes: U+FFFD, as documented, and still valid JSON.
    let json = run(&sb, &[os("--json"), os("mounts")]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    let lossy = String::from_utf8_lossy(dir.as_os_str().as_bytes()).into_owned();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|m| m["target"] == lossy.as_str()),
        "{v}"
    );
    sb.mkdir_all(&under(s, b"plain\xff")).unwrap();
    for p in [dir.clone(), under(s, b"link\xfe"), under(s, b"plain\xff")] {
        let out = run(&sb, &[os("is-mountpoint"), p.as_os_str()]);
        let theirs = mountpoint(&sb, &p);
        assert_eq!(
            out.status.code(),
            Some(if theirs { 0 } else { 32 }),
            "{}: {out:?}",
            p.display()
        );
    }
    assert!(mountpoint(&sb, &dir) && !mountpoint(&sb, &under(s, b"plain\xff")));
    let out = run(&sb, &[os("umount"), dir.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!mountpoint(&sb, &dir));
}

#[test]
fn escaped_names_agree_with_mountpoint_and_findmnt() {
    let Some(sb) = sandbox("escaped_names_agree_with_mountpoint_and_findmnt") else {
        return;
    };
    let s = sb.scratch();
    let pairs: [(&[u8], &[u8]); 5] = [
        (b"new\nline", b"new\\012line"),
        (b"tab\there", b"tab\\011here"),
        (b"back\\slash", b"back\\134slash"),
        (b"sp ace", b"sp\\040ace"),
        (b"lit\\040eral", b"lit eral"),
    ];
    for (a, b) in pairs {
        sb.mkdir_all(&under(s, a)).unwrap();
        sb.mkdir_all(&under(s, b)).unwrap();
        let out = run(
            &sb,
            &[
                os("mount"),
                os("-t"),
                os("tmpfs"),
                os("hx"),
                under(s, a).as_os_str(),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    for (a, b) in pairs {
        for p in [under(s, a), under(s, b)] {
            let ours = run(&sb, &[os("is-mountpoint"), p.as_os_str()]);
            let want = if mountpoint(&sb, &p) { 0 } else { 32 };
            assert_eq!(ours.status.code(), Some(want), "{}: {ours:?}", p.display());
        }
    }
    let scratch = s.to_str().unwrap();
    let json = run(&sb, &[os("--json"), os("mounts")]);
    let ours: BTreeSet<String> = serde_json::from_slice::<serde_json::Value>(&json.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap().to_owned())
        .filter(|t| t.starts_with(&format!("{scratch}/")))
        .collect();
    let fm = sb.oracle(&[
        os("findmnt"),
        os("--json"),
        os("--list"),
        os("-o"),
        os("TARGET"),
    ]);
    let theirs: BTreeSet<String> = serde_json::from_slice::<serde_json::Value>(&fm.stdout).unwrap()
        ["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["target"].as_str().unwrap().to_owned())
        .filter(|t| t.starts_with(&format!("{scratch}/")))
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), pairs.len());
    // The table: one row per mount, the newline escaped, no row starting mid-name.
    let table = run(&sb, &[os("mounts")]);
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(!text.lines().any(|l| l.starts_with("line ")), "{text}");
    assert!(text.contains(&format!("{scratch}/new\\x0aline ")), "{text}");
    assert!(text.contains(&format!("{scratch}/tab\\x09here ")), "{text}");
}

#[test]
fn paths_of_path_max_and_more_are_file_name_too_long() {
    let Some(sb) = sandbox("paths_of_path_max_and_more_are_file_name_too_long") else {
        return;
    };
    let mut long = sb.scratch().as_os_str().as_bytes().to_vec();
    while long.len() < 4096 {
        long.extend_from_slice(b"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    }
    long.truncate(4096);
    let long = bytes_path(&long);
    for args in [
        vec![os("realpath"), long.as_os_str()],
        vec![os("realpath"), os("-m"), long.as_os_str()],
        vec![os("is-mountpoint"), long.as_os_str()],
        vec![os("umount"), long.as_os_str()],
        vec![
            os("mount"),
            os("-t"),
            os("tmpfs"),
            os("x"),
            long.as_os_str(),
        ],
    ] {
        let out = run(&sb, &args);
        // mount and umount fail as mount(8) and umount(8) do: 32.
        let want = if matches!(args[0].to_str(), Some("mount" | "umount")) {
            32
        } else {
            1
        };
        assert_eq!(out.status.code(), Some(want), "{:?}: {out:?}", args[0]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.trim_end().ends_with("File name too long"),
            "{:?}: {err}",
            args[0]
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn sensitive_options_reach_neither_stdout_nor_stderr_at_trace() {
    let Some(sb) = sandbox("sensitive_options_reach_neither_stdout_nor_stderr_at_trace") else {
        return;
    };
    const OK: &str = "3141592";
    const REFUSED: &str = "Refused-cli-s3cret-51";
    const HELPER: &str = "Helper-cli-s3cret-88";
    let s = sb.scratch();
    for d in ["ok", "refused", "helper"] {
        sb.mkdir_all(&s.join(d)).unwrap();
    }
    // A helper that echoes its argv, secret included, on both streams (a tmpfs over /usr/sbin,
    // which /sbin links to, in the sandbox only).
    sb.mount_tmpfs(Path::new("/usr/sbin"), "mode=0755").unwrap();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(sb.local(Path::new("/usr/sbin/mount.hxclisecret")))
        .unwrap();
    f.write_all(b"#!/bin/sh\necho \"helper: got $*\"\necho \"helper: refusing $*; ${4#*password=}\" >&2\nexit 32\n")
        .unwrap();
    drop(f);
    let env = [("HOSTEXEC_LOG", "trace")];
    let mount = |fstype: &str, source: &str, target: &Path, plain: &str, secret: String| {
        let mut a: Vec<OsString> = vec!["-vvv".into(), "mount".into(), "-t".into(), fstype.into()];
        if !plain.is_empty() {
            a.extend(["-o".into(), plain.into()]);
        }
        a.extend([
            "--sensitive-options".into(),
            secret.into(),
            "--no-systemd".into(),
            source.into(),
            target.as_os_str().to_owned(),
        ]);
        let refs: Vec<&OsStr> = a.iter().map(OsString::as_os_str).collect();
        run_env(&sb, &refs, &env)
    };
    let ok = mount("tmpfs", "hx", &s.join("ok"), "size=1m", format!("gid={OK}"));
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let fs = sb.oracle(&[
        os("findmnt"),
        os("-n"),
        os("-o"),
        os("FS-OPTIONS"),
        s.join("ok").as_os_str(),
    ]);
    assert!(
        String::from_utf8_lossy(&fs.stdout).contains(&format!("gid={OK}")),
        "{fs:?}"
    );
    let refused = mount(
        "tmpfs",
        "hx",
        &s.join("refused"),
        "size=1m",
        format!("password={REFUSED}"),
    );
    assert_eq!(refused.status.code(), Some(32), "{refused:?}");
    let helper = mount(
        "hxclisecret",
        "server:/export",
        &s.join("helper"),
        "vers=4",
        format!("user=hxuser,password={HELPER}"),
    );
    assert_eq!(helper.status.code(), Some(32), "{helper:?}");
    let helper_err = String::from_utf8_lossy(&helper.stderr);
    assert!(
        helper_err.contains("helper: refusing"),
        "the helper ran: {helper_err}"
    );
    for (out, what) in [(&ok, "ok"), (&refused, "refused"), (&helper, "helper")] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("TRACE") || err.contains("DEBUG"),
            "{what}: no logs: {err}"
        );
        assert!(err.contains("<masked>"), "{what}: {err}");
        for secret in [OK, REFUSED, HELPER] {
            for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                assert!(
                    !String::from_utf8_lossy(text).contains(secret),
                    "{what}: {secret} on {stream}: {}",
                    String::from_utf8_lossy(text)
                );
            }
        }
    }
}

/// Mounts a tmpfs at each of `names` under `base` (raw bytes: newline, tab, backslash,
/// space, non-UTF-8).
fn mount_tricky(sb: &SandboxHost, base: &Path, names: &[&[u8]]) {
    for name in names {
        let p = under(base, name);
        sb.mkdir_all(&p).unwrap();
        let out = run(
            sb,
            &[
                os("mount"),
                os("-t"),
                os("tmpfs"),
                os("hx\tsrc"),
                p.as_os_str(),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
}

#[test]
fn a_large_table_read_in_pieces_lists_every_mount_once_in_order() {
    let Some(sb) = sandbox("a_large_table_read_in_pieces_lists_every_mount_once_in_order") else {
        return;
    };
    let s = sb.scratch().to_path_buf();
    let names: [&[u8]; 5] = [
        b"new\nline",
        b"tab\there",
        b"back\\slash \"q\"",
        b"sp ace\\040",
        b"\xff\xfe bytes",
    ];
    // Tricky names before, amid and after 1,500 mounts: a table of well over 100 KiB, read
    // in several pieces, with the tricky rows in different ones.
    let (first, mid, last) = (s.join("a"), s.join("b"), s.join("c"));
    mount_tricky(&sb, &first, &names);
    sb.mkdir_all(&s.join("many")).unwrap();
    sb.mount_many_tmpfs(&s.join("many"), 0, 750).unwrap();
    mount_tricky(&sb, &mid, &names);
    sb.mount_many_tmpfs(&s.join("many"), 750, 750).unwrap();
    mount_tricky(&sb, &last, &names);

    // The reference: the library's one-shot read and parse of the same table.
    let table = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use hostexec_api::HostFs;
            let host = hostexec_nsenter::NsEnter::new(sb.target()).unwrap();
            host.read_mountinfo().await.unwrap()
        });
    assert!(table.len() > 100 << 10, "{} bytes", table.len());
    let want = hostexec_mount::mountinfo::parse_mountinfo(&table).unwrap();
    assert!(want.len() > 1_515);

    let json = run(&sb, &[os("--json"), os("mounts")]);
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), want.len());
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (row, m) in rows.iter().zip(&want) {
        assert_eq!(row["id"], m.id, "{row}");
        assert_eq!(row["parent_id"], m.parent_id, "{row}");
        assert_eq!(
            row["target"],
            lossy(m.mount_point().as_os_str().as_bytes()),
            "{row}"
        );
        assert_eq!(row["source"], lossy(m.source().as_bytes()), "{row}");
    }
    for base in [&first, &mid, &last] {
        for name in names {
            let t = lossy(under(base, name).as_os_str().as_bytes());
            let found: Vec<_> = rows.iter().filter(|r| r["target"] == t.as_str()).collect();
            assert_eq!(found.len(), 1, "{t:?}");
            assert_eq!(found[0]["source"], "hx\tsrc");
        }
    }
    // The table: a header and one line per mount (control characters escaped), in order.
    let table_out = run(&sb, &[os("mounts"), os("-o"), os("ID,TARGET")]);
    assert_eq!(table_out.status.code(), Some(0), "{table_out:?}");
    let ids: Vec<u64> = table_out
        .stdout
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let id = l.split(|&b| b == b' ').next().unwrap();
            std::str::from_utf8(id).unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(ids, want.iter().map(|m| m.id).collect::<Vec<_>>());
    // A type filter and a TARGET keep working on the pieces.
    let filtered = run(&sb, &[os("--json"), os("mounts"), os("-t"), os("tmpfs")]);
    let v: serde_json::Value = serde_json::from_slice(&filtered.stdout).unwrap();
    let tmpfs = want.iter().filter(|m| m.fs_type() == "tmpfs").count();
    assert_eq!(v.as_array().unwrap().len(), tmpfs);
    let one = under(&last, names[0]);
    let target = run(&sb, &[os("--json"), os("mounts"), one.as_os_str()]);
    assert_eq!(target.status.code(), Some(0), "{target:?}");
    let v: serde_json::Value = serde_json::from_slice(&target.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["target"], lossy(one.as_os_str().as_bytes()));
}
