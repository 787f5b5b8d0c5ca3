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
    let spawned = std::thread::Builder::new()
        .name("hostexec-reaper".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            match p.reap_blocking() {
                Ok(_) => return,
                Err(e) if e.raw_os_error() == Some(4) => continue,
                // ECHILD: not a child of ours (its parent reaps it): wait until it ends and
                // try once more, in case it was re-parented here meanwhile.
                Err(_) => {
                    while !p.wait_ended(std::time::Duration::from_secs(3600)) {}
                    let _ = p.try_reap();
                    return;
                }
            }
        });
    // No thread: nothing more can be done here; the kernel reaps it if this process exits.
    drop(spawned);
}
