//! The change feed on Amazon EventBridge: each change event one PutEvents
//! entry on the deployment's bus, with `drs-cache` as its source, so consumers
//! subscribe with ordinary rules (`{"source": ["drs-cache"], "detail-type":
//! [...]}`).
//!
//! Entries go in calls of at most ten and at most 256 KiB, a few calls in
//! flight at once. An entry that a call refused for a passing reason
//! (throttling, an internal failure), or whose whole call failed so, is sent
//! again after a growing, jittered pause, a bounded number of times; then it
//! is counted failed and logged. An entry over the size limit is counted
//! failed without a call. Nothing here fails a cache write.

use std::{future::Future, time::Duration};

use async_trait::async_trait;
use aws_sdk_eventbridge::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    operation::put_events::{PutEventsError, PutEventsOutput},
    types::PutEventsRequestEntry,
};
use futures::{StreamExt, stream};

use crate::{
    adapters::backoff::Pauses,
    domain::changes::{ChangeEvent, SOURCE},
    errors,
    ports::{ChangeFeed, PublishOutcome},
};

/// PutEvents takes at most ten entries a call.
const MAX_ENTRIES: usize = 10;
/// PutEvents takes at most 256 KiB of entries a call, so an entry is at most
/// that large too.
pub const MAX_CALL_BYTES: usize = 256 * 1024;
/// PutEvents calls of one `publish` in flight at once.
const MAX_IN_FLIGHT: usize = 4;

/// Per-entry error codes that sending again cannot cure.
const PERMANENT_ENTRY_CODES: &[&str] = &[
    "AccessDeniedException",
    "InvalidArgument",
    "MalformedDetail",
    "NotAuthorizedForDetailTypeException",
    "NotAuthorizedForSourceException",
    "ResourceNotFoundException",
    "ValidationException",
];
/// Error codes of a whole call that a later call may not meet.
const PASSING_CALL_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "InternalException",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Publishes change events to the EventBridge bus `bus`.
pub struct EventBridgeFeed {
    client: Client,
    bus: String,
    retry: Retry,
}

impl EventBridgeFeed {
    /// Publishes to `bus`, a bus name or ARN (`default` for the account's
    /// default bus), with `client`.
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
            retry: Retry::DEFAULT,
        }
    }
}

/// How often, and after which pauses, an entry is sent.
#[derive(Debug, Clone, Copy)]
struct Retry {
    /// Sends of an entry, the first included (at least one).
    attempts: u32,
    pauses: Pauses,
}

impl Retry {
    /// Three sends, about 100 ms and 200 ms apart.
    const DEFAULT: Self = Self {
        attempts: 3,
        pauses: Pauses {
            first: Duration::from_millis(100),
            max: Duration::from_secs(2),
        },
    };
}

/// One event ready to send: its detail as JSON text and its size as
/// EventBridge counts it (source, detail-type and detail; the bus name is
/// counted too, to stay on the safe side).
struct Entry<'a> {
    event: &'a ChangeEvent,
    detail: String,
    size: usize,
}

impl<'a> Entry<'a> {
    fn new(event: &'a ChangeEvent, bus: &str) -> Self {
        let detail = event.detail.to_string();
        let size = SOURCE.len() + event.detail_type.len() + detail.len() + bus.len();
        Self {
            event,
            detail,
            size,
        }
    }

    fn request(&self, bus: &str) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(self.event.detail_type)
            .detail(&self.detail)
            .event_bus_name(bus)
            .set_resources(Some(Vec::new()))
            .build()
    }
}

/// `entries` in order, in calls of at most [`MAX_ENTRIES`] entries and
/// [`MAX_CALL_BYTES`] bytes. Each entry must fit in a call alone.
fn batches(entries: Vec<Entry<'_>>) -> Vec<Vec<Entry<'_>>> {
    let mut batches: Vec<Vec<Entry<'_>>> = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        match batches.last_mut() {
            Some(batch) if batch.len() < MAX_ENTRIES && bytes + entry.size <= MAX_CALL_BYTES => {
                bytes += entry.size;
                batch.push(entry);
            }
            _ => {
                bytes = entry.size;
                batches.push(vec![entry]);
            }
        }
    }
    batches
}

/// Why an entry, or a whole call, was not accepted.
#[derive(Debug, Clone)]
struct Failure {
    code: String,
    message: String,
    /// Whether sending again may succeed.
    passing: bool,
}

/// What one call said about the entries it was sent.
#[derive(Debug)]
enum Answer {
    /// The call was answered: for each entry sent, in order, `None` if it was
    /// accepted, else why not.
    Entries(Vec<Option<Failure>>),
    /// The call itself failed: no entry was accepted.
    Call(Failure),
}

/// What PutEvents answered for `sent` entries. An entry the answer says
/// nothing about was accepted unless the answer counts failures, in which case
/// it is sent again.
fn answer(sent: usize, output: &PutEventsOutput) -> Answer {
    let results = output.entries();
    let counted_failures = output.failed_entry_count() > 0;
    Answer::Entries(
        (0..sent)
            .map(|i| match results.get(i) {
                Some(result) => result.error_code().map(|code| Failure {
                    code: code.to_owned(),
                    message: result.error_message().unwrap_or_default().to_owned(),
                    passing: !PERMANENT_ENTRY_CODES.contains(&code),
                }),
                None if counted_failures => Some(Failure {
                    code: "MissingResult".to_owned(),
                    message: "PutEvents counted failures but named no result for the entry"
                        .to_owned(),
                    passing: true,
                }),
                None => None,
            })
            .collect(),
    )
}

/// A failed PutEvents call: a timeout, a connection failure or an answer that
/// could not be read may pass; an error answer may pass if it is a throttling,
/// an internal failure, a 429 or a 5xx.
fn call_failure(error: &SdkError<PutEventsError>) -> Failure {
    let status = error.raw_response().map(|r| r.status().as_u16());
    let passing = match error {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(_) => {
            error
                .code()
                .is_some_and(|c| PASSING_CALL_CODES.contains(&c))
                || status.is_some_and(|s| s == 429 || s >= 500)
        }
        _ => true,
    };
    Failure {
        code: error.code().unwrap_or("CallFailed").to_owned(),
        message: match error.message() {
            Some(message) => message.to_owned(),
            None => errors::chain(error),
        },
        passing,
    }
}

/// Sends `batch` with `send` until every entry is accepted or given up on:
/// refused for good, or not accepted in `retry.attempts` sends. Only what was
/// not accepted is sent again.
async fn deliver<'e, F, Fut>(
    retry: Retry,
    bus: &str,
    batch: Vec<Entry<'e>>,
    mut send: F,
) -> PublishOutcome
where
    F: FnMut(Vec<PutEventsRequestEntry>) -> Fut,
    Fut: Future<Output = Answer>,
{
    let mut outcome = PublishOutcome::default();
    let mut pending = batch;
    let mut attempt = 0;
    while !pending.is_empty() {
        if attempt > 0 {
            tokio::time::sleep(retry.pauses.before_retry(attempt)).await;
        }
        attempt += 1;
        let last = attempt >= retry.attempts.max(1);
        let answer = send(pending.iter().map(|e| e.request(bus)).collect()).await;
        let mut again = Vec::new();
        let mut settle = |entry: Entry<'e>, failure: Option<&Failure>| match failure {
            None => outcome.published += 1,
            Some(failure) if failure.passing && !last => again.push(entry),
            Some(failure) => {
                give_up(&entry, failure, attempt);
                outcome.failed += 1;
            }
        };
        match answer {
            Answer::Call(failure) => {
                for entry in pending {
                    settle(entry, Some(&failure));
                }
            }
            Answer::Entries(results) => {
                let mut results = results.into_iter();
                for entry in pending {
                    settle(entry, results.next().flatten().as_ref());
                }
            }
        }
        pending = again;
    }
    outcome
}

fn give_up(entry: &Entry<'_>, failure: &Failure, attempts: u32) {
    tracing::warn!(
        detail_type = entry.event.detail_type,
        cache_key = %entry.event.key,
        error_code = %failure.code,
        error = %failure.message,
        attempts,
        "change event not published"
    );
}

impl EventBridgeFeed {
    async fn put_events(&self, entries: Vec<PutEventsRequestEntry>) -> Answer {
        let sent = entries.len();
        match self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => answer(sent, &output),
            Err(error) => Answer::Call(call_failure(&error)),
        }
    }
}

#[async_trait]
impl ChangeFeed for EventBridgeFeed {
    #[tracing::instrument(skip_all, fields(events = events.len(), bus = %self.bus))]
    async fn publish(&self, events: &[ChangeEvent]) -> PublishOutcome {
        let mut outcome = PublishOutcome::default();
        let mut entries = Vec::with_capacity(events.len());
        for event in events {
            let entry = Entry::new(event, &self.bus);
            if entry.size > MAX_CALL_BYTES {
                tracing::warn!(
                    detail_type = event.detail_type,
                    cache_key = %event.key,
                    size = entry.size,
                    limit = MAX_CALL_BYTES,
                    "change event too large to publish"
                );
                outcome.failed += 1;
            } else {
                entries.push(entry);
            }
        }
        // Made before they are streamed: a stream mapping batches by a closure
        // is not `Send` for every lifetime, as the trait's future must be.
        let deliveries: Vec<_> = batches(entries)
            .into_iter()
            .map(|batch| deliver(self.retry, &self.bus, batch, |r| self.put_events(r)))
            .collect();
        let mut calls = stream::iter(deliveries).buffer_unordered(MAX_IN_FLIGHT);
        while let Some(delivered) = calls.next().await {
            outcome.published += delivered.published;
            outcome.failed += delivered.failed;
        }
        if outcome.failed > 0 {
            tracing::warn!(
                published = outcome.published,
                failed = outcome.failed,
                "change events not all published"
            );
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::CacheKey;

    const BUS: &str = "drs-cache-changes";

    const QUICK: Retry = Retry {
        attempts: 3,
        pauses: Pauses {
            first: Duration::from_millis(1),
            max: Duration::from_millis(2),
        },
    };

    fn event(detail_type: &'static str, n: usize, padding: usize) -> ChangeEvent {
        ChangeEvent {
            detail_type,
            key: CacheKey::parse("drs-source-servers#us-east-1#123456789012").unwrap(),
            detail: serde_json::json!({"n": n, "pad": "x".repeat(padding)}),
        }
    }

    fn entries(events: &[ChangeEvent]) -> Vec<Entry<'_>> {
        events.iter().map(|e| Entry::new(e, BUS)).collect()
    }

    fn failure(code: &str, passing: bool) -> Failure {
        Failure {
            code: code.into(),
            message: String::new(),
            passing,
        }
    }

    /// The `n` of each entry sent, per call.
    fn numbers(requests: &[PutEventsRequestEntry]) -> Vec<u64> {
        requests
            .iter()
            .map(|r| {
                let detail: serde_json::Value = serde_json::from_str(r.detail().unwrap()).unwrap();
                detail["n"].as_u64().unwrap()
            })
            .collect()
    }

    #[test]
    fn an_entry_names_the_source_detail_type_bus_and_no_resources() {
        let e = event("Source servers changed", 7, 0);
        let request = Entry::new(&e, BUS).request(BUS);
        assert_eq!(request.source(), Some("drs-cache"));
        assert_eq!(request.detail_type(), Some("Source servers changed"));
        assert_eq!(request.event_bus_name(), Some(BUS));
        assert_eq!(request.resources(), &[] as &[String]);
        assert!(request.resources.is_some(), "Resources is sent, empty");
        let detail: serde_json::Value = serde_json::from_str(request.detail().unwrap()).unwrap();
        assert_eq!(detail, e.detail);
    }

    #[test]
    fn calls_hold_at_most_ten_entries() {
        let events: Vec<_> = (0..25).map(|n| event("T", n, 0)).collect();
        let sizes: Vec<usize> = batches(entries(&events)).iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
    }

    #[test]
    fn calls_stay_within_the_size_limit_and_keep_the_order() {
        // About 100 KiB each: two fit in a call, three do not.
        let events: Vec<_> = (0..5).map(|n| event("T", n, 100 * 1024)).collect();
        let batches = batches(entries(&events));
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        for batch in &batches {
            assert!(batch.iter().map(|e| e.size).sum::<usize>() <= MAX_CALL_BYTES);
        }
        let order: Vec<u64> = batches
            .iter()
            .flatten()
            .map(|e| e.event.detail["n"].as_u64().unwrap())
            .collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn an_entry_is_sized_as_eventbridge_counts_it() {
        let e = event("Jobs changed", 1, 0);
        let entry = Entry::new(&e, BUS);
        assert_eq!(
            entry.size,
            "drs-cache".len() + "Jobs changed".len() + e.detail.to_string().len() + BUS.len()
        );
    }

    #[tokio::test]
    async fn only_the_entries_refused_for_a_passing_reason_are_sent_again() {
        let events: Vec<_> = (0..4).map(|n| event("T", n, 0)).collect();
        let calls = Mutex::new(Vec::new());
        let outcome = deliver(QUICK, BUS, entries(&events), |requests| {
            let sent = numbers(&requests);
            calls.lock().unwrap().push(sent.clone());
            async move {
                Answer::Entries(
                    sent.iter()
                        .map(|&n| match n {
                            // Throttled on its first send only.
                            1 if requests.len() == 4 => Some(failure("ThrottlingException", true)),
                            // Refused for good.
                            2 => Some(failure("MalformedDetail", false)),
                            _ => None,
                        })
                        .collect(),
                )
            }
        })
        .await;
        assert_eq!(
            outcome,
            PublishOutcome {
                published: 3,
                failed: 1
            }
        );
        assert_eq!(*calls.lock().unwrap(), [vec![0, 1, 2, 3], vec![1]]);
    }

    #[tokio::test]
    async fn a_throttled_call_is_sent_again_whole() {
        let events: Vec<_> = (0..3).map(|n| event("T", n, 0)).collect();
        let calls = Mutex::new(0);
        let outcome = deliver(QUICK, BUS, entries(&events), |requests| {
            let first = {
                let mut calls = calls.lock().unwrap();
                *calls += 1;
                *calls == 1
            };
            async move {
                if first {
                    Answer::Call(failure("ThrottlingException", true))
                } else {
                    Answer::Entries(vec![None; requests.len()])
                }
            }
        })
        .await;
        assert_eq!(
            outcome,
            PublishOutcome {
                published: 3,
                failed: 0
            }
        );
        assert_eq!(*calls.lock().unwrap(), 2);
    }

    #[tokio::test]
    async fn entries_still_failing_after_the_attempts_are_counted_failed() {
        let events: Vec<_> = (0..2).map(|n| event("T", n, 0)).collect();
        let calls = Mutex::new(0);
        let outcome =
            deliver(QUICK, BUS, entries(&events), |requests| {
                *calls.lock().unwrap() += 1;
                async move {
                    Answer::Entries(vec![Some(failure("InternalFailure", true)); requests.len()])
                }
            })
            .await;
        assert_eq!(
            outcome,
            PublishOutcome {
                published: 0,
                failed: 2
            }
        );
        assert_eq!(*calls.lock().unwrap(), QUICK.attempts);
    }

    #[tokio::test]
    async fn a_call_refused_for_good_is_not_sent_again() {
        let events: Vec<_> = (0..2).map(|n| event("T", n, 0)).collect();
        let calls = Mutex::new(0);
        let outcome = deliver(QUICK, BUS, entries(&events), |_| {
            *calls.lock().unwrap() += 1;
            async { Answer::Call(failure("ResourceNotFoundException", false)) }
        })
        .await;
        assert_eq!(outcome.failed, 2);
        assert_eq!(*calls.lock().unwrap(), 1);
    }

    #[test]
    fn an_answer_maps_each_result_to_its_entry() {
        use aws_sdk_eventbridge::types::PutEventsResultEntry;
        let output = PutEventsOutput::builder()
            .failed_entry_count(2)
            .entries(PutEventsResultEntry::builder().event_id("a").build())
            .entries(
                PutEventsResultEntry::builder()
                    .error_code("ThrottlingException")
                    .error_message("slow down")
                    .build(),
            )
            .entries(
                PutEventsResultEntry::builder()
                    .error_code("MalformedDetail")
                    .build(),
            )
            .build();
        let Answer::Entries(results) = answer(4, &output) else {
            panic!("an answered call");
        };
        assert!(results[0].is_none());
        let throttled = results[1].as_ref().unwrap();
        assert_eq!(
            (throttled.code.as_str(), throttled.message.as_str()),
            ("ThrottlingException", "slow down")
        );
        assert!(throttled.passing);
        assert!(!results[2].as_ref().unwrap().passing);
        // Not named, while failures were counted: sent again.
        assert!(results[3].as_ref().unwrap().passing);
        let all_good = PutEventsOutput::builder().failed_entry_count(0).build();
        let Answer::Entries(results) = answer(2, &all_good) else {
            panic!("an answered call");
        };
        assert!(results.iter().all(Option::is_none));
    }
}
