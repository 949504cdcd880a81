//! The DRS source networks of one (account, region): VPCs of the fleet's origin
//! (another region, this account or a staging one) whose network DRS keeps
//! ready to recreate here. A function of the seed, account and region; a live
//! change may set one's replication status (`source_networks_set`).

use serde_json::json;

use crate::{
    aws::{account_id, partition, resource_id},
    config::SourceNetworkSet,
    fleet::ORIGIN_REGIONS,
    ids::{AccountId, Region},
    rng::Seed,
};

/// One source network, rendered once.
#[derive(Debug, Clone)]
pub(crate) struct SourceNetwork {
    pub(crate) id: String,
    pub(crate) arn: String,
    pub(crate) account: String,
    pub(crate) region: String,
    /// Its `replicationStatus`, as served.
    pub(crate) status: &'static str,
    /// The `SourceNetwork` JSON object.
    pub(crate) json: String,
}

/// How often each `replicationStatus` is drawn.
pub(crate) const STATUSES: [(&str, u32); 4] = [
    ("PROTECTED", 60),
    ("IN_PROGRESS", 15),
    ("STOPPED", 15),
    ("ERROR", 10),
];

/// The source networks of (`account`, `region`): two to four, with the
/// statuses live changes `set` over the drawn ones.
pub(crate) fn generate(
    seed: u64,
    account: &AccountId,
    region: &Region,
    set: &[SourceNetworkSet],
) -> Vec<SourceNetwork> {
    let seed = Seed::new(seed)
        .with_str("source-networks")
        .with_str(account.as_str())
        .with_str(region.as_str());
    let origins: Vec<&str> = ORIGIN_REGIONS
        .iter()
        .copied()
        .filter(|r| *r != region.as_str())
        .collect();
    let count = seed.rng().range(2, 4);
    (0..count)
        .map(|i| {
            let mut rng = seed.with(i).rng();
            let id = resource_id("sn", seed.with_str("id"), i);
            let arn = format!(
                "arn:{}:drs:{region}:{account}:source-network/{id}",
                partition(region)
            );
            let source_region = *rng.pick(&origins);
            let source_account = if rng.chance(0.7) {
                account.to_string()
            } else {
                account_id(seed.with(i).with_str("account"), account.as_str())
            };
            let vpc = resource_id("vpc", seed.with_str("vpc"), i);
            let drawn = *rng.weighted(&STATUSES);
            let status = set
                .iter()
                .find(|s| s.network == id)
                .map_or(drawn, |s| status_name(&s.status));
            let name = ["prod", "shared", "dmz", "data"][(i % 4) as usize];
            let mut network = json!({
                "sourceNetworkID": id,
                "arn": arn,
                "sourceVpcID": vpc,
                "sourceAccountID": source_account,
                "sourceRegion": source_region,
                "replicationStatus": status,
                "tags": {"Name": format!("{name}-vpc")},
            });
            if status != "STOPPED" {
                network["cfnStackName"] = json!(format!("drs-source-network-{name}-{i}"));
            }
            match status {
                "ERROR" => {
                    network["replicationStatusDetails"] = json!(
                        "CloudFormation stack update failed: the security group limit was reached"
                    );
                }
                "IN_PROGRESS" => {
                    network["replicationStatusDetails"] =
                        json!("Replicating the source VPC's configuration");
                }
                _ => {}
            }
            if rng.chance(0.25) {
                network["launchedVpcID"] = json!(resource_id("vpc", seed.with_str("launched"), i));
            }
            SourceNetwork {
                id,
                arn,
                account: source_account,
                region: source_region.to_owned(),
                status,
                json: network.to_string(),
            }
        })
        .collect()
}

/// The served name of a status a live change set (unknown ones cannot pass
/// validation).
fn status_name(status: &str) -> &'static str {
    STATUSES
        .iter()
        .map(|(name, _)| *name)
        .find(|name| *name == status)
        .unwrap_or("PROTECTED")
}
