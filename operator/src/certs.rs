//! The webhook's CA and serving certificate: created, stored in a Secret, renewed before
//! expiry, with the old CA kept in the bundle during a switch.
