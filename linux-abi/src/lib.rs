//! Linux x86-64 ABI definitions shared by the rsentry crates.
//!
//! This crate owns the numbers and layouts that the application sees: system call
//! numbers ([`sysno`]), error numbers ([`Errno`]), flag constants ([`flags`]) and
//! `#[repr(C)]` structures ([`types`]) laid out exactly as the kernel lays them out.
//! It has no policy and no platform code.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod errno;
pub mod flags;
pub mod signal;
pub mod sysno;
pub mod types;

pub use errno::Errno;
