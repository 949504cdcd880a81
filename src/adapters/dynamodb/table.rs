//! The cache table's schema: creating it, waiting for it, and turning on TTL.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement,
        KeyType, Projection, ProjectionType, ScalarAttributeType, TableStatus,
        TimeToLiveSpecification, TimeToLiveStatus,
    },
};

use super::item::attr;
use crate::ports::BoxError;

/// The index that lists the entries of one data type, oldest `createdAt` first.
pub const INDEX_BY_DATA_TYPE: &str = "dataType-createdAt-index";

/// The non-key attributes projected into the index: exactly what `EntryMeta`
/// needs, so a listing never reads payloads.
const INDEX_ATTRIBUTES: [&str; 11] = [
    attr::VERSION,
    attr::ETAG,
    attr::STATE,
    attr::FETCHED_AT,
    attr::EXPIRES_AT,
    attr::TTL,
    attr::ITEM_COUNT,
    attr::FIGURES,
    attr::LAST_ATTEMPT_AT,
    attr::LAST_ERROR_KIND,
    attr::LAST_ERROR_MESSAGE,
];

/// How long `create_table` waits for a new table to become active.
const CREATE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("DynamoDB request on table {table} failed")]
    Request {
        table: String,
        #[source]
        source: BoxError,
    },
    #[error("table {table} is not active after {waited:?}")]
    NotActive { table: String, waited: Duration },
    #[error("table {table} exists with another schema: {reason}")]
    Schema { table: String, reason: String },
}

fn request(table: &str, source: impl Into<BoxError>) -> TableError {
    TableError::Request {
        table: table.to_owned(),
        source: source.into(),
    }
}

/// Creates the cache table (on-demand capacity) with its index, waits until it
/// is active and enables TTL on `ttl`. A table that already exists with this key
/// schema and index is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<(), TableError> {
    let definition = |name: &str, ty| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ty)
            .build()
            .map_err(|e| request(table, e))
    };
    let key = |name: &str, ty| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(ty)
            .build()
            .map_err(|e| request(table, e))
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name(INDEX_BY_DATA_TYPE)
        .key_schema(key(attr::DATA_TYPE, KeyType::Hash)?)
        .key_schema(key(attr::CREATED_AT, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(
                    INDEX_ATTRIBUTES.iter().map(|&a| a.to_owned()).collect(),
                ))
                .build(),
        )
        .build()
        .map_err(|e| request(table, e))?;
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(definition(attr::CACHE_KEY, ScalarAttributeType::S)?)
        .attribute_definitions(definition(attr::DATA_TYPE, ScalarAttributeType::S)?)
        .attribute_definitions(definition(attr::CREATED_AT, ScalarAttributeType::N)?)
        .key_schema(key(attr::CACHE_KEY, KeyType::Hash)?)
        .global_secondary_indexes(index)
        .send()
        .await;
    match created {
        Ok(_) => tracing::info!(table, "created cache table"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            tracing::debug!(table, "cache table exists");
        }
        Err(e) => return Err(request(table, e)),
    }
    wait_until_active(client, table, CREATE_TIMEOUT).await?;
    enable_ttl(client, table).await
}

/// Waits until `table` and its indexes are active, checking that it has the
/// cache table's key schema and index.
async fn wait_until_active(
    client: &Client,
    table: &str,
    timeout: Duration,
) -> Result<(), TableError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| request(table, e))?;
        let description = described.table().ok_or_else(|| TableError::Schema {
            table: table.to_owned(),
            reason: "DescribeTable returned no table".into(),
        })?;
        let hash_key = description
            .key_schema()
            .iter()
            .find(|k| k.key_type() == &KeyType::Hash)
            .map(|k| k.attribute_name());
        if hash_key != Some(attr::CACHE_KEY) || description.key_schema().len() != 1 {
            return Err(TableError::Schema {
                table: table.to_owned(),
                reason: format!("the key must be {} alone", attr::CACHE_KEY),
            });
        }
        let index = description
            .global_secondary_indexes()
            .iter()
            .find(|i| i.index_name() == Some(INDEX_BY_DATA_TYPE))
            .ok_or_else(|| TableError::Schema {
                table: table.to_owned(),
                reason: format!("index {INDEX_BY_DATA_TYPE} is missing"),
            })?;
        // A table made by an earlier release may project fewer attributes:
        // listing through it would lose them (the figures, for one).
        let projection = index.projection();
        let projected = projection
            .map(|p| p.non_key_attributes())
            .unwrap_or_default();
        let all = projection.and_then(|p| p.projection_type()) == Some(&ProjectionType::All);
        if let Some(absent) = INDEX_ATTRIBUTES
            .iter()
            .find(|a| !all && !projected.iter().any(|p| p == *a))
        {
            return Err(TableError::Schema {
                table: table.to_owned(),
                reason: format!(
                    "index {INDEX_BY_DATA_TYPE} does not project {absent}: rebuild the index (docs/operations.md)"
                ),
            });
        }
        if description.table_status() == Some(&TableStatus::Active)
            && index.index_status() == Some(&IndexStatus::Active)
        {
            return Ok(());
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(TableError::NotActive {
                table: table.to_owned(),
                waited,
            });
        }
        tokio::time::sleep(pause.min(timeout - waited)).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Enables TTL on `ttl` unless it is already on (DynamoDB refuses to enable it
/// twice).
async fn enable_ttl(client: &Client, table: &str) -> Result<(), TableError> {
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| request(table, e))?;
    let current = described.time_to_live_description();
    let status = current.and_then(|d| d.time_to_live_status());
    let attribute = current.and_then(|d| d.attribute_name());
    if let Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling) = status {
        return if attribute == Some(attr::TTL) {
            Ok(())
        } else {
            Err(TableError::Schema {
                table: table.to_owned(),
                reason: format!(
                    "TTL is enabled on {:?}, not {}",
                    attribute.unwrap_or_default(),
                    attr::TTL
                ),
            })
        };
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(attr::TTL)
        .build()
        .map_err(|e| request(table, e))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| request(table, e))?;
    Ok(())
}
