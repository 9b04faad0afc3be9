//! What scanning shares with the audit, so that the audit judges running workloads' images
//! by the reports of what runs without a registry call of its own. Scanning fills it; the
//! audit only reads it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use kube::runtime::reflector::Store;
use palisade_crds::ImageScanReport;

/// What scanning shares with the audit: the reports the scan controller holds (set once
/// it runs) and the digests the running-images watcher saw. One per leadership term.
#[derive(Clone, Default)]
pub struct ScanView {
    pub reports: Arc<OnceLock<Store<ImageScanReport>>>,
    pub digests: DigestBook,
}

/// The last digest seen for each image reference (normalized, as [`ImageRef`](palisade_imageref::ImageRef) prints it),
/// from container statuses or the registry. The audit reads it to judge workloads' images
/// by the reports of what runs, without registry calls of its own.
#[derive(Debug, Clone, Default)]
pub struct DigestBook(Arc<RwLock<HashMap<String, String>>>);

impl DigestBook {
    pub fn record(&self, image: &str, digest: &str) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if map.get(image).is_none_or(|d| d != digest) {
            map.insert(image.to_owned(), digest.to_owned());
        }
    }

    pub fn get(&self, image: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(image)
            .cloned()
    }
}
