//! How a controller's result stream is logged: a reconciled object at debug, a failed
//! reconcile (retried by the `error_policy`) and a failing watch as warnings. An object
//! gone before its reconcile ran is not news.

use std::error::Error as StdError;

use kube::runtime::controller::{Action, Error};
use kube::runtime::reflector::{Lookup, ObjectRef};
use tracing::{debug, warn};

use crate::error::report;

/// Log one item of the stream `Controller::run` returns; `controller` names the controller
/// (`SecurityPolicy controller`). Use as `.for_each(|r| { log_result(NAME, r); ready(()) })`.
pub fn log_result<K, ReconcileErr, QueueErr>(
    controller: &str,
    result: Result<(ObjectRef<K>, Action), Error<ReconcileErr, QueueErr>>,
) where
    K: Lookup,
    ReconcileErr: StdError + 'static,
    QueueErr: StdError + 'static,
{
    match result {
        Ok((object, _)) => debug!(controller, object = %object.name, "reconciled"),
        Err(Error::ReconcilerFailed(e, object)) => {
            warn!(controller, object = %object.name, error = %report(&e), "reconcile failed; retrying with backoff");
        }
        Err(Error::ObjectNotFound(_)) => {}
        Err(e) => warn!(error = %report(&e), "{controller}"),
    }
}
