//! A stop signal shared by the parts of a process: a `watch` channel that turns true once.

use tokio::sync::watch;

/// A future that completes when `rx` turns true (or its sender is gone).
pub async fn triggered(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn triggered_completes_on_true_or_a_dropped_sender() {
        let (tx, rx) = watch::channel(false);
        let t = tokio::spawn(triggered(rx));
        tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .expect("completes")
            .expect("no panic");
        let (tx, rx) = watch::channel(false);
        drop(tx);
        tokio::time::timeout(Duration::from_secs(5), triggered(rx))
            .await
            .expect("completes");
    }
}
