//! OCI distribution client. (implementation pending)
