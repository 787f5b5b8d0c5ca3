//! cifs credentials through a 0600 file, never argv: a sensitive `username=`/`password=`/
//! `domain=` of a cifs mount on the mount(8) route is written by the backend to
//! `/run/hostexec/staging/<call>.cred` (on the private, root-only staging tmpfs) and passed
//! as `-o credentials=FILE`; the file is gone after the call, whether the helper mounted,
//! failed, hung past the timeout, or the caller dropped the mount's future.
//!
//! Real: a recording `/sbin/mount.cifs` in a sandbox host logs its argv and the credentials
//! file's mode, owner and lines, then mounts a tmpfs on its target (or exits 32, or hangs);
//! a scanner reads every process's cmdline and environment meanwhile. Fake: the same steps on
//! `HostMounter` over `FakeExecutor` + `FakeHost`, whose `mount` reads the file the same way;
//! both give the same transcript.
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hostexec_api::{ExitStatus, HostCommand, HostFs, Output, PathResolver};
use hostexec_fake::{FakeExecutor, FakeHost};
use hostexec_mount::{HostMounter, Mount, MountError, MountOptions, STAGING_DIR};
use hostexec_nsenter::NsEnter;
use hostexec_testing::procscan::Scanner;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

/// A password no other process carries.
const PASSWORD: &str = "Hx7-cifs-s3cret";

/// The recording helper. It logs `opts: OPTIONS` (the `-o` it got), `file: MODE:OWNER` of the
/// credentials file, each line of it as `line: …`, and `cred: PATH`; then, by source:
/// a remount exits 0, `//srv/fail` exits 32, `//srv/hang` sleeps, anything else mounts a
/// tmpfs on the target after 300 ms (so the scanner sees mount(8) and the helper alive).
fn helper_script(log: &Path) -> String {
    format!(
        r#"#!/bin/sh
# mount.cifs SOURCE TARGET [-sfnv] [-o OPTIONS], as mount(8) runs it
src=$1 dir=$2
shift 2
opts=
while [ $# -gt 0 ]; do
  case "$1" in -o) opts=$2; shift ;; esac
  shift
done
cred=$(printf '%s\n' "$opts" | tr ',' '\n' | sed -n 's/^credentials=//p')
{{
  printf 'opts: %s\n' "$opts"
  printf 'file: %s\n' "$(stat -c %a:%U "$cred")"
  sed 's/^/line: /' "$cred"
  printf 'cred: %s\n' "$cred"
}} >> '{log}'
case ",$opts," in
  *,remount,*) exit 0 ;;
esac
case "$src" in
  //srv/fail) echo 'mount error(13): Permission denied' >&2; exit 32 ;;
  //srv/hang) exec sleep 60 ;;
esac
sleep 0.3
exec mount -i -t tmpfs -o size=1m cifs-src "$dir"
"#,
        log = log.display()
    )
}

fn options() -> MountOptions {
    MountOptions::new()
        .option("vers=3.0")
        .sensitive("username=alice")
        .sensitive(format!("password={PASSWORD}"))
        .sensitive("domain=CORP")
        .without_systemd()
}

/// The log's lines, the staging directory's name replaced by `STAGE`, and the `rw` mount(8)
/// puts first in the options it hands a helper (util-linux) left out: the fake records
/// mount(8)'s own `-o`.
fn normalized(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            let l = l.replacen("opts: rw,", "opts: ", 1);
            let l = l.as_str();
            let mut out = String::new();
            let mut rest = l;
            while let Some(i) = rest.find(STAGING_DIR) {
                out.push_str(&rest[..i]);
                out.push_str("STAGE");
                let after = &rest[i + STAGING_DIR.len()..];
                // `/<pid>-<seq>-<nanos>` up to `.cred`.
                let end = after.find(".cred").unwrap_or(after.len());
                rest = &after[end..];
            }
            out.push_str(rest);
            out
        })
        .collect()
}

/// The credentials file a log names (the last `cred:` line).
fn cred_path(log: &str) -> PathBuf {
    let line = log.lines().rev().find_map(|l| l.strip_prefix("cred: "));
    PathBuf::from(line.expect("the helper logged its credentials file"))
}

/// `gone: true` when `file` no longer exists.
async fn gone<M: Mount>(m: &M, file: &Path) -> String {
    let st = m.stat(file, false).await;
    format!("gone: {}", st.is_err_and(|e| e.is_not_found()))
}

/// The steps, on any `Mount`: a mount that works, a remount of it, one whose helper fails,
/// one that times out.
/// `log` reads what the helper recorded; each step adds whether the file is gone afterwards.
async fn transcript<M: Mount>(m: &M, base: &Path, log: &dyn Fn() -> String) -> Vec<String> {
    let t = base.join("share");
    m.create_dir_all(&t).await.unwrap();
    let mut out = Vec::new();

    m.mount("//srv/share".as_ref(), &t, "cifs", &options())
        .await
        .unwrap();
    assert!(m.is_mount_point(&t).await.unwrap());
    out.push(gone(m, &cred_path(&log())).await);
    // A remount with credentials: a file too, never the argv.
    m.mount(
        "//srv/share".as_ref(),
        &t,
        "cifs",
        &options().option("remount"),
    )
    .await
    .unwrap();
    out.push(gone(m, &cred_path(&log())).await);
    m.unmount(&t, &Default::default()).await.unwrap();

    let e = m
        .mount("//srv/fail".as_ref(), &t, "cifs", &options())
        .await
        .unwrap_err();
    assert!(matches!(e, MountError::MountFailed(_)), "{e:?}");
    // The error shows the options masked, never a credential.
    assert!(!format!("{e} {e:?}").contains(PASSWORD), "{e:?}");
    out.push(format!("error: {}", e.to_string().contains("<masked>")));
    out.push(gone(m, &cred_path(&log())).await);

    let e = m
        .mount(
            "//srv/hang".as_ref(),
            &t,
            "cifs",
            &options().timeout(Duration::from_millis(1500)),
        )
        .await
        .unwrap_err();
    out.push(format!(
        "timed out: {}",
        e.to_string().contains("timed out")
    ));
    out.push(gone(m, &cred_path(&log())).await);

    out.extend(normalized(&log()));
    out
}

fn expected() -> Vec<String> {
    let mut want: Vec<String> = [
        "gone: true",
        "gone: true",
        "error: true",
        "gone: true",
        "timed out: true",
        "gone: true",
    ]
    .map(String::from)
    .to_vec();
    for opts in ["", "remount,", "", ""] {
        want.extend([
            format!("opts: {opts}vers=3.0,credentials=STAGE.cred"),
            "file: 600:root".to_owned(),
            "line: username=alice".to_owned(),
            format!("line: password={PASSWORD}"),
            "line: domain=CORP".to_owned(),
            "cred: STAGE.cred".to_owned(),
        ]);
    }
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cifs_credentials_reach_the_helper_in_a_0600_file_and_no_argv() {
    let test = "cifs_credentials_reach_the_helper_in_a_0600_file_and_no_argv";
    if skip_without_namespaces(test) {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let log = sb.scratch().join("cifs.log");
    sb.write_file(&log, b"").unwrap();
    sb.install_sbin("mount.cifs", helper_script(&log).as_bytes())
        .unwrap();
    let m = HostMounter::new(NsEnter::new(sb.target()).unwrap());
    let local_log = sb.local(&log);
    let read_log = move || std::fs::read_to_string(&local_log).unwrap();

    let scan = Scanner::start(PASSWORD.as_bytes());
    let got = transcript(&m, &sb.scratch().join("agree"), &read_log).await;
    let (passes, hits) = scan.finish();
    assert_eq!(got, expected());
    assert!(passes > 0, "the scanner never completed a pass");
    assert_eq!(hits, 0, "a process carried the cifs password");

    // A dropped mount future (the caller gave up while the helper hangs) removes the file
    // too, at once.
    let t = sb.scratch().join("agree/share");
    let opts = options();
    let mut fut = Box::pin(m.mount("//srv/hang".as_ref(), &t, "cifs", &opts));
    let before = read_log().lines().count();
    loop {
        tokio::select! {
            r = &mut fut => panic!("the hanging mount returned: {r:?}"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if read_log().lines().count() >= before + 6 {
                    break;
                }
            }
        }
    }
    let file = cred_path(&read_log());
    assert!(
        m.stat(&file, false).await.is_ok(),
        "the helper runs: the file is there"
    );
    drop(fut);
    let e = m.stat(&file, false).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    // Nothing of any call is left on the staging tmpfs but (killed) calls' directories.
    let out = sb.oracle(&["ls".as_ref(), "-A".as_ref(), STAGING_DIR.as_ref()]);
    let left = String::from_utf8_lossy(&out.stdout);
    assert!(!left.contains(".cred"), "{left}");
}

/// The fake's `mount`: records what the recording helper records (reading the credentials
/// file in the fake's root), then answers as mount(8) would: exit 32 for `//srv/fail`, a
/// timeout for `//srv/hang` (FakeExecutor applies the command's bound on tokio's clock), the
/// fake table's mount otherwise.
fn fake_mount(host: &FakeHost, log: Arc<Mutex<String>>) -> FakeExecutor {
    let exec = FakeExecutor::new();
    let handler = host.mount_handler();
    let h = host.clone();
    exec.expect("mount")
        .times(4)
        .answer_with(move |cmd: &HostCommand| {
            let args: Vec<String> = cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let opts = args
                .iter()
                .position(|a| a == "-o")
                .map(|i| args[i + 1].clone())
                .unwrap_or_default();
            // mount(8) hands its helper the VFS flags first (libmount), `remount` among them.
            let remount = opts.split(',').any(|o| o == "remount");
            let opts = if remount {
                let rest: Vec<&str> = opts.split(',').filter(|o| *o != "remount").collect();
                format!("remount,{}", rest.join(","))
            } else {
                opts
            };
            let cred = opts
                .split(',')
                .find_map(|o| o.strip_prefix("credentials="))
                .unwrap_or_default()
                .to_owned();
            let local = h.local_path(Path::new(&cred)).unwrap();
            let meta = std::fs::symlink_metadata(&local).unwrap();
            let owner = if meta.uid() == 0 { "root" } else { "other" };
            let mut l = log.lock().unwrap();
            l.push_str(&format!("opts: {opts}\n"));
            l.push_str(&format!("file: {:o}:{owner}\n", meta.mode() & 0o7777));
            for line in std::fs::read_to_string(&local).unwrap().lines() {
                l.push_str(&format!("line: {line}\n"));
            }
            l.push_str(&format!("cred: {cred}\n"));
            drop(l);
            let source = args.iter().rev().nth(1).map(String::as_str);
            if remount {
                // The recording helper changes nothing on a remount.
                return Ok(Output::new("mount", ExitStatus::Code(0)));
            }
            match source {
                Some("//srv/fail") => Ok(Output::new("mount", ExitStatus::Code(32))
                    .with_stderr("mount error(13): Permission denied\n")),
                Some("//srv/hang") => Err(hostexec_api::CommandError::TimedOut {
                    program: "mount".into(),
                    timeout: cmd.get_timeout().unwrap_or_default(),
                    lingering: None,
                }),
                _ => handler(cmd),
            }
        });
    exec
}

#[tokio::test]
async fn the_fake_and_the_sandbox_agree_on_cifs_credentials() {
    let host = FakeHost::new().unwrap();
    let as_root = std::fs::metadata(host.local_path(Path::new("/")).unwrap())
        .unwrap()
        .uid()
        == 0;
    let log = Arc::new(Mutex::new(String::new()));
    let exec = fake_mount(&host, log.clone());
    let m = HostMounter::with_parts(exec.clone(), host);
    let read_log = move || log.lock().unwrap().clone();
    let got = transcript(&m, Path::new("/agree"), &read_log).await;
    exec.verify().unwrap();
    // As root the owner is root, as in the sandbox; otherwise the fake's files are the
    // caller's.
    let want: Vec<String> = expected()
        .into_iter()
        .map(|l| {
            if l == "file: 600:root" && !as_root {
                "file: 600:other".to_owned()
            } else {
                l
            }
        })
        .collect();
    assert_eq!(got, want);
}
