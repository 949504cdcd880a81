//! The refresh workflow as deployed: `statemachine/refresh.asl.json` run by
//! moto's Step Functions engine, its tasks answered by the real planner and
//! refresher (`tests/it/support/workflow.rs`), over two accounts (the second
//! through STS AssumeRole) and two regions. EC2, IAM and STS are moto's, DRS is
//! the fleet simulator, the cache is a DynamoDB table on moto.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::InSim;
use crate::support::workflow::{
    FIXTURE_TAG, HOME, OTHER, Options, PLANNER, REFRESHER, Rig, describe_event, other,
};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use drs_cache::{
    adapters::sfn::StepFunctionsTrigger,
    config::REFRESH_REQUEST_WINDOW,
    domain::{CacheKey, EntryMeta, EntryState, RefreshErrorKind},
    ports::{RefreshReason, RefreshTrigger},
    read::ApiResponse,
};
use drs_sim::{Faults, Service, SimConfig};
use serde_json::{Value, json};

const TICK: &str = r#"{"trigger": "schedule", "time": "2026-11-29T10:00:00Z"}"#;

fn tick() -> Value {
    serde_json::from_str(TICK).unwrap()
}

fn key(raw: &str) -> CacheKey {
    CacheKey::parse(raw).unwrap()
}

/// A fixture event from `tests/fixtures/events/`.
fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/events/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The plans the planner answered (not its summaries or recorded failures),
/// oldest first, each with the batches of its plan object as `"planned"`.
async fn plans(rig: &Rig) -> Vec<Value> {
    let mut plans = Vec::new();
    for invocation in rig.invocations_of(PLANNER) {
        if invocation.payload.get("summarize").is_some()
            || invocation.payload.get("recordFailure").is_some()
        {
            continue;
        }
        let mut plan = invocation.result.expect("the planner planned");
        plan["planned"] = rig.plan_object(&plan).await;
        plans.push(plan);
    }
    plans
}

/// The keys of a plan's batches, one list per batch.
fn batch_keys(plan: &Value) -> Vec<Vec<String>> {
    plan["planned"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|batch| {
            batch["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    format!(
                        "{}#{}#{}",
                        t["dataType"].as_str().unwrap(),
                        t["region"].as_str().unwrap(),
                        t["accountId"].as_str().unwrap_or("global")
                    )
                })
                .collect()
        })
        .collect()
}

/// Every configured key's metadata.
async fn metas(rig: &Rig) -> BTreeMap<String, EntryMeta> {
    let mut all = BTreeMap::new();
    for key in rig.configured() {
        let entry = rig
            .entry(&key)
            .await
            .unwrap_or_else(|| panic!("{key} not stored"));
        all.insert(key.to_string(), entry.meta);
    }
    all
}

fn names(doc: &Value, list: &str, field: &str) -> BTreeSet<String> {
    doc[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {doc}"))
        .iter()
        .filter_map(|r| r[field].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_tick_refreshes_every_target_and_each_is_then_servable() {
    let rig = Rig::start(Options::default()).await;
    let run = rig.run("tick", &tick()).await;
    let summary = &run.output;
    assert_eq!(summary["reason"], "schedule", "{summary}");
    assert_eq!(summary["refreshed"], 26, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["failedBatches"], 0, "{summary}");
    assert_eq!(summary["errors"], json!({}), "{summary}");
    let plan = &plans(&rig).await[0];
    assert_eq!(plan["targets"], 26);
    assert_eq!(summary["batches"], json!(batch_keys(plan).len()));

    let keys = rig.configured();
    assert_eq!(keys.len(), 26);
    for key in &keys {
        let answer = rig.read(key).await;
        assert_eq!(
            answer.status(),
            200,
            "{key}: {}",
            String::from_utf8_lossy(answer.body())
        );
    }

    // Each account's views hold its own resources, written through moto's
    // account isolation (the second account by AssumeRole).
    for region in ["us-east-1", "eu-west-1"] {
        for (account, stranger) in [(HOME, OTHER), (OTHER, HOME)] {
            let view = |t: &str| key(&format!("{t}#{region}#{account}"));
            let doc =
                |answer: ApiResponse| -> Value { serde_json::from_slice(answer.body()).unwrap() };
            let subnets = names(
                &doc(rig.read(&view("ec2-subnets")).await),
                "subnets",
                "subnetName",
            );
            assert!(
                subnets.contains(&format!("{FIXTURE_TAG}-subnet-{account}-{region}")),
                "{subnets:?}"
            );
            assert!(!subnets.contains(&format!("{FIXTURE_TAG}-subnet-{stranger}-{region}")));
            let groups = names(
                &doc(rig.read(&view("ec2-security-groups")).await),
                "securityGroups",
                "groupName",
            );
            assert!(
                groups.contains(&format!("{FIXTURE_TAG}-sg-{account}-{region}")),
                "{groups:?}"
            );
            let profiles = names(
                &doc(rig.read(&view("ec2-instance-profiles")).await),
                "instanceProfiles",
                "instanceProfileName",
            );
            assert!(profiles.contains(&format!("{FIXTURE_TAG}-profile-{account}")));
            assert!(!profiles.contains(&format!("{FIXTURE_TAG}-profile-{stranger}")));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tick_refreshes_only_what_is_due() {
    let rig = Rig::start(Options::default()).await;
    let first = rig.run("tick-1", &tick()).await;
    assert_eq!(first.output["refreshed"], 26, "{}", first.output);
    let refresher_calls = rig.invocations_of(REFRESHER).len();

    // Right after, nothing is due: the run ends at "Nothing to refresh".
    let second = rig.run("tick-2", &tick()).await;
    assert_eq!(second.output["targets"], 0, "{}", second.output);
    assert_eq!(second.output["batches"], 0, "{}", second.output);
    assert_eq!(second.output["plan"], Value::Null, "{}", second.output);
    assert_eq!(rig.invocations_of(REFRESHER).len(), refresher_calls);
    let states: Vec<String> = rig
        .history(&second.arn)
        .await
        .iter()
        .filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned()))
        .collect();
    assert_eq!(
        states,
        ["Plan refresh", "Any targets?", "Nothing to refresh"],
        "{states:?}"
    );

    // A minute on (the planner's clock), the source servers (fresh for two
    // minutes) expire before the next tick plus the margin: only they run,
    // and each fetch also rewrites its quotas.
    rig.clock.advance(61);
    rig.clear_forwarded();
    let drs_before = rig.sim.requests(Service::Drs, "DescribeSourceServers");
    let third = rig.run("tick-3", &tick()).await;
    let plan = plans(&rig).await.pop().unwrap();
    assert_eq!(plan["targets"], 4, "{plan}");
    let planned: Vec<String> = batch_keys(&plan).concat();
    assert!(
        planned.iter().all(|k| k.starts_with("drs-source-servers#")),
        "{planned:?}"
    );
    let summary = &third.output;
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(
        summary["refreshed"].as_u64().unwrap() + summary["unchanged"].as_u64().unwrap(),
        8,
        "{summary}"
    );
    assert_eq!(
        rig.sim.requests(Service::Drs, "DescribeSourceServers") - drs_before,
        4
    );
    let ec2_or_iam: Vec<_> = rig
        .forwarded()
        .into_iter()
        .filter(|f| matches!(f.service.as_deref(), Some("ec2" | "iam")))
        .collect();
    assert!(ec2_or_iam.is_empty(), "{ec2_or_iam:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drs_stalled_event_refreshes_only_its_account_and_regions_drs_keys() {
    let rig = Rig::start(Options::default()).await;
    rig.run("tick", &tick()).await;
    let before = metas(&rig).await;
    // Past the scheduled run's leases.
    rig.clock.advance(61);
    rig.clear_forwarded();
    let drs_before = rig.sim.request_counts();

    // The fixture, moved to the second account in eu-west-1.
    let mut event = fixture("drs-source-server-data-replication-stalled-change");
    event["account"] = json!(OTHER);
    event["region"] = json!("eu-west-1");
    event["resources"] = json!([format!(
        "arn:aws:drs:eu-west-1:{OTHER}:source-server/s-1a2b3c4d5e6f70819"
    )]);
    let run = rig.run("stalled", &event).await;
    let summary = &run.output;
    assert_eq!(summary["reason"], "event", "{summary}");
    assert_eq!(summary["batches"], 1, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(
        summary["refreshed"].as_u64().unwrap() + summary["unchanged"].as_u64().unwrap(),
        2,
        "{summary}"
    );

    let touched = BTreeSet::from([
        format!("drs-source-servers#eu-west-1#{OTHER}"),
        format!("drs-quotas#eu-west-1#{OTHER}"),
    ]);
    let plan = plans(&rig).await.pop().unwrap();
    assert_eq!(
        batch_keys(&plan)
            .concat()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        touched
    );
    let after = metas(&rig).await;
    for (key, was) in &before {
        let now = &after[key];
        if touched.contains(key) {
            assert!(now.version > was.version, "{key} not refreshed");
            assert!(now.fetched_at >= was.fetched_at, "{key}");
        } else {
            assert_eq!(now.version, was.version, "{key} refreshed too");
        }
    }
    // One DRS listing, nothing from EC2 or IAM.
    let mut drs_after = rig.sim.request_counts();
    let listed = drs_after
        .get_mut(&Service::Drs)
        .and_then(|ops| ops.remove("DescribeSourceServers"))
        .unwrap_or(0);
    let listed_before = drs_before
        .get(&Service::Drs)
        .and_then(|ops| ops.get("DescribeSourceServers"))
        .copied()
        .unwrap_or(0);
    assert_eq!(listed - listed_before, 1);
    let mut others_before = drs_before.clone();
    if let Some(ops) = others_before.get_mut(&Service::Drs) {
        ops.remove("DescribeSourceServers");
    }
    assert_eq!(drs_after, others_before, "other simulator calls");
    let ec2_or_iam: Vec<_> = rig
        .forwarded()
        .into_iter()
        .filter(|f| matches!(f.service.as_deref(), Some("ec2" | "iam")))
        .collect();
    assert!(ec2_or_iam.is_empty(), "{ec2_or_iam:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_denied_by_drs_is_recorded_while_the_other_completes() {
    let rig = Rig::start(Options {
        sim: SimConfig {
            faults: Faults {
                access_denied: vec![other().sim()],
                ..Faults::default()
            },
            ..Options::default().sim
        },
        ..Options::default()
    })
    .await;
    let run = rig.run("tick", &tick()).await;
    let summary = &run.output;

    // A denied key is a permanent failure: its batch ends with it counted as
    // failed (not retried, and no failed batch); every other key is refreshed.
    let plan = &plans(&rig).await[0];
    let batches = batch_keys(plan);
    let denied = |k: &String| k.starts_with("drs-") && k.ends_with(OTHER);
    assert!(batches.iter().any(|b| b.iter().any(denied)), "{batches:?}");
    assert_eq!(summary["failedBatches"], 0, "{summary}");
    assert_eq!(summary["refreshed"], 26 - 6, "{summary}");
    assert_eq!(
        summary["failed"], 6,
        "the denied account's DRS keys in both regions: {summary}"
    );
    assert_eq!(
        rig.invocations_of(REFRESHER).len(),
        batches.len(),
        "AccessDenied is not retried"
    );
    let answered: u64 = rig
        .invocations_of(REFRESHER)
        .iter()
        .map(|i| {
            let out = i
                .result
                .as_ref()
                .expect("keys that fail never fail the invocation");
            assert_eq!(out["retry"], Value::Null, "{out}");
            out["refreshed"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(answered, 26 - 6);

    for key in rig.configured() {
        let raw = key.to_string();
        let answer = rig.read(&key).await;
        let body: Value = serde_json::from_slice(answer.body()).unwrap();
        if denied(&raw) {
            let meta = rig.entry(&key).await.expect("the attempt is recorded").meta;
            assert_eq!(meta.state, EntryState::NoData, "{raw}");
            let failure = meta
                .last_attempt
                .and_then(|a| a.failure)
                .unwrap_or_else(|| panic!("{raw}: no failure recorded"));
            assert_eq!(failure.kind, RefreshErrorKind::AccessDenied, "{raw}");
            assert_eq!(answer.status(), 503, "{raw}: {body}");
            assert_eq!(body["error"], "NOT_CACHED", "{raw}: {body}");
            assert_eq!(
                body["details"]["lastAttempt"]["errorKind"], "AccessDenied",
                "{raw}: {body}"
            );
        } else {
            assert_eq!(answer.status(), 200, "{raw}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_batch_is_retried_by_the_workflow_and_succeeds() {
    // One attempt per upstream call: the first DescribeSourceServers is
    // throttled and the invocation fails with Throttled.
    let rig = Rig::start(Options {
        sim: SimConfig {
            faults: Faults {
                throttle_next: 1,
                ..Faults::default()
            },
            ..Options::default().sim
        },
        upstream_attempts: 1,
        ..Options::default()
    })
    .await;
    let invalidation = json!({"trigger": "manual", "dataType": "drs-source-servers",
                              "region": "us-east-1", "accountId": HOME});
    let run = rig.run("throttled", &invalidation).await;
    let summary = &run.output;
    assert_eq!(summary["reason"], "manual", "{summary}");
    assert_eq!(summary["failedBatches"], 0, "{summary}");
    assert_eq!(summary["refreshed"], 2, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");

    // The first round was throttled and handed its target back; the second,
    // after its wait, refreshed it. Neither invocation failed.
    let calls = rig.invocations_of(REFRESHER);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(|c| c.result.is_ok()), "{calls:?}");
    assert_eq!(
        calls[0].result.as_ref().unwrap()["retry"]["batch"],
        calls[1].payload
    );
    assert_eq!(calls[1].payload["round"], 1);
    assert_eq!(calls[1].payload["targets"], calls[0].payload["targets"]);
    assert_eq!(calls[1].payload["claim"], calls[0].payload["claim"]);
    assert_eq!(calls[1].result.as_ref().unwrap()["retry"], Value::Null);
    assert_eq!(rig.sim.requests(Service::Drs, "DescribeSourceServers"), 2);

    // moto keeps no history of a Distributed Map's children (each runs with a
    // throwaway event list), so the retry is read from what the engine asked
    // of the router above; the parent's history shows the map run absorbed it.
    let history = rig.history(&run.arn).await;
    let text = || {
        history
            .iter()
            .map(describe_event)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let map_run = history
        .iter()
        .find_map(|e| e.map_run_started_event_details())
        .and_then(|d| d.map_run_arn())
        .unwrap_or_else(|| panic!("no map run:\n{}", text()))
        .to_owned();
    assert!(
        history
            .iter()
            .any(|e| *e.r#type() == HistoryEventType::MapRunSucceeded),
        "{}",
        text()
    );
    let described = rig
        .sfn
        .describe_map_run()
        .map_run_arn(&map_run)
        .send()
        .await
        .unwrap();
    let items = described.item_counts().unwrap();
    assert_eq!((items.succeeded(), items.failed()), (1, 0), "{items:?}");

    for raw in [
        format!("drs-source-servers#us-east-1#{HOME}"),
        format!("drs-quotas#us-east-1#{HOME}"),
    ] {
        let k = key(&raw);
        let meta = rig.entry(&k).await.unwrap().meta;
        assert_eq!(meta.state, EntryState::Ready, "{raw}");
        assert!(
            meta.last_attempt.is_none_or(|a| a.failure.is_none()),
            "{raw}: the failure was not cleared"
        );
        assert_eq!(rig.read(&k).await.status(), 200, "{raw}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_fifty_executions_for_one_target_refreshes_it_once() {
    let rig = Rig::start(Options::default()).await;
    let mut event = fixture("ec2-create-subnet");
    event["account"] = json!(HOME);
    event["region"] = json!("us-east-1");
    event["detail"]["recipientAccountId"] = json!(HOME);
    event["detail"]["awsRegion"] = json!("us-east-1");
    rig.clear_forwarded();

    let names: Vec<String> = (0..50).map(|i| format!("create-subnet-{i:02}")).collect();
    let arns =
        futures::future::join_all(names.iter().map(|name| rig.start_execution(name, &event))).await;
    let runs = futures::future::join_all(arns.iter().map(|arn| rig.wait(arn))).await;
    for run in &runs {
        assert_eq!(
            run.status,
            ExecutionStatus::Succeeded,
            "{}: {:?} {:?}\n{}",
            run.name,
            run.error,
            run.cause,
            rig.history_text(&run.arn).await
        );
    }

    // One execution planned the target and refreshed it; 49 found it claimed
    // and marked it.
    let planned: Vec<&Value> = runs
        .iter()
        .map(|r| &r.output)
        .filter(|o| o.get("failedBatches").is_some())
        .collect();
    assert_eq!(planned.len(), 1, "{planned:?}");
    assert_eq!(planned[0]["refreshed"], 1, "{}", planned[0]);
    let skipped: Vec<&Value> = runs
        .iter()
        .map(|r| &r.output)
        .filter(|o| o.get("failedBatches").is_none())
        .collect();
    assert_eq!(skipped.len(), 49);
    assert!(
        skipped
            .iter()
            .all(|o| o["targets"] == 0 && o["skipped"] == 1),
        "{skipped:?}"
    );

    // Marks made before the fetch began are answered by it; one made after it
    // began makes its refresher ask for one follow-up run. Which of the two
    // happened depends on how moto ran the 50: either way the burst costs one
    // fetch in flight and at most one after it.
    // Follow-ups run on the targets workflow.
    let follow_ups: Vec<String> = rig
        .executions(&rig.targets_machine)
        .await
        .into_iter()
        .filter(|(name, _)| name.starts_with("event-targets-"))
        .map(|(_, arn)| arn)
        .collect();
    assert!(follow_ups.len() <= 1, "{follow_ups:?}");
    for arn in &follow_ups {
        let follow_up = rig.wait(arn).await;
        assert_eq!(
            follow_up.status,
            ExecutionStatus::Succeeded,
            "{follow_up:?}"
        );
        // (moto's subnets are as they were: the body is unchanged.)
        assert_eq!(follow_up.output["unchanged"], 1, "{}", follow_up.output);
    }
    assert_eq!(plans(&rig).await.len(), 50 + follow_ups.len());

    // moto saw one DescribeSubnets per fetch, in the home account and region.
    let listings = rig.forwarded_actions("DescribeSubnets");
    assert_eq!(listings.len(), 1 + follow_ups.len(), "{listings:?}");
    assert!(
        listings
            .iter()
            .all(|l| l.region.as_deref() == Some("us-east-1"))
    );
    assert_eq!(rig.invocations_of(REFRESHER).len(), 1 + follow_ups.len());
    let subnets = key(&format!("ec2-subnets#us-east-1#{HOME}"));
    assert_eq!(rig.read(&subnets).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_s_refresh_is_one_targets_run_that_plans_inline_and_fills_the_key() {
    let rig = Rig::start(Options::default()).await;
    let servers = key(&format!("drs-source-servers#us-east-1#{HOME}"));
    let trigger = StepFunctionsTrigger::new(rig.sfn.clone(), &rig.machine, REFRESH_REQUEST_WINDOW)
        .with_targets_machine(Some(rig.targets_machine.clone()));
    trigger
        .request_refresh(&servers, RefreshReason::Miss)
        .await
        .expect("the targets run starts");

    // One execution, of the targets workflow; none of the refresh workflow.
    let runs = rig.executions(&rig.targets_machine).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (name, arn) = runs.into_iter().next().unwrap();
    assert!(
        name.starts_with(&format!("miss-drs-source-servers-us-east-1-{HOME}-")),
        "{name}"
    );
    assert!(rig.executions(&rig.machine).await.is_empty());
    let run = rig.wait(&arn).await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{run:?}\n{}",
        rig.history_text(&arn).await
    );
    // The summary counts the key and `drs-quotas`, which the same fetch
    // writes.
    assert_eq!(run.output["reason"], "miss", "{}", run.output);
    assert_eq!(run.output["batches"], 1, "{}", run.output);
    assert_eq!(run.output["refreshed"], 2, "{}", run.output);
    assert_eq!(run.output["failedBatches"], 0, "{}", run.output);

    // The planner answered the batch inline and wrote no plan object.
    let planned = plans(&rig).await;
    assert_eq!(planned.len(), 1, "{planned:?}");
    assert!(planned[0]["plan"].is_null(), "{}", planned[0]);
    assert_eq!(
        planned[0]["items"][0]["targets"],
        json!([{"dataType": "drs-source-servers", "region": "us-east-1", "accountId": HOME}]),
        "{}",
        planned[0]
    );
    assert_eq!(rig.invocations_of(REFRESHER).len(), 1);
    assert_eq!(rig.read(&servers).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_targets_workflow_refuses_a_trigger_other_than_exact_targets_and_refreshes_nothing() {
    let rig = Rig::start(Options::default()).await;
    let arn = rig
        .sfn
        .start_execution()
        .state_machine_arn(&rig.targets_machine)
        .name("tick-on-targets")
        .input(TICK)
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_owned();
    let run = rig.wait(&arn).await;
    assert_eq!(run.status, ExecutionStatus::Failed, "{run:?}");
    assert_eq!(run.error.as_deref(), Some("InvalidInput"), "{run:?}");
    let cause = run.cause.unwrap_or_default();
    assert!(
        cause.contains("planInline") && cause.contains("exact targets"),
        "{cause}"
    );
    assert!(rig.invocations_of(REFRESHER).is_empty());
    for key in rig.configured() {
        assert!(rig.entry(&key).await.is_none(), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_runs_a_deployment_s_refresh_on_its_workflow_and_prints_the_run_s_summary() {
    let rig = Rig::start(Options::default()).await;
    let args: Vec<String> = [
        "refresh",
        "--all",
        "--store",
        "dynamodb",
        "--table",
        &rig.table,
        "--state-machine-arn",
        &rig.machine,
    ]
    .map(str::to_owned)
    .to_vec();
    let accounts = format!("{HOME},{OTHER}");
    let env: Vec<(String, String)> = crate::support::moto::process_env(
        rig.moto_endpoint(),
        &[
            ("DEPLOYMENT_ACCOUNT_ID", HOME),
            ("REGIONS", "us-east-1,eu-west-1"),
            ("ACCOUNT_IDS", &accounts),
        ],
    )
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    // The command waits on the execution, whose tasks this process answers.
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        crate::support::local::cli(&args, &env)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("succeeded"), "{err}");
    let summary: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(summary["reason"], "manual", "{summary}");
    assert_eq!(summary["refreshed"], 26, "{summary}");
    assert_eq!(summary["failedBatches"], 0, "{summary}");
}
