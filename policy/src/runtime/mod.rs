//! Runtime rules: what container processes do after admission, judged by pure functions.

pub mod event;
