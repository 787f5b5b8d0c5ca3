//! A scanner of every process's `/proc/PID/cmdline` and `/proc/PID/environ`, for tests that
//! prove a secret reaches no process (or that a route's argv does carry it).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Scans `/proc/*/{cmdline,environ}` (this process's own excepted) in a loop on a thread of
/// its own until [`finish`](Scanner::finish); counts full passes and hits of one needle.
#[derive(Debug)]
pub struct Scanner {
    stop: Arc<AtomicBool>,
    passes: Arc<AtomicUsize>,
    hits: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scanner {
    /// Starts scanning for `needle`.
    pub fn start(needle: &'static [u8]) -> Scanner {
        let stop = Arc::new(AtomicBool::new(false));
        let passes = Arc::new(AtomicUsize::new(0));
        let hits = Arc::new(AtomicUsize::new(0));
        let (s, p, h) = (stop.clone(), passes.clone(), hits.clone());
        let me = std::process::id().to_string();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok(dir) = std::fs::read_dir("/proc") else {
                    return;
                };
                for entry in dir.flatten() {
                    let name = entry.file_name();
                    let name = name.to_string_lossy();
                    if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
                        continue;
                    }
                    for file in ["cmdline", "environ"] {
                        // A process that ended meanwhile is simply gone.
                        if let Ok(data) = std::fs::read(entry.path().join(file)) {
                            if data.windows(needle.len()).any(|w| w == needle) {
                                h.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                p.fetch_add(1, Ordering::Relaxed);
            }
        });
        Scanner {
            stop,
            passes,
            hits,
            thread: Some(thread),
        }
    }

    /// Full passes so far.
    pub fn passes(&self) -> usize {
        self.passes.load(Ordering::Relaxed)
    }

    /// Hits so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// Stops the scan: (passes, hits).
    pub fn finish(mut self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A panicked scan thread is reported by the counts it left.
            let _ = t.join();
        }
        (self.passes(), self.hits())
    }
}

impl Drop for Scanner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
