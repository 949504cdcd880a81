//! Batch requests that DynamoDB may answer only in part: the unprocessed part is
//! sent again after a growing, jittered pause, a bounded number of times.

use std::{collections::HashMap, future::Future, time::Duration};

use aws_sdk_dynamodb::types::KeysAndAttributes;

use super::{
    DynamoDbStore,
    item::{Item, attr, s},
    unavailable,
};
use crate::{adapters::backoff::Pauses, ports::StoreError};

/// BatchGetItem takes at most 100 keys.
pub(super) const MAX_GET_BATCH: usize = 100;

impl DynamoDbStore {
    /// The items of `keys` (at most [`MAX_GET_BATCH`]) that exist, read
    /// consistently, in no particular order.
    pub(super) async fn get_items(&self, keys: &[String]) -> Result<Vec<Item>, StoreError> {
        debug_assert!(keys.len() <= MAX_GET_BATCH);
        let requests = keys
            .iter()
            .map(|k| HashMap::from([(attr::CACHE_KEY.to_owned(), s(k))]))
            .collect();
        until_processed(Backoff::DEFAULT, requests, |keys| async move {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(unavailable)?;
            let mut out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(unavailable)?;
            let items = out
                .responses
                .as_mut()
                .and_then(|r| r.remove(&self.table))
                .unwrap_or_default();
            let left = out
                .unprocessed_keys
                .as_mut()
                .and_then(|u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            Ok((items, left))
        })
        .await
    }
}

/// How often and after which pauses the unprocessed part is sent again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    /// Sends after the first before giving up.
    pub retries: u32,
    pub pauses: Pauses,
}

impl Backoff {
    /// About ten seconds of retrying in all.
    pub const DEFAULT: Self = Self {
        retries: 8,
        pauses: Pauses {
            first: Duration::from_millis(100),
            max: Duration::from_secs(2),
        },
    };
}

#[derive(Debug, thiserror::Error)]
#[error("DynamoDB left {left} batch requests unprocessed after {retries} retries")]
struct Unprocessed {
    left: usize,
    retries: u32,
}

/// Sends `pending` with `send`, which answers what it processed and what it left,
/// until nothing is left. Returns everything processed.
pub(super) async fn until_processed<T, O, F, Fut>(
    backoff: Backoff,
    mut pending: Vec<T>,
    mut send: F,
) -> Result<Vec<O>, StoreError>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<(Vec<O>, Vec<T>), StoreError>>,
{
    let mut done = Vec::new();
    let mut retries = 0;
    while !pending.is_empty() {
        if retries > 0 {
            tokio::time::sleep(backoff.pauses.before_retry(retries)).await;
        }
        let (processed, left) = send(pending).await?;
        done.extend(processed);
        pending = left;
        if !pending.is_empty() {
            retries += 1;
            if retries > backoff.retries {
                return Err(StoreError::Unavailable(Box::new(Unprocessed {
                    left: pending.len(),
                    retries: backoff.retries,
                })));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn unprocessed_requests_are_sent_again_until_done() {
        let sent = Mutex::new(Vec::new());
        let got = until_processed(Backoff::DEFAULT, vec![1, 2, 3, 4], |batch: Vec<u32>| {
            sent.lock().unwrap().push(batch.clone());
            async move {
                // Process the first request of each batch only.
                let (first, rest) = batch.split_at(1);
                Ok((first.to_vec(), rest.to_vec()))
            }
        })
        .await
        .unwrap();
        assert_eq!(got, [1, 2, 3, 4]);
        assert_eq!(
            *sent.lock().unwrap(),
            [vec![1, 2, 3, 4], vec![2, 3, 4], vec![3, 4], vec![4]]
        );
    }

    #[tokio::test]
    async fn a_batch_that_never_completes_is_an_error() {
        let backoff = Backoff {
            retries: 3,
            pauses: Pauses {
                first: Duration::from_millis(1),
                max: Duration::from_millis(2),
            },
        };
        let sends = Mutex::new(0);
        let got = until_processed(backoff, vec![1u32], |batch| {
            *sends.lock().unwrap() += 1;
            async move { Ok((Vec::<u32>::new(), batch)) }
        })
        .await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
        assert_eq!(*sends.lock().unwrap(), 4);
    }
}
