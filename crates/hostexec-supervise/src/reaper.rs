//! The background reaper: a process that could not be reaped in time (blocked in the kernel
//! in state `D`) is waited for on a small thread of its own until it ends, so that it never
//! stays a zombie. A process that is not (or not yet) a child of this process is waited for
//! until it ends, then reaped if it has become one (re-parented to this subreaper).

use std::sync::Arc;

use crate::process::Process;

/// Reaps `p` in the background when it ends.
pub(crate) fn reap_later(p: Process) {
    reap_later_arc(Arc::new(p));
}

/// [`reap_later`] for a shared handle.
pub(crate) fn reap_later_arc(p: Arc<Process>) {
    let start = crate::process::read_stat(p.pid()).map(|s| s.start);
    let spawned = std::thread::Builder::new()
        .name("hostexec-reaper".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            match p.reap_blocking() {
                Ok(_) => return,
                Err(e) if e.raw_os_error() == Some(4) => continue,
                // ECHILD: not (yet) a child of ours. Wait until it has ended; its parent
                // (killed too, or dying) then reaps it, or it is re-parented here and reaped
                // on the next turn.
                Err(_) => {
                    while !p.wait_ended(std::time::Duration::from_secs(3600)) {}
                    for _ in 0..200 {
                        if matches!(p.try_reap(), Ok(Some(_))) {
                            return;
                        }
                        // Gone (reaped by its parent), or the PID now names another process.
                        match crate::process::read_stat(p.pid()) {
                            Some(s) if Some(s.start) == start => {}
                            _ => return,
                        }
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    return;
                }
            }
        });
    // No thread: nothing more can be done here; the kernel reaps it if this process exits.
    drop(spawned);
}
