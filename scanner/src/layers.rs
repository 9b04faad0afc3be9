//! Walking image layers. (implementation pending)
