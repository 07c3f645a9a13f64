//! The stop signal background loops wait on between rounds.
//!
//! A loop that waited only for the signal's value to change spun without
//! pause once the sending side was gone: `kycdesk bench` drops its
//! `Application` after loading, and its webhook dispatcher and retake sweep
//! then polled the database tens of thousands of times a second, taking a
//! core and the SQLite write lock from the server being measured. A sender
//! that no longer exists can never ask again, so it counts as a stop.

use std::time::Duration;
use tokio::sync::watch;

/// Waits up to `pause` for a stop. True when a stop was asked for or the
/// sender is gone (the loop must end); false when the pause ran out.
pub async fn wait(signal: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    if *signal.borrow_and_update() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => false,
        changed = signal.changed() => changed.is_err() || *signal.borrow_and_update(),
    }
}

/// Runs `round` now and then every `pause` until a stop (see `wait`): the
/// shape of every periodic background loop.
pub async fn every<F, Fut>(mut signal: watch::Receiver<bool>, pause: Duration, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        round().await;
        if wait(&mut signal, pause).await {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dropped_sender_counts_as_a_stop() {
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        let started = std::time::Instant::now();
        assert!(wait(&mut rx, Duration::from_secs(30)).await);
        assert!(started.elapsed() < Duration::from_secs(5));
        // And keeps counting as one on every later round.
        assert!(wait(&mut rx, Duration::from_secs(30)).await);
    }

    #[tokio::test]
    async fn a_live_sender_pauses_then_stops_on_request() {
        let (tx, mut rx) = watch::channel(false);
        assert!(!wait(&mut rx, Duration::from_millis(20)).await);
        let waiter = tokio::spawn(async move { wait(&mut rx, Duration::from_secs(30)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send_replace(true);
        assert!(waiter.await.unwrap_or(false));
    }

    #[tokio::test]
    async fn a_stop_sent_before_the_wait_is_seen() {
        let (tx, mut rx) = watch::channel(false);
        tx.send_replace(true);
        assert!(wait(&mut rx, Duration::from_secs(30)).await);
    }
}
