//! CloudWatch Embedded Metric Format: a metric is a JSON log line that names its
//! namespace, dimensions and metrics, which CloudWatch turns into metrics without
//! any API call.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The namespace of the original design's metrics.
pub const NAMESPACE: &str = "DROrchestration/QueryCache";

#[derive(Debug, Clone, Copy, Serialize)]
pub struct MetricDef {
    #[serde(rename = "Name")]
    pub name: &'static str,
    #[serde(rename = "Unit")]
    pub unit: &'static str,
}

impl MetricDef {
    pub const fn new(name: &'static str, unit: &'static str) -> Self {
        Self { name, unit }
    }
}

/// Metrics of a line and the dimension sets each is published under: one
/// directive of its `CloudWatchMetrics`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Directive<'a> {
    #[serde(rename = "Namespace")]
    namespace: &'static str,
    #[serde(rename = "Dimensions")]
    dimensions: &'a [&'a [&'static str]],
    #[serde(rename = "Metrics")]
    metrics: &'a [MetricDef],
}

impl<'a> Directive<'a> {
    /// `metrics` under each of `dimensions`, in [`NAMESPACE`].
    pub const fn new(dimensions: &'a [&'a [&'static str]], metrics: &'a [MetricDef]) -> Self {
        Self {
            namespace: NAMESPACE,
            dimensions,
            metrics,
        }
    }
}

#[derive(Serialize)]
struct Metadata<'a> {
    #[serde(rename = "Timestamp")]
    timestamp: u128,
    #[serde(rename = "CloudWatchMetrics")]
    cloudwatch_metrics: &'a [Directive<'a>],
}

#[derive(Serialize)]
struct Document<'a, T> {
    #[serde(rename = "_aws")]
    aws: Metadata<'a>,
    #[serde(flatten)]
    values: &'a T,
}

/// One EMF line in [`NAMESPACE`]: `values` must serialize to an object holding a
/// value for every dimension and metric named.
pub fn line<T: Serialize>(
    at: SystemTime,
    dimensions: &[&[&'static str]],
    metrics: &[MetricDef],
    values: &T,
) -> Vec<u8> {
    line_of(at, &[Directive::new(dimensions, metrics)], values)
}

/// One EMF line whose metrics are published under different dimension sets
/// (each set of each directive is a metric of its own, and billed so).
pub fn line_of<T: Serialize>(at: SystemTime, directives: &[Directive], values: &T) -> Vec<u8> {
    let document = Document {
        aws: Metadata {
            timestamp: at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()),
            cloudwatch_metrics: directives,
        },
        values,
    };
    serde_json::to_vec(&document).unwrap_or_default()
}

/// The most values one EMF metric holds (CloudWatch's limit on an array).
pub const MAX_VALUES: usize = 100;

/// Writes a line to standard output, where Lambda sends it to CloudWatch Logs.
/// A lost metric line never fails the work it describes.
pub fn emit(mut line: Vec<u8>) {
    use std::io::Write;
    line.push(b'\n');
    let _ = std::io::stdout().lock().write_all(&line);
}
