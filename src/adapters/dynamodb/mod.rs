//! The DynamoDB cache table.
