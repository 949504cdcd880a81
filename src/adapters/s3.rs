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
