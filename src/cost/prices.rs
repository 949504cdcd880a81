//! Published AWS list prices for US East (N. Virginia), as published in 2026,
//! each as read from the service's pricing page on aws.amazon.com (named on
//! each constant). No free tier is applied: a deployment shares its account's
//! free tier with everything else in it. Upstream DRS, EC2, IAM and STS calls
//! cost no money; they count against the accounts' API quotas, so the
//! estimate reports their number instead of a price.

/// AWS Step Functions pricing, Standard Workflows: $0.025 per 1,000 state
/// transitions (retries count as transitions).
pub const SFN_PER_TRANSITION: f64 = 0.025 / 1_000.0;

/// AWS Step Functions pricing, Express Workflows: $1.00 per million requests
/// (executions started, a Distributed Map's Express children included).
pub const SFN_EXPRESS_PER_REQUEST: f64 = 1.00 / 1_000_000.0;

/// AWS Step Functions pricing, Express Workflows: $0.00001667 per GB-second of
/// duration (the first 1,000 GB-hours), billed in 100 ms steps and 64 MB of
/// memory.
pub const SFN_EXPRESS_PER_GB_SECOND: f64 = 0.000_016_67;

/// The memory an Express execution is billed for at least: 64 MB, which a
/// batch's state (a batch of targets and its next round) stays well inside.
pub const SFN_EXPRESS_MIN_MB: f64 = 64.0;

/// AWS Lambda pricing, Arm: $0.0000133334 per GB-second of duration (the first
/// tier, 7.5 billion GB-seconds a month).
pub const LAMBDA_ARM_PER_GB_SECOND: f64 = 0.000_013_333_4;

/// AWS Lambda pricing: $0.20 per 1 million requests (both architectures).
pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1_000_000.0;

/// Amazon DynamoDB pricing, on-demand capacity: $0.625 per million write
/// request units (one standard write of up to 1 KB).
pub const DYNAMODB_PER_WRU: f64 = 0.625 / 1_000_000.0;

/// Amazon DynamoDB pricing, on-demand capacity: $0.125 per million read
/// request units (one strongly consistent read of up to 4 KB, or two
/// eventually consistent ones).
pub const DYNAMODB_PER_RRU: f64 = 0.125 / 1_000_000.0;

/// Amazon DynamoDB pricing, Standard table class: $0.25 per GB-month of
/// storage (after the first 25 GB, which this estimate does not subtract).
pub const DYNAMODB_PER_GB_MONTH: f64 = 0.25;

/// Amazon API Gateway pricing, HTTP APIs: $1.00 per million requests (the first
/// 300 million a month).
pub const HTTP_API_PER_REQUEST: f64 = 1.00 / 1_000_000.0;

/// Amazon S3 pricing, S3 Standard requests: $0.005 per 1,000 PUT, COPY, POST or
/// LIST requests.
pub const S3_PER_PUT: f64 = 0.005 / 1_000.0;

/// Amazon S3 pricing, S3 Standard requests: $0.0004 per 1,000 GET requests.
pub const S3_PER_GET: f64 = 0.0004 / 1_000.0;

/// Amazon CloudWatch pricing, Logs: $0.50 per GB of standard log data ingested.
pub const LOGS_PER_GB_INGESTED: f64 = 0.50;

/// Amazon CloudWatch pricing, Metrics: $0.30 per custom metric a month for the
/// first 10,000 metrics (each metric name with one combination of dimension
/// values, prorated by the hour it is published in).
pub const CUSTOM_METRIC_PER_MONTH: f64 = 0.30;

/// Amazon EventBridge pricing, event buses: $1.00 per million custom events
/// published.
pub const EVENTBRIDGE_PER_EVENT: f64 = 1.00 / 1_000_000.0;

/// Lambda bills memory in GB of 1,024 MB.
pub const MB_PER_GB: f64 = 1_024.0;

/// DynamoDB write request units are counted per KB of item (1,024 bytes).
pub const WRITE_UNIT_BYTES: u64 = 1_024;

/// DynamoDB read request units are counted per 4 KB of item (4,096 bytes).
pub const READ_UNIT_BYTES: u64 = 4_096;
