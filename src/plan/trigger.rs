//! What started a refresh run, read from the workflow's execution input: a
//! scheduled tick, a DRS or CloudTrail event from EventBridge, a manual
//! invalidation, or the reader's request for exact targets.

use serde_json::Value;

use crate::{
    domain::{AccountId, CacheKey, DataType, Region},
    ports::{Invalidation, RefreshReason},
    workflow::{ExecutionInput, InputError, WarmRequest},
};

/// The DRS event of a recovery or drill launch: it warms its account.
pub const LAUNCH_RESULT: &str = "DRS Source Server Launch Result";

/// DRS event detail-types that change source servers or capacity.
pub const DRS_DETAIL_TYPES: [&str; 6] = [
    "DRS Source Server Data Replication Stalled Change",
    LAUNCH_RESULT,
    "DRS PIT Snapshot Taken",
    "DRS Recovery Instance Failback State Change",
    "DRS Source Network Protection Status Change",
    "DRS Source Network Recovery Result",
];

/// The data types a DRS event changes: a source-server event its servers and
/// their capacity; a launch also its jobs and recovery instances; a failback
/// its recovery instances (and the servers, whose replication direction
/// turns); a source-network event its source networks.
pub fn drs_changes(detail_type: &str) -> &'static [DataType] {
    use DataType::{DrsJobs, DrsQuotas, DrsRecoveryInstances, DrsSourceNetworks, DrsSourceServers};
    match detail_type {
        "DRS Source Server Launch Result" => {
            &[DrsSourceServers, DrsQuotas, DrsJobs, DrsRecoveryInstances]
        }
        "DRS Recovery Instance Failback State Change" => {
            &[DrsRecoveryInstances, DrsSourceServers, DrsQuotas]
        }
        "DRS Source Network Protection Status Change" | "DRS Source Network Recovery Result" => {
            &[DrsSourceNetworks]
        }
        _ => &[DrsSourceServers, DrsQuotas],
    }
}

/// CloudTrail event names that change subnets.
pub const SUBNET_EVENTS: [&str; 3] = ["CreateSubnet", "DeleteSubnet", "ModifySubnetAttribute"];

/// CloudTrail event names that change security groups.
pub const SECURITY_GROUP_EVENTS: [&str; 7] = [
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "ModifySecurityGroupRules",
];

/// CloudTrail event names that change instance profiles.
pub const INSTANCE_PROFILE_EVENTS: [&str; 4] = [
    "CreateInstanceProfile",
    "DeleteInstanceProfile",
    "AddRoleToInstanceProfile",
    "RemoveRoleFromInstanceProfile",
];

const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A scheduled tick: refresh what is due.
    Schedule,
    /// `data_types` of one account and region changed.
    Change {
        account: AccountId,
        region: Region,
        data_types: Vec<DataType>,
    },
    /// A recovery (or drill) launched in `account` and `region`: its launch
    /// data types changed, and every key of the account is kept warm.
    Launched { account: AccountId, region: Region },
    /// Instance profiles of an account changed (IAM is global: every region).
    ProfilesChanged { account: AccountId },
    /// An operator's request to keep every key of an account refreshed ahead
    /// (`drs-cache warm`).
    Warm(WarmRequest),
    /// `POST /cache/invalidate`: every configured target matching the parts given.
    Manual(Invalidation),
    /// Exact targets, such as the reader's misses.
    Targets {
        reason: RefreshReason,
        keys: Vec<CacheKey>,
    },
    /// An event this deployment does not act on.
    Ignored { why: String },
}

impl Trigger {
    pub fn reason(&self) -> RefreshReason {
        match self {
            Self::Schedule => RefreshReason::Schedule,
            Self::Change { .. }
            | Self::Launched { .. }
            | Self::ProfilesChanged { .. }
            | Self::Ignored { .. } => RefreshReason::Event,
            Self::Manual(_) | Self::Warm(_) => RefreshReason::Manual,
            Self::Targets { reason, .. } => *reason,
        }
    }
}

/// Reads a trigger. Our own inputs (`trigger`, `targets`) must be well formed;
/// any other event is either one the workflow acts on or `Ignored`.
pub fn parse(input: &Value, home: AccountId) -> Result<Trigger, InputError> {
    Ok(match ExecutionInput::parse(input)? {
        Some(ExecutionInput::Trigger(trigger)) => match trigger.warm()? {
            Some(warm) => Trigger::Warm(warm),
            None => match trigger.invalidation()? {
                Some(invalidation) => Trigger::Manual(invalidation),
                None => Trigger::Schedule,
            },
        },
        Some(ExecutionInput::Targets(batch)) => Trigger::Targets {
            reason: batch.reason,
            keys: batch.keys(home)?,
        },
        None => event(input),
    })
}

/// An EventBridge event: DRS, CloudTrail (EC2, IAM), or a scheduled event.
fn event(input: &Value) -> Trigger {
    let text = |v: &Value, path: &str| v.pointer(path).and_then(Value::as_str).map(str::to_owned);
    let (source, detail_type) = (text(input, "/source"), text(input, "/detail-type"));
    let ignored = |why: String| Trigger::Ignored { why };
    match (source.as_deref(), detail_type.as_deref()) {
        (Some("aws.events" | "aws.scheduler"), Some("Scheduled Event")) => Trigger::Schedule,
        (Some("aws.drs"), Some(detail)) if DRS_DETAIL_TYPES.contains(&detail) => {
            // The source server's ARN names its account and region.
            let arn = text(input, "/resources/0");
            let (region, account) = arn
                .as_deref()
                .and_then(arn_region_and_account)
                .map(|(r, a)| (Some(r), Some(a)))
                .unwrap_or((text(input, "/region"), text(input, "/account")));
            match located(region.as_deref(), account.as_deref()) {
                Some((account, region)) if detail == LAUNCH_RESULT => {
                    Trigger::Launched { account, region }
                }
                Some((account, region)) => Trigger::Change {
                    account,
                    region,
                    data_types: drs_changes(detail).to_vec(),
                },
                None => ignored(format!(
                    "DRS event {detail:?} names no valid account and region"
                )),
            }
        }
        (Some("aws.ec2"), Some(CLOUDTRAIL)) => {
            let name = text(input, "/detail/eventName").unwrap_or_default();
            let data_type = if SUBNET_EVENTS.contains(&name.as_str()) {
                DataType::Ec2Subnets
            } else if SECURITY_GROUP_EVENTS.contains(&name.as_str()) {
                DataType::Ec2SecurityGroups
            } else {
                return ignored(format!("EC2 call {name:?} changes nothing cached"));
            };
            let region = text(input, "/detail/awsRegion").or_else(|| text(input, "/region"));
            let account =
                text(input, "/detail/recipientAccountId").or_else(|| text(input, "/account"));
            match located(region.as_deref(), account.as_deref()) {
                Some((account, region)) => Trigger::Change {
                    account,
                    region,
                    data_types: vec![data_type],
                },
                None => ignored(format!(
                    "EC2 call {name:?} names no valid account and region"
                )),
            }
        }
        (Some("aws.iam"), Some(CLOUDTRAIL)) => {
            let name = text(input, "/detail/eventName").unwrap_or_default();
            if !INSTANCE_PROFILE_EVENTS.contains(&name.as_str()) {
                return ignored(format!("IAM call {name:?} changes nothing cached"));
            }
            let account =
                text(input, "/detail/recipientAccountId").or_else(|| text(input, "/account"));
            match account.as_deref().map(AccountId::parse) {
                Some(Ok(account)) => Trigger::ProfilesChanged { account },
                _ => ignored(format!("IAM call {name:?} names no valid account")),
            }
        }
        (source, detail) => ignored(format!(
            "event from {} of type {} is not one the workflow acts on",
            source.unwrap_or("no source"),
            detail.unwrap_or("none")
        )),
    }
}

/// When the change an EventBridge event reports happened (its `time`), in
/// milliseconds since the Unix epoch; `None` for our own inputs and for an
/// event without a readable time. EventBridge gives whole seconds, so a lag
/// measured from it reads up to a second long.
pub fn event_time(input: &Value) -> Option<u64> {
    input.get("detail-type")?;
    let time = input.get("time")?.as_str()?;
    let parsed =
        aws_smithy_types::DateTime::from_str(time, aws_smithy_types::date_time::Format::DateTime)
            .ok()?;
    u64::try_from(parsed.to_millis().ok()?).ok()
}

fn located(region: Option<&str>, account: Option<&str>) -> Option<(AccountId, Region)> {
    Some((
        AccountId::parse(account?).ok()?,
        Region::parse(region?).ok()?,
    ))
}

/// `arn:partition:service:region:account:resource` → (region, account).
fn arn_region_and_account(arn: &str) -> Option<(String, String)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some(_), Some(region), Some(account), Some(_)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some((region.to_owned(), account.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn home() -> AccountId {
        AccountId::parse("999999999999").unwrap()
    }

    #[test]
    fn an_event_carries_its_time_and_our_own_inputs_none() {
        let event = json!({
            "source": "aws.drs", "detail-type": "DRS Source Server Launch Result",
            "time": "2026-12-02T15:00:01Z", "resources": []
        });
        assert_eq!(event_time(&event), Some(1_796_223_601_000));
        let fraction = json!({"detail-type": "x", "time": "2026-12-02T15:00:01.250Z"});
        assert_eq!(event_time(&fraction), Some(1_796_223_601_250));
        assert_eq!(
            event_time(&json!({"detail-type": "x", "time": "soon"})),
            None
        );
        assert_eq!(
            event_time(&json!({"trigger": {"kind": "schedule"}, "time": "2026-12-02T15:00:01Z"})),
            None
        );
    }

    #[test]
    fn a_drs_event_names_the_account_and_region_of_its_source_server() {
        let event = json!({
            "source": "aws.drs",
            "detail-type": "DRS Source Server Data Replication Stalled Change",
            "account": "111111111111", "region": "eu-west-1",
            "resources": ["arn:aws:drs:us-west-2:222233334444:source-server/s-1234567890abcdef0"],
            "detail": {"state": "STALLED"}
        });
        assert_eq!(
            parse(&event, home()).unwrap(),
            Trigger::Change {
                account: AccountId::parse("222233334444").unwrap(),
                region: Region::parse("us-west-2").unwrap(),
                data_types: vec![DataType::DrsSourceServers, DataType::DrsQuotas],
            }
        );
    }

    #[test]
    fn each_drs_detail_type_refreshes_the_data_it_changes() {
        let event = |detail_type: &str, arn: &str| {
            json!({
                "source": "aws.drs", "detail-type": detail_type,
                "account": "111111111111", "region": "eu-west-1",
                "resources": [arn], "detail": {"state": "X"}
            })
        };
        let types =
            |detail_type: &str, arn: &str| match parse(&event(detail_type, arn), home()).unwrap() {
                Trigger::Change { data_types, .. } => data_types,
                Trigger::Launched { .. } => drs_changes(LAUNCH_RESULT).to_vec(),
                other => panic!("{other:?}"),
            };
        let server = "arn:aws:drs:us-west-2:222233334444:source-server/s-1234567890abcdef0";
        let instance = "arn:aws:drs:us-west-2:222233334444:recovery-instance/i-0123456789abcdef0";
        let network = "arn:aws:drs:us-west-2:222233334444:source-network/sn-0123456789abcdef0";
        use DataType::*;
        assert_eq!(
            types("DRS Source Server Launch Result", server),
            [DrsSourceServers, DrsQuotas, DrsJobs, DrsRecoveryInstances]
        );
        assert_eq!(
            types("DRS Recovery Instance Failback State Change", instance),
            [DrsRecoveryInstances, DrsSourceServers, DrsQuotas]
        );
        for detail_type in [
            "DRS Source Network Protection Status Change",
            "DRS Source Network Recovery Result",
        ] {
            assert_eq!(types(detail_type, network), [DrsSourceNetworks]);
        }
        assert_eq!(
            types("DRS PIT Snapshot Taken", server),
            [DrsSourceServers, DrsQuotas]
        );
    }

    #[test]
    fn a_launch_result_warms_its_account_and_a_warm_input_names_an_account() {
        let launch = json!({
            "source": "aws.drs", "detail-type": LAUNCH_RESULT,
            "account": "111111111111", "region": "eu-west-1",
            "resources": ["arn:aws:drs:us-west-2:222233334444:source-server/s-1234567890abcdef0"],
            "detail": {"state": "LAUNCHED"}
        });
        assert_eq!(
            parse(&launch, home()).unwrap(),
            Trigger::Launched {
                account: AccountId::parse("222233334444").unwrap(),
                region: Region::parse("us-west-2").unwrap(),
            }
        );
        let warm = json!({"trigger": "warm", "accountId": "222233334444", "seconds": 7200});
        assert_eq!(
            parse(&warm, home()).unwrap(),
            Trigger::Warm(WarmRequest {
                account: AccountId::parse("222233334444").unwrap(),
                window: Some(std::time::Duration::from_secs(7200)),
            })
        );
        assert_eq!(
            parse(&warm, home()).unwrap().reason(),
            RefreshReason::Manual
        );
        let refused = |input: Value| parse(&input, home()).unwrap_err().field;
        assert_eq!(refused(json!({"trigger": "warm"})), "accountId");
        assert_eq!(
            refused(json!({"trigger": "warm", "accountId": "222233334444", "seconds": 0})),
            "seconds"
        );
        assert_eq!(
            refused(json!({"trigger": "warm", "accountId": "222233334444", "region": "us-east-1"})),
            "trigger"
        );
        assert_eq!(
            refused(json!({"trigger": "manual", "seconds": 60})),
            "seconds"
        );
    }

    #[test]
    fn cloudtrail_calls_map_to_the_data_they_change() {
        let call = |source: &str, name: &str| {
            json!({
                "source": source, "detail-type": "AWS API Call via CloudTrail",
                "account": "111122223333", "region": "us-east-1",
                "detail": {"eventName": name, "awsRegion": "us-east-1",
                           "recipientAccountId": "111122223333"}
            })
        };
        let types = |t: Trigger| match t {
            Trigger::Change { data_types, .. } => data_types,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            types(parse(&call("aws.ec2", "CreateSubnet"), home()).unwrap()),
            [DataType::Ec2Subnets]
        );
        assert_eq!(
            types(parse(&call("aws.ec2", "ModifySecurityGroupRules"), home()).unwrap()),
            [DataType::Ec2SecurityGroups]
        );
        assert!(matches!(
            parse(&call("aws.iam", "AddRoleToInstanceProfile"), home()).unwrap(),
            Trigger::ProfilesChanged { .. }
        ));
        assert!(matches!(
            parse(&call("aws.ec2", "RunInstances"), home()).unwrap(),
            Trigger::Ignored { .. }
        ));
    }

    #[test]
    fn unknown_events_are_ignored_not_errors() {
        for event in [
            json!({"source": "aws.s3", "detail-type": "Object Created"}),
            json!({"source": "aws.drs", "detail-type": "DRS Something Else"}),
            json!({}),
        ] {
            assert!(
                matches!(parse(&event, home()), Ok(Trigger::Ignored { .. })),
                "{event}"
            );
        }
    }

    #[test]
    fn our_own_inputs_must_be_well_formed() {
        assert_eq!(
            parse(
                &json!({"trigger": "schedule", "time": "2026-11-29T10:00:00Z"}),
                home()
            ),
            Ok(Trigger::Schedule)
        );
        assert_eq!(
            parse(
                &json!({"trigger": "manual", "dataType": "drs-quotas"}),
                home()
            ),
            Ok(Trigger::Manual(Invalidation {
                data_type: Some(DataType::DrsQuotas),
                region: None,
                account: None
            }))
        );
        let e = parse(&json!({"trigger": "manual", "region": "moon"}), home()).unwrap_err();
        assert_eq!(e.field, "region");
        let e = parse(&json!({"trigger": "often"}), home()).unwrap_err();
        assert_eq!(e.field, "trigger");
        let miss = json!({"reason": "miss", "targets": [
            {"dataType": "ec2-subnets", "region": "us-east-1", "accountId": "111122223333"}]});
        assert!(matches!(
            parse(&miss, home()).unwrap(),
            Trigger::Targets {
                reason: RefreshReason::Miss,
                ..
            }
        ));
        let bad = json!({"reason": "miss", "targets": [{"dataType": "x", "region": "us-east-1"}]});
        assert_eq!(
            parse(&bad, home()).unwrap_err().field,
            "targets[0].dataType"
        );
    }
}
