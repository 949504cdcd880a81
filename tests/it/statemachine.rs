//! The refresh workflow's definition, `statemachine/refresh.asl.json`: valid ASL
//! (asl-validator), filled completely by the template's substitutions, retrying
//! and catching only errors the functions really raise, keeping only counts of
//! the refresher's report, and running end to end on moto's ASL engine with
//! stand-ins for the two functions that answer in their real shapes. The
//! targets workflow's, `statemachine/refresh-targets.asl.json`: valid, filled,
//! EXPRESS, and refreshing a batch with the refresh workflow's own states.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use aws_sdk_sfn::types::ExecutionStatus;
use drs_cache::{
    domain::{CacheKey, RefreshErrorKind},
    invocation::ErrorType,
    plan::summary::RunSummary,
    ports::ClaimId,
    ports::RefreshReason,
    refresh::{
        lambda::{RetryOutput, RoundOutput},
        summary::FailureKind,
    },
    workflow::{
        Batch, BatchResult, Counts, FailureRecord, PlanLocation, PlanOutput, RunRef,
        SummarizeInput, SummarizeRequest,
    },
};
use serde_json::{Value, json};
use serde_norway::Value as Yaml;
use strum::VariantArray;

use crate::support::{
    moto,
    workflow::{
        PLAN_BUCKET, PLANNER, REFRESHER, StandInTurn, deployed_definition, filled_definition,
        filled_targets_definition, substitutions, targets_substitutions,
    },
};

const DEFINITION: &str = include_str!("../../statemachine/refresh.asl.json");
const DEFINITION_PATH: &str = "statemachine/refresh.asl.json";
const TARGETS_DEFINITION: &str = include_str!("../../statemachine/refresh-targets.asl.json");
const TARGETS_DEFINITION_PATH: &str = "statemachine/refresh-targets.asl.json";
const TEMPLATE: &str = include_str!("../../cfn/drs-cache.yaml");
const TEST_SCRIPT: &str = include_str!("../../scripts/test");

/// The asl-validator release used here and by `scripts/test`.
const ASL_VALIDATOR_VERSION: &str = "4.0.0";

/// Lambda service errors worth retrying (AWS Step Functions error handling docs).
const LAMBDA_SERVICE_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

fn definition() -> Value {
    serde_json::from_str(DEFINITION).expect("the definition is JSON even with its placeholders")
}

fn template() -> Yaml {
    serde_norway::from_str(TEMPLATE).expect("cfn/drs-cache.yaml is YAML")
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every state of the definition, nested ones (the Map's) included, by name.
fn states(definition: &Value) -> BTreeMap<String, &Value> {
    fn walk<'a>(machine: &'a Value, into: &mut BTreeMap<String, &'a Value>) {
        let states = machine["States"].as_object().expect("States is an object");
        for (name, state) in states {
            assert!(
                into.insert(name.clone(), state).is_none(),
                "state name {name:?} used twice"
            );
            if let Some(processor) = state.get("ItemProcessor") {
                walk(processor, into);
            }
        }
    }
    let mut all = BTreeMap::new();
    walk(definition, &mut all);
    all
}

fn state<'a>(definition: &'a Value, name: &str) -> &'a Value {
    states(definition)
        .remove(name)
        .unwrap_or_else(|| panic!("no state {name:?}"))
}

fn error_names(handlers: &Value) -> Vec<Vec<String>> {
    handlers
        .as_array()
        .map(|list| {
            list.iter()
                .map(|h| {
                    h["ErrorEquals"]
                        .as_array()
                        .expect("ErrorEquals is a list")
                        .iter()
                        .map(|e| e.as_str().expect("error names").to_owned())
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

// --- the template's side: substitutions -----------------------------------------

fn state_machine_properties(template: &Yaml) -> &Yaml {
    &template["Resources"]["RefreshStateMachine"]["Properties"]
}

/// `${Name}` placeholders of the definition text.
fn placeholders(text: &str) -> BTreeSet<String> {
    text.match_indices("${")
        .map(|(at, _)| {
            let rest = &text[at + 2..];
            let name = &rest[..rest.find('}').expect("a placeholder ends with }")];
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
                "placeholder {name:?}"
            );
            name.to_owned()
        })
        .collect()
}

#[test]
fn every_placeholder_has_a_substitution_and_every_substitution_is_used() {
    let used = placeholders(DEFINITION);
    let given: BTreeSet<String> = substitutions(&[]).into_keys().collect();
    assert_eq!(used, given);
    assert!(placeholders(&filled_definition(&substitutions(&[]))).is_empty());
}

/// The definition file `machine` deploys, as a path relative to the
/// template, which `aws cloudformation package` uploads.
fn deployed_file(props: &Yaml) -> PathBuf {
    let location = props["DefinitionS3Location"]
        .as_str()
        .expect("DefinitionS3Location is the local definition file");
    std::fs::canonicalize(repo_root().join("cfn").join(location)).unwrap()
}

#[test]
fn the_template_deploys_this_definition_as_a_standard_workflow() {
    let t = template();
    let props = state_machine_properties(&t);
    assert_eq!(props["StateMachineType"].as_str(), Some("STANDARD"));
    assert_eq!(
        deployed_file(props),
        std::fs::canonicalize(repo_root().join(DEFINITION_PATH)).unwrap()
    );
}

#[test]
fn the_template_deploys_the_targets_definition_as_an_express_workflow_filling_every_placeholder() {
    let t = template();
    let props = &t["Resources"]["RefreshTargetsStateMachine"]["Properties"];
    assert_eq!(props["StateMachineType"].as_str(), Some("EXPRESS"));
    assert_eq!(
        deployed_file(props),
        std::fs::canonicalize(repo_root().join(TARGETS_DEFINITION_PATH)).unwrap()
    );
    let given: BTreeSet<String> = targets_substitutions(&[]).into_keys().collect();
    assert_eq!(placeholders(TARGETS_DEFINITION), given);
    assert!(placeholders(&filled_targets_definition(&targets_substitutions(&[]))).is_empty());
}

#[test]
fn the_targets_workflow_refreshes_a_batch_with_the_refresh_workflow_s_own_states() {
    let refresh = definition();
    let targets: Value = serde_json::from_str(TARGETS_DEFINITION).expect("JSON");
    let (r, t) = (&refresh["States"], &targets["States"]);
    // Each batch: the same rounds, retries, catches and failure record.
    let (r_map, t_map) = (&r["Refresh targets"], &t["Refresh targets"]);
    for field in ["ItemSelector", "MaxConcurrencyPath"] {
        assert_eq!(t_map[field], r_map[field], "{field}");
    }
    for field in ["StartAt", "States"] {
        assert_eq!(
            t_map["ItemProcessor"][field], r_map["ItemProcessor"][field],
            "ItemProcessor.{field}"
        );
    }
    // Inline over the planner's answer, not a plan object.
    assert_eq!(
        t_map["ItemProcessor"]["ProcessorConfig"],
        json!({"Mode": "INLINE"})
    );
    assert_eq!(t_map["ItemsPath"], "$.items");
    assert!(t_map.get("ItemReader").is_none() && t_map.get("ResultWriter").is_none());
    // The same choice and totals.
    for state in ["Any targets?", "Nothing to refresh", "Summarize"] {
        assert_eq!(t[state], r[state], "{state}");
    }
    // The plan: the planner asked for its batches inline, retried as the
    // refresh workflow's plan is.
    let plan = &t["Plan targets"];
    assert_eq!(targets["StartAt"], "Plan targets");
    assert_eq!(plan["Parameters"]["Payload"], json!({"planInline.$": "$"}));
    assert_eq!(plan["ResultSelector"]["items.$"], "$.Payload.items");
    assert_eq!(plan["Retry"], r["Plan refresh"]["Retry"]);
}

#[test]
fn the_map_limits_are_numbers_within_range() {
    let t = template();
    let d = definition();
    let map = state(&d, "Refresh targets");
    assert_eq!(
        map["ItemProcessor"]["ProcessorConfig"]["Mode"],
        "DISTRIBUTED"
    );
    // The children's type is the stack's: EXPRESS by default, or STANDARD.
    assert_eq!(
        map["ItemProcessor"]["ProcessorConfig"]["ExecutionType"],
        "${BatchExecutionType}"
    );
    let parameter = &t["Parameters"]["BatchExecutionType"];
    assert_eq!(parameter["Default"].as_str(), Some("EXPRESS"));
    let allowed: Vec<&str> = parameter["AllowedValues"]
        .as_sequence()
        .expect("AllowedValues")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(allowed, ["EXPRESS", "STANDARD"]);
    assert_eq!(map["MaxConcurrencyPath"], "$.limits.maxConcurrency");
    assert_eq!(
        map["ToleratedFailurePercentagePath"],
        "$.limits.toleratedFailurePercentage"
    );
    // The limits are placed by "Plan refresh" from string substitutions, turned
    // into numbers by States.StringToJson: check what the defaults become.
    let limits = &state(&d, "Plan refresh")["ResultSelector"]["limits"];
    let values = substitutions(&[]);
    let number = |field: &str| -> f64 {
        let expression = limits[field].as_str().expect("an intrinsic");
        let name = placeholders(expression).pop_first().expect("a placeholder");
        assert_eq!(
            expression,
            format!("States.StringToJson('${{{name}}}')"),
            "{field}"
        );
        let parameter = &t["Parameters"][name.as_str()];
        assert_eq!(parameter["Type"].as_str(), Some("Number"), "{name}");
        values[&name].parse().expect("a number")
    };
    let concurrency = number("maxConcurrency.$");
    assert!(concurrency >= 1.0 && concurrency.fract() == 0.0);
    let tolerated = number("toleratedFailurePercentage.$");
    assert!((0.0..=100.0).contains(&tolerated));
}

// --- asl-validator -----------------------------------------------------------------

fn tools_dir() -> PathBuf {
    match std::env::var_os("DRS_CACHE_TOOLS").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/drs-cache/tools"),
    }
}

/// asl-validator: `ASL_VALIDATOR_BIN` (set by `scripts/test`), or the copy in
/// the tools directory, installed there with npm on first use exactly as
/// `scripts/test` does.
fn asl_validator() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("ASL_VALIDATOR_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(bin);
        }
        let dir = tools_dir()
            .join("node")
            .join(format!("asl-validator-{ASL_VALIDATOR_VERSION}"));
        let bin = dir.join("node_modules/.bin/asl-validator");
        if !bin.is_file() {
            install_asl_validator(&dir);
        }
        assert!(bin.is_file(), "{} missing after install", bin.display());
        bin
    })
}

fn install_asl_validator(dir: &Path) {
    let parent = dir.parent().expect("a tools subdirectory");
    std::fs::create_dir_all(parent).unwrap();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = parent.join(format!(".asl-validator.{}-{nanos}", std::process::id()));
    eprintln!(
        "installing asl-validator@{ASL_VALIDATOR_VERSION} into {} (scripts/test does this once)",
        dir.display()
    );
    let status = Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(&tmp)
        .args(["--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!("asl-validator@{ASL_VALIDATOR_VERSION}"))
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run npm ({e}): install Node.js 20 or later with npm, or run scripts/test"
            )
        });
    assert!(
        status.success(),
        "npm install asl-validator@{ASL_VALIDATOR_VERSION} failed: {status}"
    );
    // Another process may have installed it meanwhile: keep its copy.
    if std::fs::rename(&tmp, dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

/// asl-validator's verdict on a definition: `Ok` or its report.
fn validate(definition: &str) -> Result<(), String> {
    let file = tempfile::Builder::new()
        .suffix(".asl.json")
        .tempfile()
        .unwrap();
    std::fs::write(file.path(), definition).unwrap();
    let out = Command::new(asl_validator())
        .arg("--json-path")
        .arg(file.path())
        .output()
        .expect("asl-validator runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(report)
    }
}

#[test]
fn scripts_test_pins_the_same_asl_validator() {
    assert!(
        TEST_SCRIPT.contains(&format!("ASL_VALIDATOR_VERSION='{ASL_VALIDATOR_VERSION}'")),
        "scripts/test and tests/statemachine.rs must pin one asl-validator version"
    );
}

#[test]
fn asl_validator_accepts_the_definition_as_written_and_as_deployed() {
    // asl-validator checks `ExecutionType` against its values, so the file is
    // checked with each value `BatchExecutionType` allows, and the rest of its
    // placeholders as written.
    for execution_type in ["EXPRESS", "STANDARD"] {
        let written = DEFINITION.replace("${BatchExecutionType}", execution_type);
        validate(&written).unwrap_or_else(|report| panic!("{DEFINITION_PATH}: {report}"));
    }
    let deployed = filled_definition(&substitutions(&[]));
    assert!(
        deployed.contains(r#""ExecutionType": "EXPRESS""#),
        "EXPRESS children by default"
    );
    validate(&deployed).unwrap_or_else(|report| panic!("substituted: {report}"));
    validate(TARGETS_DEFINITION)
        .unwrap_or_else(|report| panic!("{TARGETS_DEFINITION_PATH}: {report}"));
    validate(&filled_targets_definition(&targets_substitutions(&[])))
        .unwrap_or_else(|report| panic!("targets, substituted: {report}"));
    // It does check: a transition to a state that does not exist is refused.
    let mut broken: Value = serde_json::from_str(&deployed).unwrap();
    broken["States"]["Any targets?"]["Default"] = json!("No such state");
    let report = validate(&broken.to_string()).expect_err("a broken definition");
    assert!(report.contains("No such state"), "{report}");
}

// --- errors: what the functions raise, and what the workflow does with it -------------

/// Every kind an upstream failure is classified as. The match fails to compile
/// when a kind is added, so that this test is revisited.
fn refresh_error_kinds() -> [RefreshErrorKind; 5] {
    use RefreshErrorKind::*;
    let all = [
        Throttled,
        AccessDenied,
        NotInitialized,
        RegionNotEnabled,
        Upstream,
    ];
    for kind in all {
        match kind {
            Throttled | AccessDenied | NotInitialized | RegionNotEnabled | Upstream => {}
        }
    }
    all
}

/// The error type of an input the functions refuse.
fn invalid_input() -> &'static str {
    ErrorType::InvalidInput.into()
}

#[test]
fn retry_and_catch_name_only_errors_that_are_raised() {
    // One enum holds every error type the functions raise; each failure kind
    // is one of them.
    let raised: BTreeSet<String> = ErrorType::VARIANTS.iter().map(|t| t.to_string()).collect();
    for kind in refresh_error_kinds() {
        assert!(raised.contains(kind.as_str()), "{kind}");
    }
    assert!(raised.contains(FailureKind::StoreUnavailable.as_str()));
    assert!(raised.contains(invalid_input()));
    // The Step Functions names this workflow may use.
    let service: BTreeSet<&str> = LAMBDA_SERVICE_ERRORS
        .into_iter()
        .chain(["States.ALL", "States.TaskFailed", "States.Timeout"])
        .collect();
    let d = definition();
    for (name, state) in states(&d) {
        for handlers in ["Retry", "Catch"] {
            for errors in error_names(&state[handlers]) {
                for error in errors {
                    assert!(
                        raised.contains(&error) || service.contains(error.as_str()),
                        "{name}: {handlers} names {error:?}, which nothing raises"
                    );
                }
            }
        }
    }
}

#[test]
fn a_refresher_invocation_is_retried_only_where_it_fetched_nothing() {
    let d = definition();
    let batch = state(&d, "Refresh batch");
    // The refresher fails an invocation with StoreUnavailable only while it
    // begins its leases, before any fetch; a throttled Lambda service never
    // ran it. Nothing else is retried: a retry never fetches again.
    assert_eq!(
        error_names(&batch["Retry"]),
        [vec![
            "Lambda.TooManyRequestsException".to_owned(),
            ErrorType::StoreUnavailable.to_string()
        ]]
    );
    let retry = &batch["Retry"][0];
    assert_eq!(retry["JitterStrategy"], "FULL");
    assert!(retry["BackoffRate"].as_f64().unwrap() > 1.0);
    assert!(retry["MaxDelaySeconds"].as_u64().is_some());
    // Whatever else fails lands in Record failure: one batch never fails the run.
    assert_eq!(
        error_names(&batch["Catch"]),
        [vec!["States.ALL".to_owned()]]
    );
    let catcher = &batch["Catch"][0];
    assert_eq!(catcher["Next"], "Record failure");
    assert_eq!(
        catcher["ResultPath"], "$.caught",
        "Record failure reads the error beside the batch"
    );
    // Both planner calls retry the Lambda service errors with jitter.
    for name in ["Plan refresh", "Summarize"] {
        let retry = &state(&d, name)["Retry"][0];
        assert_eq!(retry["JitterStrategy"], "FULL", "{name}");
        for error in LAMBDA_SERVICE_ERRORS {
            assert!(
                error_names(&state(&d, name)["Retry"])[0].contains(&error.to_owned()),
                "{name}: {error}"
            );
        }
    }
}

#[test]
fn a_batch_runs_round_after_round_with_only_the_targets_handed_back() {
    let d = definition();
    let batch = state(&d, "Refresh batch");
    // The round's answer is kept beside the batch, so that a failure still
    // finds the batch's run and targets.
    assert_eq!(
        batch["ResultSelector"],
        json!({"retry.$": "$.Payload.retry"})
    );
    assert_eq!(batch["ResultPath"], "$.outcome");
    assert_eq!(batch["Next"], "More rounds?");
    let more = state(&d, "More rounds?");
    assert_eq!(
        more["Choices"],
        json!([{"Variable": "$.outcome.retry", "IsNull": false, "Next": "Wait for the next round"}])
    );
    assert_eq!(more["Default"], "Batch done");
    assert_eq!(state(&d, "Batch done")["Type"], "Succeed");
    let wait = state(&d, "Wait for the next round");
    assert_eq!(wait["SecondsPath"], "$.outcome.retry.waitSeconds");
    assert_eq!(wait["Next"], "Next round");
    let next = state(&d, "Next round");
    assert_eq!(next["Type"], "Pass");
    assert_eq!(next["InputPath"], "$.outcome.retry.batch");
    assert_eq!(next["Next"], "Refresh batch");

    // The refresher's answer has that shape: counts (recorded by the
    // refresher itself) and `retry`, null or a wait and the next batch.
    let keys = [CacheKey::parse("drs-quotas#us-east-1#111122223333").unwrap()];
    let first = Batch {
        run: Some(RunRef {
            execution: "tick".into(),
            index: 3,
        }),
        claim: Some(ClaimId("00000000000000aa".into())),
        ..Batch::of(RefreshReason::Schedule, &keys)
    };
    let carried = Counts {
        refreshed: 2,
        ..Counts::default()
    };
    let output = serde_json::to_value(RoundOutput {
        counts: carried,
        retry: Some(RetryOutput {
            wait_seconds: 5,
            batch: first.next_round(&keys, carried),
        }),
    })
    .unwrap();
    assert_eq!(output["retry"]["waitSeconds"], 5);
    let again: Batch = serde_json::from_value(output["retry"]["batch"].clone())
        .expect("the next round is a refresher input");
    assert_eq!((again.round, again.carried), (1, carried));
    assert_eq!(
        (again.run, again.claim),
        (first.run.clone(), first.claim.clone())
    );
    let done = serde_json::to_value(RoundOutput {
        counts: carried,
        retry: None,
    })
    .unwrap();
    assert_eq!(
        done["retry"],
        Value::Null,
        "the Choice needs the field, null"
    );
}

#[test]
fn a_failed_batch_is_recorded_in_the_shape_the_summary_reads() {
    let d = definition();
    // A failed batch is recorded by the planner, in the shape it reads.
    let failure = &state(&d, "Record failure");
    assert_eq!(failure["Type"], "Task");
    assert_eq!(
        failure["Parameters"]["FunctionName"],
        "${PlannerFunctionArn}"
    );
    let payload = &failure["Parameters"]["Payload"];
    assert_eq!(
        payload,
        &json!({"recordFailure": {
            "run.$": "$.run",
            "error.$": "$.caught.Error",
            "targets.$": "States.ArrayLength($.targets)"
        }})
    );
    let record: FailureRecord = serde_json::from_value(json!({
        "run": {"execution": "tick", "index": 4}, "error": "AccessDenied", "targets": 2
    }))
    .expect("Record failure sends a failure record");
    assert_eq!(record.targets, 2);
    // A failure that cannot be recorded still ends the batch, not the run.
    let catch = &failure["Catch"][0];
    assert_eq!(catch["ErrorEquals"], json!(["States.ALL"]));
    assert_eq!(state(&d, catch["Next"].as_str().unwrap())["Type"], "Pass");
    // Both shapes are what the planner's summary reads.
    let counts_result = serde_json::to_value(Counts {
        refreshed: 1,
        ..Counts::default()
    })
    .unwrap();
    let input: SummarizeInput = serde_json::from_value(json!({
        "reason": "schedule",
        "results": [counts_result, {"failedBatch": true, "error": "AccessDenied", "targets": 2}]
    }))
    .expect("the batch results are a summarize input");
    let summary = RunSummary::of(input);
    assert_eq!(summary.failed_batches, 1);
    assert_eq!(summary.failed_batch_targets, 2);
    assert_eq!(summary.keys.refreshed, 1);
}

#[test]
fn the_map_reads_the_plan_object_and_no_state_holds_the_batches_or_their_results() {
    let d = definition();
    let plan = state(&d, "Plan refresh");
    let kept: BTreeSet<&str> = plan["ResultSelector"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        kept,
        BTreeSet::from([
            "reason.$",
            "targets.$",
            "skipped.$",
            "batches.$",
            "plan.$",
            "limits"
        ])
    );
    let map = state(&d, "Refresh targets");
    assert!(map.get("ItemsPath").is_none());
    assert_eq!(
        map["ItemReader"],
        json!({
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket.$": "$.plan.bucket", "Key.$": "$.plan.key"}
        })
    );
    // Each item is a batch as the planner wrote it, plus its place in the run.
    assert_eq!(
        map["ItemSelector"],
        json!({
            "reason.$": "$$.Map.Item.Value.reason",
            "targets.$": "$$.Map.Item.Value.targets",
            "claim.$": "$$.Map.Item.Value.claim",
            "eventTime.$": "$$.Map.Item.Value.eventTime",
            "run": {"execution.$": "$$.Execution.Name", "index.$": "$$.Map.Item.Index"}
        })
    );
    let batch: Batch = serde_json::from_value(json!({
        "reason": "schedule",
        "targets": [{"dataType": "drs-quotas", "region": "us-east-1"}],
        "claim": "0123456789abcdef",
        "eventTime": null,
        "run": {"execution": "tick", "index": 0}
    }))
    .expect("an item is a refresher input");
    assert!(batch.run.is_some());
    assert_eq!(batch.claim, Some(ClaimId("0123456789abcdef".into())));
    // The children's results go to S3 and the Map's own result is dropped.
    assert_eq!(
        map["ResultWriter"]["Parameters"],
        json!({"Bucket": "${PlanBucketName}", "Prefix": "results"})
    );
    assert_eq!(map["ResultPath"], Value::Null);
    let summarize = state(&d, "Summarize");
    assert_eq!(
        summarize["Parameters"]["Payload"],
        json!({"summarize": {
            "reason.$": "$.reason", "execution.$": "$$.Execution.Name", "batches.$": "$.batches"
        }})
    );
    let request: SummarizeRequest = serde_json::from_value(json!({
        "reason": "schedule", "execution": "tick", "batches": 3
    }))
    .expect("Summarize sends a summarize request");
    assert_eq!(request.batches, 3);
    assert_eq!(summarize["OutputPath"], "$.Payload");
    assert_eq!(summarize["End"], true);
    let choice = state(&d, "Any targets?");
    assert_eq!(choice["Choices"][0]["Variable"], "$.targets");
    assert_eq!(choice["Choices"][0]["Next"], "Refresh targets");
    assert_eq!(choice["Default"], "Nothing to refresh");
}

// --- end to end on moto ----------------------------------------------------------------

/// Accounts whose batches the refresher stand-in answers in one way each.
const REFRESHED: &str = "111111111111";
const DENIED: &str = "222222222222";
const THROTTLED_ONCE: &str = "333333333333";
const INVALID: &str = "444444444444";
const UPSTREAM_DOWN: &str = "555555555555";
const STORE_BLIP: &str = "666666666666";

/// The plan object of the scheduled tick: one batch per way a batch can end.
const TICK_PLAN: &str = "plans/statemachine-tick.json";

fn tick_batches() -> Vec<Batch> {
    [
        REFRESHED,
        DENIED,
        THROTTLED_ONCE,
        INVALID,
        UPSTREAM_DOWN,
        STORE_BLIP,
    ]
    .iter()
    .map(|account| {
        let key = CacheKey::parse(&format!("drs-quotas#us-east-1#{account}")).unwrap();
        Batch {
            claim: Some(ClaimId(format!("claim-{account}"))),
            ..Batch::of(RefreshReason::Schedule, &[key])
        }
    })
    .collect()
}

/// Rounds a batch runs at most, as the refresher's `REFRESH_ROUNDS`.
const ROUNDS: u32 = 3;

/// Stand-ins for the two functions, answering each batch in the way its account
/// names, and keeping the run ledger as the real ones do.
#[derive(Default)]
struct Functions {
    /// Every invocation: (function name, payload).
    calls: Mutex<Vec<(String, Value)>>,
    /// Batch results by execution and index.
    ledger: Mutex<BTreeMap<(String, u64), BatchResult>>,
}

type Answer = Result<Value, (&'static str, String)>;

impl Functions {
    fn calls_of(&self, function: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, _)| f == function)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn answer(&self, function: &str, payload: Value) -> Answer {
        let earlier = {
            let mut calls = self.calls.lock().unwrap();
            let earlier = calls
                .iter()
                .filter(|(f, p)| f == function && *p == payload)
                .count();
            calls.push((function.to_owned(), payload.clone()));
            earlier
        };
        match function {
            PLANNER => self.planner(&payload, earlier),
            REFRESHER => self.refresher(&payload, earlier),
            other => Err(("ResourceNotFoundException", format!("no function {other}"))),
        }
    }

    fn record(&self, run: RunRef, result: BatchResult) {
        self.ledger
            .lock()
            .unwrap()
            .insert((run.execution, run.index), result);
    }

    fn planner(&self, payload: &Value, earlier: usize) -> Answer {
        if let Some(input) = payload.get("summarize") {
            let request: SummarizeRequest = serde_json::from_value(input.clone())
                .map_err(|e| (invalid_input(), format!("summarize {e}")))?;
            let ledger = self.ledger.lock().unwrap();
            let results = (0..request.batches)
                .map(|i| ledger.get(&(request.execution.clone(), i)).cloned())
                .collect();
            let summary = RunSummary::of(SummarizeInput {
                reason: request.reason,
                results,
            });
            return Ok(serde_json::to_value(summary).unwrap());
        }
        if let Some(input) = payload.get("recordFailure") {
            let record: FailureRecord = serde_json::from_value(input.clone())
                .map_err(|e| (invalid_input(), format!("recordFailure {e}")))?;
            let result = BatchResult::Failed {
                failed_batch: true,
                error: Some(record.error),
                targets: Some(record.targets),
            };
            self.record(record.run, result);
            return Ok(json!({"recorded": true}));
        }
        let plan = |batches: usize, plan: Option<PlanLocation>| {
            serde_json::to_value(PlanOutput {
                reason: RefreshReason::Schedule,
                targets: batches,
                skipped: 0,
                deferred: 0,
                ignored: None,
                batches,
                plan,
                items: None,
            })
            .unwrap()
        };
        match payload["trigger"].as_str() {
            Some("schedule") => Ok(plan(
                tick_batches().len(),
                Some(PlanLocation {
                    bucket: PLAN_BUCKET.into(),
                    key: TICK_PLAN.into(),
                }),
            )),
            // The lease table is briefly out of reach, then nothing is due.
            Some("manual") if earlier == 0 => Err(("StoreUnavailable", "throttled".into())),
            Some("manual") => Ok(plan(0, None)),
            _ => Err((invalid_input(), format!("not a trigger: {payload}"))),
        }
    }

    /// Answers as the refresher does: the batch's counts so far and the next
    /// round, if any; the counts of a finished batch go to the ledger.
    fn refresher(&self, payload: &Value, earlier: usize) -> Answer {
        // The item is the planned batch, its claim and its place in the run.
        let batch: Batch = serde_json::from_value(payload.clone())
            .map_err(|e| (invalid_input(), format!("not a batch: {e}: {payload}")))?;
        let Some(run) = batch.run.clone() else {
            return Err((invalid_input(), format!("no run: {payload}")));
        };
        if batch.claim.is_none() {
            return Err((invalid_input(), format!("no claim: {payload}")));
        }
        let account = batch.targets[0].account_id.clone().unwrap_or_default();
        let ended = |counts: Counts| {
            let counts = Counts {
                refreshed: batch.carried.refreshed + counts.refreshed,
                failed: batch.carried.failed + counts.failed,
                ..batch.carried
            };
            self.record(run.clone(), BatchResult::Counts(counts));
            Ok(serde_json::to_value(RoundOutput {
                counts,
                retry: None,
            })
            .unwrap())
        };
        let again = || {
            let keys = batch.keys(drs_cache::domain::AccountId::parse(&account).unwrap());
            let retry = RetryOutput {
                wait_seconds: 1,
                batch: batch.next_round(&keys.unwrap(), batch.carried),
            };
            Ok(serde_json::to_value(RoundOutput {
                counts: batch.carried,
                retry: Some(retry),
            })
            .unwrap())
        };
        let refreshed = Counts {
            refreshed: 1,
            ..Counts::default()
        };
        let failed = Counts {
            failed: 1,
            ..Counts::default()
        };
        let last = batch.round + 1 >= ROUNDS;
        match account.as_str() {
            REFRESHED => ended(refreshed),
            // A permanent failure: counted, recorded on the key, not retried.
            DENIED => ended(failed),
            THROTTLED_ONCE if batch.round == 0 => again(),
            THROTTLED_ONCE => ended(refreshed),
            INVALID => Err((invalid_input(), "targets[0].region ...".into())),
            UPSTREAM_DOWN if !last => again(),
            UPSTREAM_DOWN => ended(failed),
            // The leases could not be begun: nothing was fetched.
            STORE_BLIP if earlier == 0 => Err(("StoreUnavailable", "throttled".into())),
            STORE_BLIP => ended(refreshed),
            other => Err((invalid_input(), format!("unexpected account {other}"))),
        }
    }
}

/// Runs one execution, which must succeed; its output.
async fn run(client: &aws_sdk_sfn::Client, machine: &str, name: &str, input: Value) -> Value {
    let started = client
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input.to_string())
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let described = client
            .describe_execution()
            .execution_arn(started.execution_arn())
            .send()
            .await
            .unwrap();
        let status = described.status().clone();
        if status != ExecutionStatus::Running {
            let output = described
                .output()
                .map(|o| serde_json::from_str(o).unwrap())
                .unwrap_or(Value::Null);
            assert_eq!(
                status,
                ExecutionStatus::Succeeded,
                "{name}: {:?} {:?}",
                described.error(),
                described.cause()
            );
            return output;
        }
        assert!(Instant::now() < deadline, "{name} still running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_refreshes_every_batch_and_one_bad_account_never_fails_it() {
    let functions = Arc::new(Functions::default());
    let answering = functions.clone();
    let turn = StandInTurn::start(Arc::new(move |function: &str, payload| {
        answering
            .answer(function, payload)
            .map_err(|(error_type, message)| (error_type.to_owned(), message))
    }))
    .await;
    let client = &turn.sfn;
    // As the planner writes them: every field the ItemSelector reads present.
    let items: Vec<Value> = tick_batches().iter().map(Batch::plan_item).collect();
    let body = serde_json::to_vec(&items).unwrap();
    turn.s3
        .put_object()
        .bucket(PLAN_BUCKET)
        .key(TICK_PLAN)
        .body(body.into())
        .send()
        .await
        .expect("moto stores the plan");
    let machine = client
        .create_state_machine()
        .name(moto::unique_name("refresh"))
        .definition(deployed_definition(&substitutions(&[(
            "RefreshMaxConcurrency",
            "2",
        )])))
        .role_arn("arn:aws:iam::123456789012:role/refresh")
        .send()
        .await
        .expect("moto accepts the definition")
        .state_machine_arn()
        .to_owned();

    // A scheduled tick: five batches, one per way a batch can end.
    let output = run(
        client,
        &machine,
        "tick",
        json!({"trigger": "schedule", "time": "2024-05-14T09:00:00Z"}),
    )
    .await;
    let counts = |refreshed: u64, failed: u64| {
        serde_json::to_value(Counts {
            refreshed,
            failed,
            ..Counts::default()
        })
        .unwrap()
    };
    let expected_results = json!([
        counts(1, 0),
        counts(0, 1),
        counts(1, 0),
        {"failedBatch": true, "error": "InvalidInput", "targets": 1},
        counts(0, 1),
        counts(1, 0),
    ]);
    let summarized = functions
        .calls_of(PLANNER)
        .into_iter()
        .find_map(|p| p.get("summarize").cloned())
        .expect("Summarize ran");
    assert_eq!(
        summarized,
        json!({"reason": "schedule", "execution": "tick", "batches": 6})
    );
    // Each batch recorded its result under its index: counts, never key results.
    let recorded: Vec<Value> = functions
        .ledger
        .lock()
        .unwrap()
        .iter()
        .map(|((execution, _), result)| {
            assert_eq!(execution, "tick");
            serde_json::to_value(result).unwrap()
        })
        .collect();
    assert_eq!(json!(recorded), expected_results);
    // The execution's output is the planner's summary of those results.
    let summary = RunSummary::of(
        serde_json::from_value(json!({"reason": "schedule", "results": expected_results})).unwrap(),
    );
    assert_eq!(output, serde_json::to_value(&summary).unwrap());

    // Each batch reached the refresher as planned, with its claim; a round
    // handed back ran again after its wait, up to the last round; a store
    // blip before any fetch was retried; nothing else ran twice.
    let refresher_calls = functions.calls_of(REFRESHER);
    for batch in tick_batches() {
        let account = batch.targets[0].account_id.clone().unwrap();
        let targets = serde_json::to_value(&batch.targets).unwrap();
        let calls: Vec<&Value> = refresher_calls
            .iter()
            .filter(|p| p["targets"] == targets)
            .collect();
        let rounds: Vec<u64> = calls
            .iter()
            .map(|p| p.get("round").and_then(Value::as_u64).unwrap_or(0))
            .collect();
        let expected: &[u64] = match account.as_str() {
            THROTTLED_ONCE => &[0, 1],
            UPSTREAM_DOWN => &[0, 1, 2],
            STORE_BLIP => &[0, 0],
            _ => &[0],
        };
        assert_eq!(rounds, expected, "batch of {account}");
        for call in calls {
            assert_eq!(call["claim"], json!(format!("claim-{account}")));
        }
    }
    assert_eq!(refresher_calls.len(), 1 + 1 + 2 + 1 + 3 + 2);

    // An invalidation with nothing to refresh, after the planner's store was
    // briefly unavailable: no Map, no summary.
    let before = functions.calls_of(REFRESHER).len();
    let output = run(
        client,
        &machine,
        "invalidate",
        json!({"trigger": "manual", "accountId": "999999999999"}),
    )
    .await;
    assert_eq!(output["targets"], 0);
    assert_eq!(output["batches"], 0);
    assert_eq!(output["plan"], Value::Null);
    assert_eq!(functions.calls_of(REFRESHER).len(), before);
    let planner_calls = functions.calls_of(PLANNER);
    assert_eq!(
        planner_calls
            .iter()
            .filter(|p| p["trigger"] == "manual")
            .count(),
        2,
        "StoreUnavailable from the planner is retried"
    );
    assert_eq!(
        planner_calls
            .iter()
            .filter(|p| p.get("summarize").is_some())
            .count(),
        1
    );
}
