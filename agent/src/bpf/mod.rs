//! The generated skeleton of the kernel programs: the one place unsafe code is allowed.
#![allow(
    unsafe_code,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    missing_docs,
    unused
)]

include!(concat!(env!("OUT_DIR"), "/sensor.skel.rs"));
