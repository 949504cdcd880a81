//! In-process refresh queue for the local mode: requests wait here until the
//! local refresher takes them. A target already waiting is not queued twice.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
};

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{
    domain::CacheKey,
    ports::{Invalidation, RefreshReason, RefreshRequestError, RefreshTrigger, RunRequests},
};

/// What the local refresher is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRequest {
    /// Refresh one target.
    Target {
        key: CacheKey,
        reason: RefreshReason,
    },
    /// Refresh every configured target an invalidation matches.
    Invalidation(Invalidation),
}

/// What is waiting: targets, and invalidations by their description.
type Pending = Arc<Mutex<HashSet<String>>>;

/// The sending side, handed to the reader as its `RefreshTrigger`.
#[derive(Clone)]
pub struct LocalRefreshQueue {
    tx: mpsc::Sender<RefreshRequest>,
    pending: Pending,
}

/// The receiving side, for the local refresher.
pub struct LocalRefreshReceiver {
    rx: mpsc::Receiver<RefreshRequest>,
    pending: Pending,
}

/// The queue refused a request.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the local refresh queue is full")]
    Full,
    #[error("the local refresher has stopped")]
    Closed,
}

impl LocalRefreshQueue {
    /// A queue holding at most `capacity` waiting targets.
    pub fn new(capacity: usize) -> (Self, LocalRefreshReceiver) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let pending = Pending::default();
        (
            Self {
                tx,
                pending: pending.clone(),
            },
            LocalRefreshReceiver { rx, pending },
        )
    }
}

fn lock(p: &Pending) -> std::sync::MutexGuard<'_, HashSet<String>> {
    p.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LocalRefreshQueue {
    /// Queues `request` unless the same one is waiting.
    fn send(&self, request: RefreshRequest) -> Result<(), RefreshRequestError> {
        let id = request.id();
        if !lock(&self.pending).insert(id.clone()) {
            return Ok(());
        }
        self.tx.try_send(request).map_err(|e| {
            lock(&self.pending).remove(&id);
            let error = match e {
                mpsc::error::TrySendError::Full(_) => QueueError::Full,
                mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
            };
            RefreshRequestError {
                key: id,
                source: Box::new(error),
            }
        })
    }
}

impl RefreshRequest {
    /// Equal for requests that do the same work.
    fn id(&self) -> String {
        match self {
            Self::Target { key, .. } => key.to_string(),
            Self::Invalidation(inv) => format!("invalidate {inv}"),
        }
    }
}

#[async_trait]
impl RefreshTrigger for LocalRefreshQueue {
    async fn request_refresh(
        &self,
        key: &CacheKey,
        reason: RefreshReason,
    ) -> Result<(), RefreshRequestError> {
        self.send(RefreshRequest::Target {
            key: key.clone(),
            reason,
        })
    }

    async fn request_invalidation(
        &self,
        invalidation: &Invalidation,
    ) -> Result<(), RefreshRequestError> {
        self.send(RefreshRequest::Invalidation(invalidation.clone()))
    }
}

#[async_trait]
impl RunRequests for LocalRefreshQueue {
    /// One request per key: a key already waiting has not been refreshed yet,
    /// so the waiting request stands for this one too.
    async fn request_targets(
        &self,
        keys: &[CacheKey],
        reason: RefreshReason,
    ) -> Result<(), RefreshRequestError> {
        for key in keys {
            self.send(RefreshRequest::Target {
                key: key.clone(),
                reason,
            })?;
        }
        Ok(())
    }
}

impl LocalRefreshReceiver {
    /// The next request; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<RefreshRequest> {
        let request = self.rx.recv().await?;
        lock(&self.pending).remove(&request.id());
        Some(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_target_is_queued_once_and_again_after_it_is_taken() {
        let (queue, mut rx) = LocalRefreshQueue::new(8);
        let key = CacheKey::parse("drs-quotas#us-east-1#123456789012").unwrap();
        for _ in 0..5 {
            queue
                .request_refresh(&key, RefreshReason::Miss)
                .await
                .unwrap();
        }
        assert_eq!(
            rx.recv().await.unwrap(),
            RefreshRequest::Target {
                key: key.clone(),
                reason: RefreshReason::Miss
            }
        );
        assert!(
            rx.rx.try_recv().is_err(),
            "burst collapsed into one request"
        );
        queue
            .request_refresh(&key, RefreshReason::Miss)
            .await
            .unwrap();
        assert!(matches!(
            rx.recv().await.unwrap(),
            RefreshRequest::Target {
                reason: RefreshReason::Miss,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_full_queue_is_an_error_not_a_wait() {
        let (queue, _rx) = LocalRefreshQueue::new(1);
        let a = CacheKey::parse("drs-quotas#us-east-1#123456789012").unwrap();
        let b = CacheKey::parse("drs-quotas#us-east-2#123456789012").unwrap();
        queue
            .request_refresh(&a, RefreshReason::Miss)
            .await
            .unwrap();
        assert!(
            queue
                .request_refresh(&b, RefreshReason::Miss)
                .await
                .is_err()
        );
    }
}
