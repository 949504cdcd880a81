//! Plan objects in an S3 bucket: `plans/{unix seconds}-{id}.json`, one per run,
//! encrypted and expired by the bucket's own configuration (see
//! `cfn/drs-cache.yaml`).

use async_trait::async_trait;
use aws_sdk_s3::{Client, primitives::ByteStream};

use crate::{
    domain::Timestamp,
    ports::StoreError,
    workflow::{PlanLocation, PlanStore},
};

use super::unique_id;

/// The prefix of plan objects, which the bucket's lifecycle rule expires.
pub const PLAN_PREFIX: &str = "plans/";

pub struct S3PlanStore {
    client: Client,
    bucket: String,
}

impl S3PlanStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

#[async_trait]
impl PlanStore for S3PlanStore {
    #[tracing::instrument(skip_all, fields(bucket = %self.bucket, bytes = body.len()))]
    async fn put(&self, body: Vec<u8>) -> Result<PlanLocation, StoreError> {
        let key = format!(
            "{PLAN_PREFIX}{}-{}.json",
            Timestamp::now().unix_secs(),
            unique_id()
        );
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(PlanLocation {
            bucket: self.bucket.clone(),
            key,
        })
    }
}

/// Why an object's text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// S3 refused or could not be reached; the message is the SDK's whole
    /// error chain (`NoSuchKey`, `AccessDenied`, ...).
    #[error("{0}")]
    Unavailable(String),
    #[error("{size} bytes, more than {max}")]
    TooLarge { size: usize, max: usize },
    #[error("not UTF-8 text")]
    NotText,
}

/// The text of the object `key` in `bucket`, refused above `max` bytes (its
/// size is checked before its body is read).
pub async fn read_text(
    client: &Client,
    bucket: &str,
    key: &str,
    max: usize,
) -> Result<String, ObjectError> {
    let unavailable = |e: &dyn std::error::Error| {
        ObjectError::Unavailable(
            aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
        )
    };
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| unavailable(&e))?;
    if let Some(size) = object
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        && size > max
    {
        return Err(ObjectError::TooLarge { size, max });
    }
    let body = object
        .body
        .collect()
        .await
        .map_err(|e| unavailable(&e))?
        .into_bytes();
    if body.len() > max {
        return Err(ObjectError::TooLarge {
            size: body.len(),
            max,
        });
    }
    String::from_utf8(body.to_vec()).map_err(|_| ObjectError::NotText)
}
