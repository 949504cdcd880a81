//! AWS IAM through [`AwsUpstream`]: instance profiles, every page. IAM is
//! global, so one listing per account serves every region.

use async_trait::async_trait;
use aws_sdk_iam::types;

use crate::{
    adapters::aws::clients::{AwsUpstream, MissingField},
    domain::{AccountId, inventory::InstanceProfile},
    ports::{Fetched, IamSource, SourceError},
};

#[async_trait]
impl IamSource for AwsUpstream {
    #[tracing::instrument(skip_all, fields(account_id = %account))]
    async fn instance_profiles(
        &self,
        account: &AccountId,
    ) -> Result<Fetched<InstanceProfile>, SourceError> {
        const OPERATION: &str = "ListInstanceProfiles";
        let iam = self.iam(account, OPERATION).await?;
        let pages = iam
            .client
            .list_instance_profiles()
            .max_items(self.config().page_sizes.instance_profiles)
            .into_paginator()
            .send()
            .try_collect()
            .await;
        iam.every_page(OPERATION, pages, |page| page.instance_profiles)
    }
}

impl TryFrom<types::InstanceProfile> for InstanceProfile {
    type Error = MissingField;

    /// IAM's required members are never absent, so this never fails.
    fn try_from(p: types::InstanceProfile) -> Result<Self, MissingField> {
        Ok(Self {
            instance_profile_name: p.instance_profile_name,
            instance_profile_arn: p.arn,
            roles: p.roles.into_iter().map(|r| r.role_name).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::{primitives::DateTime, types::Role};

    fn role(name: &str) -> Role {
        Role::builder()
            .path("/")
            .role_name(name)
            .role_id(format!("AROA{name}"))
            .arn(format!("arn:aws:iam::123456789012:role/{name}"))
            .create_date(DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    #[test]
    fn a_profile_lists_its_role_names() {
        let raw = types::InstanceProfile::builder()
            .path("/")
            .instance_profile_name("drs-recovery")
            .instance_profile_id("AIPA1")
            .arn("arn:aws:iam::123456789012:instance-profile/drs-recovery")
            .create_date(DateTime::from_secs(0))
            .roles(role("DrsRecovery"))
            .roles(role("Extra"))
            .build()
            .unwrap();
        assert_eq!(
            InstanceProfile::try_from(raw).unwrap(),
            InstanceProfile {
                instance_profile_name: "drs-recovery".into(),
                instance_profile_arn: "arn:aws:iam::123456789012:instance-profile/drs-recovery"
                    .into(),
                roles: vec!["DrsRecovery".into(), "Extra".into()],
            }
        );
    }
}
