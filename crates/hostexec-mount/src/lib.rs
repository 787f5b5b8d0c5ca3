//! hostexec-mount (work in progress).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

pub mod mountinfo;
