//! The EventBridge rules of `cfn/drs-cache.yaml` route exactly the change events
//! the planner acts on. Each rule's real pattern is put into moto's EventBridge
//! with an SQS queue as its target (moto's TestEventPattern is a stub, its rule
//! matching is not), then every sample event of `tests/fixtures/events/` is put
//! on the bus and the queues show which rules took it.
//!
//! The fixture's name says where it must go: `drs-*` to the DRS rule, `ec2-*` to
//! the EC2 rule, `iam-*` to the instance profile rule, `other-*` nowhere.
//!
//! The patterns are the template's evaluated for a stack in moto's account with
//! the default parameters, so their account filter names the account moto
//! stamps on the events put here; tests/it/member_account.rs checks that filter
//! against other accounts.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{cfn::Stack, events, moto};
use drs_cache::{
    domain::AccountId,
    plan::trigger::{
        self, DRS_DETAIL_TYPES, INSTANCE_PROFILE_EVENTS, SECURITY_GROUP_EVENTS, SUBNET_EVENTS,
        Trigger,
    },
};
use serde_json::{Value, json};
use serde_norway::Value as Yaml;

const TEMPLATE: &str = include_str!("../../cfn/drs-cache.yaml");
const REGION: &str = "us-east-1";
const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";

/// The rules by logical ID, and the fixture prefix of the events each must take.
const RULES: [(&str, &str); 3] = [
    ("DrsEventRule", "drs-"),
    ("Ec2ChangeRule", "ec2-"),
    ("IamInstanceProfileChangeRule", "iam-"),
];
/// Events no rule may take.
const UNRELATED: &str = "other-";

fn template() -> Yaml {
    serde_norway::from_str(TEMPLATE).expect("cfn/drs-cache.yaml is YAML")
}

/// Every `AWS::Events::Rule` of the template: logical ID to properties.
fn rules(template: &Yaml) -> BTreeMap<String, Yaml> {
    template["Resources"]
        .as_mapping()
        .expect("Resources is a mapping")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Events::Rule"))
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r["Properties"].clone()))
        .collect()
}

/// A rule's event pattern as the JSON EventBridge takes, for a stack in moto's
/// account and `REGION` with the default parameters.
fn pattern(rule: &Yaml) -> Value {
    let t = template();
    Stack::new(&t, moto::ACCOUNT, REGION).value(&rule["EventPattern"])
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("strings").to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The rule a fixture must be routed by, from its name; `None` for `other-*`.
fn expected_rule(fixture: &str) -> Option<&'static str> {
    if fixture.starts_with(UNRELATED) {
        return None;
    }
    let (rule, _) = RULES
        .iter()
        .find(|(_, prefix)| fixture.starts_with(prefix))
        .unwrap_or_else(|| panic!("{fixture}: name it drs-, ec2-, iam- or other-"));
    Some(rule)
}

// --- the template alone --------------------------------------------------------------

#[test]
fn every_rule_starts_the_refresh_workflow_with_the_whole_event() {
    let t = template();
    let rules = rules(&t);
    assert_eq!(
        rules.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        RULES.iter().map(|(id, _)| *id).collect(),
    );
    for (id, rule) in &rules {
        assert_eq!(rule["State"].as_str(), Some("ENABLED"), "{id}");
        let targets = rule["Targets"].as_sequence().expect("Targets");
        assert_eq!(targets.len(), 1, "{id}");
        let target = &targets[0];
        let tagged = |value: &Yaml| match value {
            Yaml::Tagged(t) => (t.tag.to_string(), t.value.as_str().unwrap_or("").to_owned()),
            other => panic!("{id}: {other:?}"),
        };
        assert_eq!(
            tagged(&target["Arn"]),
            ("!Ref".into(), "RefreshStateMachine".into()),
            "{id}"
        );
        assert_eq!(
            tagged(&target["RoleArn"]),
            ("!GetAtt".into(), "RefreshEventRuleRole.Arn".into()),
            "{id}"
        );
        // The planner reads the event itself: no Input, InputPath or transformer.
        for field in ["Input", "InputPath", "InputTransformer"] {
            assert!(target.get(field).is_none(), "{id}: {field}");
        }
        // An event that cannot start a run after the retries is kept.
        let retry = &target["RetryPolicy"];
        assert!(retry["MaximumRetryAttempts"].as_u64() > Some(0), "{id}");
        assert_eq!(
            tagged(&target["DeadLetterConfig"]["Arn"]),
            ("!GetAtt".into(), "RefreshEventsDeadLetterQueue.Arn".into()),
            "{id}"
        );
    }
}

#[test]
fn the_rules_name_exactly_the_events_the_planner_acts_on() {
    let t = template();
    let rules = rules(&t);
    let drs = pattern(&rules["DrsEventRule"]);
    assert_eq!(strings(&drs["source"]), set(&["aws.drs"]));
    assert_eq!(strings(&drs["detail-type"]), set(&DRS_DETAIL_TYPES));

    let ec2 = pattern(&rules["Ec2ChangeRule"]);
    assert_eq!(strings(&ec2["source"]), set(&["aws.ec2"]));
    assert_eq!(strings(&ec2["detail-type"]), set(&[CLOUDTRAIL]));
    assert_eq!(
        strings(&ec2["detail"]["eventSource"]),
        set(&["ec2.amazonaws.com"])
    );
    let ec2_names: Vec<&str> = SUBNET_EVENTS
        .into_iter()
        .chain(SECURITY_GROUP_EVENTS)
        .collect();
    assert_eq!(strings(&ec2["detail"]["eventName"]), set(&ec2_names));

    let iam = pattern(&rules["IamInstanceProfileChangeRule"]);
    assert_eq!(strings(&iam["source"]), set(&["aws.iam"]));
    assert_eq!(strings(&iam["detail-type"]), set(&[CLOUDTRAIL]));
    assert_eq!(
        strings(&iam["detail"]["eventSource"]),
        set(&["iam.amazonaws.com"])
    );
    assert_eq!(
        strings(&iam["detail"]["eventName"]),
        set(&INSTANCE_PROFILE_EVENTS)
    );

    // A CloudTrail record of a call that failed changed nothing.
    for pattern in [&ec2, &iam] {
        assert_eq!(pattern["detail"]["errorCode"], json!([{"exists": false}]));
    }
    // The events of the accounts refreshed: by default the stack's own.
    for pattern in [&drs, &ec2, &iam] {
        assert_eq!(pattern["account"], json!([moto::ACCOUNT]));
    }
}

#[test]
fn what_the_rules_cannot_deliver_waits_in_an_encrypted_queue_only_they_may_send_to() {
    let t = template();
    let stack = Stack::new(&t, moto::ACCOUNT, REGION);
    let queue = stack.properties("RefreshEventsDeadLetterQueue");
    assert_eq!(queue["SqsManagedSseEnabled"], true);
    let policy = stack.properties("RefreshEventsDeadLetterQueuePolicy");
    assert_eq!(
        policy["Queues"],
        json!(["physical-id-of-RefreshEventsDeadLetterQueue"])
    );
    let rules: BTreeSet<String> = RULES.iter().map(|(id, _)| format!("Arn-of-{id}")).collect();
    assert_eq!(
        policy["PolicyDocument"]["Statement"],
        json!([{
            "Sid": "RefreshRulesDeadLetters",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": "Arn-of-RefreshEventsDeadLetterQueue",
            "Condition": {"ArnEquals": {"aws:SourceArn": rules}},
        }])
    );
    let outputs = stack.outputs();
    assert_eq!(
        outputs["RefreshEventsDeadLetterQueueUrl"],
        "physical-id-of-RefreshEventsDeadLetterQueue"
    );
    assert_eq!(
        outputs["RefreshEventsDeadLetterQueueArn"],
        "Arn-of-RefreshEventsDeadLetterQueue"
    );
}

#[test]
fn every_event_a_rule_names_has_a_sample_and_the_planner_acts_on_each() {
    let events = events::fixtures();
    let home = AccountId::parse("111122223333").unwrap();
    let mut drs = BTreeSet::new();
    let mut calls: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (name, event) in &events {
        let Some(rule) = expected_rule(name) else {
            continue;
        };
        match rule {
            "DrsEventRule" => {
                drs.insert(event["detail-type"].as_str().unwrap().to_owned());
            }
            rule => {
                calls
                    .entry(rule)
                    .or_default()
                    .insert(event["detail"]["eventName"].as_str().unwrap().to_owned());
            }
        }
        let parsed = trigger::parse(event, home);
        assert!(
            matches!(
                parsed,
                Ok(Trigger::Change { .. }
                    | Trigger::Launched { .. }
                    | Trigger::ProfilesChanged { .. })
            ),
            "{name}: the planner answers {parsed:?}"
        );
    }
    assert_eq!(drs, set(&DRS_DETAIL_TYPES));
    let ec2_names: Vec<&str> = SUBNET_EVENTS
        .into_iter()
        .chain(SECURITY_GROUP_EVENTS)
        .collect();
    assert_eq!(calls["Ec2ChangeRule"], set(&ec2_names));
    assert_eq!(
        calls["IamInstanceProfileChangeRule"],
        set(&INSTANCE_PROFILE_EVENTS)
    );
    assert!(events.keys().any(|n| n.starts_with(UNRELATED)));
}

// --- moto ------------------------------------------------------------------------------

#[test]
fn moto_routes_each_sample_event_to_its_rule_and_no_other() {
    let t = template();
    let bus = moto::create_event_bus(moto::ACCOUNT, REGION, "bus");
    let mut queues = BTreeMap::new();
    for (id, rule) in rules(&t) {
        let name = moto::unique_name(&id.to_lowercase());
        let queue = moto::subscribe(REGION, &bus, &name, &pattern(&rule));
        queues.insert(id, queue);
    }

    let mut routed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, event) in events::fixtures() {
        let put = moto::aws_json(
            moto::ACCOUNT,
            REGION,
            "events",
            "AWSEvents.PutEvents",
            &json!({"Entries": [{
                "EventBusName": bus,
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Resources": event["resources"],
                "Detail": event["detail"].to_string(),
            }]}),
        );
        assert_eq!(put["FailedEntryCount"], 0, "{name}: {put}");
        let mut taken_by = Vec::new();
        for (rule, queue) in &queues {
            for delivered in queue.drain() {
                assert_eq!(
                    events::identity(&delivered),
                    events::identity(&event),
                    "{name} via {rule}"
                );
                taken_by.push(rule.clone());
            }
        }
        let expected: Vec<String> = expected_rule(&name).into_iter().map(String::from).collect();
        assert_eq!(taken_by, expected, "{name} was taken by {taken_by:?}");
        for rule in taken_by {
            routed.entry(rule).or_default().push(name.clone());
        }
    }
    // Every rule took something: a pattern that matches nothing fails above
    // only if it has samples, so say it here too.
    for (id, _) in RULES {
        assert!(routed.contains_key(id), "{id} took no sample event");
    }
}
