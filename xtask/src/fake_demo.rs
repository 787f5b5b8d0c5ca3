//! The demo without CAP_SYS_ADMIN: what `hostexec-fake` gives code written against the
//! hostexec traits — a temp directory as the host's `/` (resolved with the real backend's
//! algorithm), a scripted, recording executor, and a mount table that `mount`/`umount`
//! commands change — each step checked like the real demo's.

use std::path::Path;

use hostexec_api::{Executor, HostCommand, PathResolver, Resolve};
use hostexec_fake::{FakeExecutor, FakeHost};
use hostexec_mount::{HostMounter, Mount, MountOptions, UnmountOptions};

fn check(ok: bool, what: impl std::fmt::Display) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

/// Runs the fake demo on a current-thread runtime.
pub(crate) fn run() -> Result<(), String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start tokio: {err}"))?
        .block_on(steps())
}

async fn steps() -> Result<(), String> {
    let host = FakeHost::new().map_err(e)?;
    println!(
        "[1/4] A fake host: the temp directory {} stands for the host's /",
        host.root().display()
    );
    host.file("/srv/releases/v2/config.toml", b"answer = 42\n")
        .map_err(e)?
        .symlink("releases/v2", "/srv/current")
        .map_err(e)?
        .symlink("/srv/current", "/srv/app")
        .map_err(e)?;
    let real = host
        .resolve(Path::new("/srv/app/config.toml"), Resolve::MustExist)
        .await
        .map_err(e)?;
    println!("  resolve(/srv/app/config.toml) = {}", real.display());
    check(
        real == Path::new("/srv/releases/v2/config.toml"),
        "the absolute link /srv/app -> /srv/current is read against the fake root",
    )?;
    let escape = host
        .resolve(Path::new("/srv/../../../etc/passwd"), Resolve::AllowMissing)
        .await
        .map_err(e)?;
    println!(
        "  resolve(/srv/../../../etc/passwd, -m) = {} (never above the root)",
        escape.display()
    );
    check(
        escape == Path::new("/etc/passwd"),
        "`..` stops at the fake host's root",
    )?;
    let missing = host
        .resolve(Path::new("/srv/app/missing"), Resolve::MustExist)
        .await;
    let text = missing
        .as_ref()
        .map_err(ToString::to_string)
        .err()
        .unwrap_or_default();
    println!("  resolve(/srv/app/missing) -> error: {text}");
    check(
        text == "/srv/app/missing: No such file or directory",
        "a missing path is a typed error with strerror text",
    )?;

    println!("\n[2/4] A scripted executor: commands are answered and recorded, never run");
    let exec = FakeExecutor::new().with_host(&host);
    exec.expect("uname")
        .args(["-r"])
        .returns_ok_stdout(b"6.18.0-fake\n");
    let out = exec
        .run(HostCommand::new("uname").arg("-r"))
        .await
        .map_err(e)?;
    println!("  uname -r -> {}", out.stdout_text());
    check(out.stdout_text() == "6.18.0-fake", "the scripted answer")?;
    let refused = exec.run(HostCommand::new("reboot")).await;
    let text = refused
        .as_ref()
        .map_err(ToString::to_string)
        .err()
        .unwrap_or_default();
    println!("  reboot -> error: {text}");
    check(
        text.starts_with("unexpected command `reboot`"),
        "an unscripted command is an error naming it, not a panic",
    )?;
    exec.no_verify_on_drop();

    println!("\n[3/4] Mount utilities on the fake: mount(8) and umount(8) change its mount table");
    let exec = FakeExecutor::new().with_host(&host);
    exec.expect("mount")
        .times_any()
        .answer_with(host.mount_handler());
    exec.expect("umount")
        .times_any()
        .answer_with(host.mount_handler());
    let mounter = HostMounter::with_parts(exec.clone(), host.clone());
    host.dir("/mnt/demo").map_err(e)?;
    let target = Path::new("/mnt/demo");
    check(
        !mounter.is_mount_point(target).await.map_err(e)?,
        "not a mount point before",
    )?;
    let opts = MountOptions::new()
        .option("size=4m")
        .sensitive("password=hunter2");
    mounter
        .mount("demo-tmpfs".as_ref(), target, "tmpfs", &opts)
        .await
        .map_err(e)?;
    let call = exec
        .calls()
        .last()
        .map(ToString::to_string)
        .unwrap_or_default();
    println!("  recorded: {call}");
    check(
        call.contains("<masked>") && !call.contains("hunter2"),
        "the sensitive option is masked wherever the command is shown",
    )?;
    check(
        mounter.is_mount_point(target).await.map_err(e)?,
        "a mount point after mount",
    )?;
    let listed = mounter.list().await.map_err(e)?;
    let row = listed
        .iter()
        .find(|m| m.mount_point() == target)
        .ok_or("the new mount is in the table")?;
    println!(
        "  list(): {} {} on {}",
        row.source().to_string_lossy(),
        row.fs_type(),
        row.mount_point().display()
    );
    check(row.fs_type() == "tmpfs", "listed as tmpfs")?;
    mounter
        .unmount(target, &UnmountOptions::new())
        .await
        .map_err(e)?;
    check(
        !mounter.is_mount_point(target).await.map_err(e)?,
        "not a mount point after umount",
    )?;
    println!(
        "  mount, is-mountpoint, list, umount: all through the same HostMounter as on a real host"
    );

    println!("\n[4/4] What the fake cannot show: joining the host's namespaces");
    println!(
        "  The fake runs nothing on a real host. hostexec exec/realpath/mounts against a real\n  \
         host need CAP_SYS_ADMIN (setns) and usually CAP_SYS_PTRACE (/proc/PID/ns of another\n  \
         process): see docs/deploy.md."
    );
    exec.verify().map_err(e)?;
    Ok(())
}
