//! Package version comparison exactly as each package manager defines it.
//! (implementation pending)
