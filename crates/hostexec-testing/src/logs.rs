//! A `Write` sink that keeps what was written, for capturing logs and panic messages.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// Everything written to any clone of it, in one shared buffer.
#[derive(Clone, Debug, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// What was written so far, as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// What was written so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Appends `bytes` (also from a panic hook: never panics on a poisoned lock).
    pub fn push(&self, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn clones_share_one_buffer() {
        let c = super::Capture::new();
        let mut w = c.clone();
        w.write_all(b"one ").unwrap();
        c.push(b"two");
        assert_eq!(c.text(), "one two");
    }
}
