//! Turns a route and its query parameters into a validated read of one target.

use crate::domain::{AccountId, CacheKey, DataType, Kept, Region};

use super::{
    ApiError, Filter,
    filter::{Page, PageToken, page_limit},
};

/// A validated read: which entry, and which part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub key: CacheKey,
    pub filter: Option<Filter>,
    /// The token a paged read continues from: it must be of the version
    /// served.
    pub after: Option<PageToken>,
}

/// Records per page when `nextToken` is given without `limit`.
pub const DEFAULT_PAGE: usize = 1_000;

/// Where each data type is served.
const ROUTES: [(&str, DataType); 11] = [
    ("/drs/source-servers", DataType::DrsSourceServers),
    ("/drs/quotas", DataType::DrsQuotas),
    ("/drs/accounts", DataType::DrsAccounts),
    ("/drs/jobs", DataType::DrsJobs),
    ("/drs/recovery-instances", DataType::DrsRecoveryInstances),
    ("/drs/source-networks", DataType::DrsSourceNetworks),
    ("/ec2/subnets", DataType::Ec2Subnets),
    ("/ec2/security-groups", DataType::Ec2SecurityGroups),
    ("/ec2/instance-profiles", DataType::Ec2InstanceProfiles),
    ("/ec2/instance-types", DataType::Ec2InstanceTypes),
    ("/drs/capacity", DataType::DrsCapacity),
];

/// The data type served at `path` (a trailing slash is tolerated).
pub fn route(path: &str) -> Option<DataType> {
    let path = path.strip_suffix('/').unwrap_or(path);
    ROUTES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}

/// The path `data_type` is served at.
pub fn path_of(data_type: DataType) -> &'static str {
    ROUTES
        .iter()
        .find(|(_, t)| *t == data_type)
        .map_or("/", |(p, _)| p)
}

/// The query parameters `data_type` accepts besides `region` and `accountId`.
pub(super) fn filter_fields(data_type: DataType) -> &'static [&'static str] {
    match data_type {
        DataType::Ec2Subnets => &["vpcId", "availabilityZone"],
        DataType::Ec2SecurityGroups => &["vpcId"],
        DataType::Ec2InstanceTypes => &["instanceFamily"],
        DataType::DrsSourceServers => &[
            "hostname",
            "replicationState",
            "stagingAccountId",
            "tag",
            "minCores",
            "minRamGiB",
        ],
        DataType::DrsJobs => &["status", "type", "sourceServerId"],
        DataType::DrsRecoveryInstances => &[
            "sourceServerId",
            "ec2InstanceState",
            "failbackState",
            "isDrill",
        ],
        DataType::DrsSourceNetworks => &["replicationStatus"],
        DataType::DrsCapacity => &["accountId", "region"],
        _ => &[],
    }
}

impl ReadRequest {
    /// A read of the fleet capacity stored under `key`, narrowed to the
    /// accounts (`accountId`) and regions (`region`) given: each may repeat,
    /// and any of its values matches. A part outside `kept` is refused.
    pub fn capacity<'a>(
        key: CacheKey,
        query: impl IntoIterator<Item = (&'a str, &'a str)>,
        kept: Option<&Kept>,
    ) -> Result<Self, ApiError> {
        let mut filter = Filter::default();
        for (name, value) in query {
            let invalid = |reason| ApiError::invalid(name, reason, value);
            if !filter_fields(DataType::DrsCapacity).contains(&name) {
                return Err(invalid("is not a parameter of this endpoint"));
            }
            filter.add(name, value).map_err(invalid)?;
            if let Some(kept) = kept {
                let checked = match name {
                    "region" => Region::parse(value)
                        .map(|r| kept.check_parts(None, Some(&r), None))
                        .ok(),
                    _ => AccountId::parse(value)
                        .map(|a| kept.check_parts(None, None, Some(a)))
                        .ok(),
                };
                if let Some(Err(not_kept)) = checked {
                    return Err(ApiError::NotConfigured(not_kept));
                }
            }
        }
        Ok(Self {
            key,
            filter: (!filter.is_empty()).then_some(filter),
            after: None,
        })
    }

    /// Validates the query of a read of `data_type`. `accountId` falls back to
    /// `default_account`, the deployment's own account.
    pub fn parse<'a>(
        data_type: DataType,
        query: impl IntoIterator<Item = (&'a str, &'a str)>,
        default_account: Option<AccountId>,
    ) -> Result<Self, ApiError> {
        let mut region = None;
        let mut account = None;
        let mut filter = Filter::default();
        let (mut limit, mut after) = (None, None);
        let pages = data_type.record_list().is_some();
        let allowed = filter_fields(data_type);
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in query {
            let invalid = |reason| ApiError::invalid(name, reason, value);
            // A filter may be given several values (any of them matches).
            if seen.contains(&name) && !allowed.contains(&name) {
                return Err(invalid("is given more than once"));
            }
            seen.push(name);
            match name {
                "region" => {
                    region = Some(Region::parse(value).map_err(|e| invalid(e.reason))?);
                }
                "accountId" => {
                    account = Some(AccountId::parse(value).map_err(|e| invalid(e.reason))?);
                }
                "limit" if pages => limit = Some(page_limit(value).map_err(invalid)?),
                "nextToken" if pages => after = Some(PageToken::parse(value).map_err(invalid)?),
                _ if allowed.contains(&name) => {
                    filter.add(name, value).map_err(invalid)?;
                }
                _ => return Err(invalid("is not a parameter of this endpoint")),
            }
        }
        if let Some(token) = &after
            && *token.filters != *filter.selection_tag()
        {
            return Err(ApiError::invalid(
                "nextToken",
                "was issued for other filters: send the first page's filters with it",
                &format!("{}-{}-{}", token.source, token.offset, token.filters),
            ));
        }
        if limit.is_some() || after.is_some() {
            filter = filter.paged(Page {
                offset: after.as_ref().map_or(0, |t: &PageToken| t.offset),
                limit: limit.unwrap_or(DEFAULT_PAGE),
            });
        }
        let region = region.ok_or(ApiError::MissingParameter { field: "region" })?;
        if let Some(zone) = filter.values("availabilityZone").iter().find(|zone| {
            zone.strip_prefix(region.as_str())
                .is_none_or(|letter| letter.len() != 1)
        }) {
            return Err(ApiError::invalid(
                "availabilityZone",
                "is not in the requested region",
                zone,
            ));
        }
        let key = match CacheKey::global(data_type, region.clone()) {
            Some(key) => key,
            None => {
                let account = account
                    .or(default_account)
                    .ok_or(ApiError::MissingParameter { field: "accountId" })?;
                CacheKey::new(data_type, region, account)
            }
        };
        Ok(Self {
            key,
            filter: (!filter.is_empty()).then_some(filter),
            after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: DataType, q: &[(&str, &str)]) -> Result<ReadRequest, ApiError> {
        ReadRequest::parse(t, q.iter().copied(), AccountId::parse("123456789012").ok())
    }

    #[test]
    fn every_documented_path_routes() {
        for &t in DataType::ALL {
            let path = format!("/{}", t.as_str().replacen('-', "/", 1));
            assert_eq!(route(&path), Some(t), "{path}");
            assert_eq!(route(&format!("{path}/")), Some(t));
        }
        assert_eq!(route("/drs/quota"), None);
        assert_eq!(route("/"), None);
    }

    #[test]
    fn account_defaults_to_the_deployment_account() {
        let r = parse(DataType::DrsQuotas, &[("region", "us-east-1")]).unwrap();
        assert_eq!(r.key.to_string(), "drs-quotas#us-east-1#123456789012");
        let none = ReadRequest::parse(DataType::DrsQuotas, [("region", "us-east-1")], None);
        assert_eq!(none, Err(ApiError::MissingParameter { field: "accountId" }));
    }

    #[test]
    fn instance_types_are_keyed_globally() {
        let r = parse(
            DataType::Ec2InstanceTypes,
            &[("region", "eu-west-1"), ("instanceFamily", "m5")],
        )
        .unwrap();
        assert_eq!(r.key.to_string(), "ec2-instance-types#eu-west-1#global");
        assert!(r.filter.is_some());
    }

    #[test]
    fn bad_parameters_name_the_field() {
        let field = |q: &[(&str, &str)], t| match parse(t, q) {
            Err(ApiError::InvalidParameter { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let t = DataType::Ec2Subnets;
        assert_eq!(field(&[("region", "nowhere")], t), "region");
        assert_eq!(
            field(&[("region", "us-east-1"), ("accountId", "12")], t),
            "accountId"
        );
        assert_eq!(
            field(&[("region", "us-east-1"), ("vpcId", "vpc-XYZ")], t),
            "vpcId"
        );
        assert_eq!(
            field(
                &[("region", "us-east-1"), ("availabilityZone", "eu-west-1a")],
                t
            ),
            "availabilityZone"
        );
        assert_eq!(
            field(
                &[("region", "us-east-1"), ("availabilityZone", "us-east-11a")],
                t
            ),
            "availabilityZone"
        );
        assert_eq!(
            field(&[("region", "us-east-1"), ("region", "us-east-1")], t),
            "region"
        );
        assert_eq!(
            field(&[("region", "us-east-1"), ("colour", "red")], t),
            "colour"
        );
        assert_eq!(
            field(&[("region", "us-east-1"), ("instanceFamily", "m5")], t),
            "instanceFamily"
        );
        assert_eq!(
            parse(t, &[]),
            Err(ApiError::MissingParameter { field: "region" })
        );
        // Source servers take their own filters, and only those.
        let s = DataType::DrsSourceServers;
        assert_eq!(
            field(&[("region", "us-east-1"), ("minCores", "lots")], s),
            "minCores"
        );
        assert_eq!(
            field(&[("region", "us-east-1"), ("vpcId", "vpc-0000000a")], s),
            "vpcId"
        );
    }

    #[test]
    fn a_filter_may_repeat_and_region_or_account_may_not() {
        let r = parse(
            DataType::DrsSourceServers,
            &[
                ("region", "us-east-1"),
                ("replicationState", "STALLED"),
                ("replicationState", "PAUSED"),
                ("tag", "App=shop"),
            ],
        )
        .unwrap();
        let filter = r.filter.unwrap();
        assert_eq!(filter.values("replicationState").len(), 2);
        let twice = parse(
            DataType::DrsSourceServers,
            &[
                ("region", "us-east-1"),
                ("accountId", "123456789012"),
                ("accountId", "123456789012"),
            ],
        );
        assert!(
            matches!(twice, Err(ApiError::InvalidParameter { field, .. }) if field == "accountId")
        );
    }
}
