//! The OSV vulnerability database. (implementation pending)
