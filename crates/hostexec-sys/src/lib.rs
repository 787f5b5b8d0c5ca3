//! The only `unsafe` code of hostexec: safe wrappers of kernel and libc interfaces that
//! [rustix](https://docs.rs/rustix) and [nix](https://docs.rs/nix) do not offer.
//!
//! Every other crate of the workspace forbids `unsafe`; a call that needs it is written here
//! once, as a function whose signature cannot be misused (owned or borrowed descriptors,
//! slices, `CStr`), with a `// SAFETY:` comment on each `unsafe` block saying why the call
//! is sound. Prefer rustix or nix where they have the call: this crate only holds what they
//! lack.
#![allow(unsafe_code)]

pub mod mount;
