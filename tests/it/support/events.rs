//! The sample events of `tests/fixtures/events/`, which the EventBridge rule
//! tests put on moto's buses.

use std::{collections::BTreeMap, path::PathBuf};

use drs_cache::domain::AccountId;
use serde_json::{Value, json};

const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";

/// The sample events, file name to event, each checked to have the envelope
/// EventBridge gives every event (and CloudTrail's fields for its calls).
pub fn fixtures() -> BTreeMap<String, Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
    let events: BTreeMap<String, Value> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let event: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, event)
        })
        .collect();
    assert!(!events.is_empty(), "no fixtures in {}", dir.display());
    for (name, event) in &events {
        // The EventBridge envelope every event has.
        for field in [
            "version",
            "id",
            "detail-type",
            "source",
            "account",
            "time",
            "region",
        ] {
            assert!(event[field].is_string(), "{name}: {field}");
        }
        assert!(event["resources"].is_array(), "{name}: resources");
        assert!(event["detail"].is_object(), "{name}: detail");
        assert!(
            AccountId::parse(event["account"].as_str().unwrap()).is_ok(),
            "{name}: account"
        );
        if event["detail-type"] == CLOUDTRAIL {
            for field in [
                "eventSource",
                "eventName",
                "awsRegion",
                "recipientAccountId",
                "eventID",
            ] {
                assert!(event["detail"][field].is_string(), "{name}: detail.{field}");
            }
        }
    }
    events
}

/// What identifies an event after EventBridge gave it a new id and time.
pub fn identity(event: &Value) -> Value {
    json!([
        event["source"],
        event["detail-type"],
        event["resources"],
        event["detail"]
    ])
}
