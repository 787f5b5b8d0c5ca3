//! `cargo xtask man [DIR]`: the man pages of `hostexec` and of each subcommand
//! (`hostexec.1`, `hostexec-exec.1`, …), rendered by clap_mangen from the same clap
//! definition the binary parses, into DIR (default `target/man`).

use std::path::{Path, PathBuf};

pub(crate) fn man(args: &[String]) -> Result<(), String> {
    let dir = match args {
        [] => PathBuf::from("target/man"),
        [d] => PathBuf::from(d),
        _ => return Err("usage: cargo xtask man [DIR]".into()),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cmd = hostexec_cli::command();
    let mut written = Vec::new();
    render(&cmd, "hostexec", &dir, &mut written)?;
    for sub in cmd.get_subcommands() {
        let name = format!("hostexec-{}", sub.get_name());
        render(sub, &name, &dir, &mut written)?;
    }
    for p in &written {
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

fn render(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .render(&mut buf)
        .map_err(|e| format!("rendering {name}: {e}"))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, &buf).map_err(|e| format!("{}: {e}", path.display()))?;
    written.push(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_page_per_subcommand_with_its_options() {
        let dir = std::env::temp_dir().join(format!("hostexec-man-{}", std::process::id()));
        super::man(&[dir.to_string_lossy().into_owned()]).unwrap();
        let top = std::fs::read_to_string(dir.join("hostexec.1")).unwrap();
        assert!(
            top.starts_with(".ie"),
            "roff: {}",
            &top[..40.min(top.len())]
        );
        assert!(top.contains(".TH HOSTEXEC 1"), "{top}");
        assert!(top.contains("target\\-pid"), "global options documented");
        let mount = std::fs::read_to_string(dir.join("hostexec-mount.1")).unwrap();
        assert!(mount.contains("rbind"), "{mount}");
        assert!(mount.contains("remount"), "{mount}");
        for sub in [
            "exec",
            "realpath",
            "which",
            "mounts",
            "is-mountpoint",
            "umount",
        ] {
            assert!(dir.join(format!("hostexec-{sub}.1")).exists(), "{sub}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
