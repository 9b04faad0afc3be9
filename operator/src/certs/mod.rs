//! The webhook's CA and serving certificate: created, stored in a Secret, renewed before
//! expiry, with the old CA kept in the bundle during a switch.
//!
//! # The Secret
//!
//! One Secret of type `kubernetes.io/tls`, written by server-side apply under
//! [`crate::FIELD_MANAGER`]:
//!
//! | key | content |
//! | --- | --- |
//! | `tls.crt`, `tls.key` | the serving certificate (ECDSA P-256, SANs from [`CertConfig`]) and its key |
//! | `ca.crt`, `ca.key` | the current CA and its key |
//! | `ca-previous.crt` | during a CA rotation only: the CA being replaced |
//!
//! The published bundle ([`CaBundle`]) is `ca.crt` followed by `ca-previous.crt`.
//!
//! # Shape
//!
//! - [`plan`] is pure: it looks at the Secret and the clock and says what to do ([`Plan`]);
//!   issuing and reading certificates (`x509`) is pure too.
//! - [`ensure`] performs one step of that plan, mirrors the files into
//!   [`CertConfig::cert_dir`] if set, and returns the bundle to put in `caBundle`.
//! - [`confirm_published`] records (in an annotation) that a bundle is now in the webhook
//!   configuration; a CA rotation waits for that before switching the serving certificate.
//! - [`run`] loops: on every change of the Secret (watch) and every
//!   [`CertConfig::resync`], it calls [`ensure`], hands the bundle to the caller's
//!   `on_bundle` (which applies the webhook configuration), then [`confirm_published`].
//!
//! # CA rotation
//!
//! A CA is replaced when less than a third of its life (or less than `renew_before`) remains,
//! when its key is lost, or when someone sets the annotation [`ANNOTATION_ROTATE_REQUEST`] to a
//! new value. The switch never leaves the API server with a certificate it cannot verify:
//!
//! 1. `RotateCa`: a new CA goes to `ca.crt`, the old one to `ca-previous.crt`; the serving
//!    certificate is untouched (still signed by the old CA). The bundle now holds both.
//! 2. `SwitchServing`: once that two-CA bundle has been confirmed as published for
//!    [`CertConfig::publish_grace`], a serving certificate signed by the new CA is issued and
//!    the time is recorded in [`ANNOTATION_SERVING_SWITCHED_AT`].
//! 3. `DropPreviousCa`: [`CertConfig::drain_grace`] after the switch (time for the kubelet to
//!    update every replica's Secret volume and the webhook to reload it), or once the old CA
//!    has expired, the old CA leaves the bundle.
//!
//! Every step is decided from the Secret alone, so an operator restarted at any point picks up
//! where it was. Renewing only the serving certificate (same CA) needs no such care.
//!
//! With [`CertConfig::external`] (cert-manager or any other issuer owns the Secret) the
//! Secret is only read: the bundle is its `ca.crt`.
//!
//! The webhook configuration that carries the bundle is [`registration`]'s; [`owner`] says
//! which object owns both.

mod api;
mod config;
mod error;
mod files;
pub mod owner;
mod plan;
pub mod registration;
mod run;
mod x509;

pub use api::{cluster_role, confirm_published, ensure};
pub use config::{CertConfig, service_dns_names};
pub use error::Error;
pub use files::write_cert_dir;
pub use plan::{
    ANNOTATION_BUNDLE_PUBLISHED, ANNOTATION_ROTATE_DONE, ANNOTATION_ROTATE_REQUEST,
    ANNOTATION_ROTATION_STARTED_AT, ANNOTATION_SERVING_SWITCHED_AT, CA_CRT, CA_KEY,
    CA_PREVIOUS_CRT, CaBundle, Plan, TLS_CRT, TLS_KEY, bundle, plan,
};
pub use run::run;
pub use x509::{Issued, issue_ca, issue_serving};
