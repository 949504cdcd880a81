//! How the upstream reaches each account: the deployment's own account with the
//! base credentials, every other one through a role or with configured keys.

use std::{collections::HashMap, fmt};

use crate::domain::AccountId;

/// Which accounts the upstream reads and with which credentials.
#[derive(Debug, Clone)]
pub struct AccountAccess {
    /// The deployment's own account, read with the base `SdkConfig`'s credentials.
    /// `None` reaches every account through `others`.
    pub own_account: Option<AccountId>,
    /// How every other account is reached.
    pub others: Credentials,
}

/// Credentials for the accounts other than the deployment's own.
#[derive(Clone)]
pub enum Credentials {
    /// Assume `arn:{partition}:iam::{account}:role/{role_name}` with the base
    /// credentials.
    AssumeRole {
        role_name: String,
        /// Passed as `ExternalId` when set.
        external_id: Option<String>,
        session_name: String,
    },
    /// Fixed keys per account, as a local simulator hands out. An account
    /// without keys is refused.
    Static(HashMap<AccountId, StaticKeys>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AssumeRole {
                role_name,
                external_id,
                session_name,
            } => f
                .debug_struct("AssumeRole")
                .field("role_name", role_name)
                .field(
                    "external_id",
                    &external_id.as_ref().map(|_| "** redacted **"),
                )
                .field("session_name", session_name)
                .finish(),
            Self::Static(keys) => f
                .debug_tuple("Static")
                .field(&keys.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// An access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl StaticKeys {
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        }
    }
}

impl fmt::Debug for StaticKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeys")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// The AWS partition a region belongs to: the first part of every ARN in it,
/// named in kebab case (`aws-us-gov`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::Display)]
#[strum(serialize_all = "kebab-case")]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
    AwsIso,
    #[strum(serialize = "aws-iso-b")]
    AwsIsoB,
}

impl Partition {
    /// The partition of a region name: `aws-cn` for `cn-*`, `aws-us-gov` for
    /// `us-gov-*`, `aws-iso` for `us-iso-*`, `aws-iso-b` for `us-isob-*`, else `aws`.
    pub fn of(region: &str) -> Self {
        if region.starts_with("cn-") {
            Self::AwsCn
        } else if region.starts_with("us-gov-") {
            Self::AwsUsGov
        } else if region.starts_with("us-isob-") {
            Self::AwsIsoB
        } else if region.starts_with("us-iso-") {
            Self::AwsIso
        } else {
            Self::Aws
        }
    }
}

/// `arn:{partition}:iam::{account}:role/{role_name}`.
pub fn role_arn(partition: Partition, account: &AccountId, role_name: &str) -> String {
    format!("arn:{partition}:iam::{account}:role/{role_name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partition_follows_the_region_prefix() {
        for (region, partition) in [
            ("us-east-1", "aws"),
            ("eu-west-3", "aws"),
            ("cn-north-1", "aws-cn"),
            ("cn-northwest-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
        ] {
            assert_eq!(Partition::of(region).to_string(), partition, "{region}");
        }
    }

    #[test]
    fn the_role_arn_names_partition_account_and_role() {
        let account = AccountId::parse("210987654321").unwrap();
        assert_eq!(
            role_arn(Partition::of("us-gov-east-1"), &account, "DrsCacheReader"),
            "arn:aws-us-gov:iam::210987654321:role/DrsCacheReader"
        );
        assert_eq!(
            role_arn(Partition::Aws, &account, "r"),
            "arn:aws:iam::210987654321:role/r"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let account = AccountId::parse("210987654321").unwrap();
        let keys = Credentials::Static(HashMap::from([(
            account,
            StaticKeys::new("AKIDEXAMPLE", "very-secret"),
        )]));
        let shown = format!("{keys:?}");
        assert!(!shown.contains("very-secret") && !shown.contains("AKIDEXAMPLE"));
        let role = Credentials::AssumeRole {
            role_name: "r".into(),
            external_id: Some("shared-secret".into()),
            session_name: "s".into(),
        };
        assert!(!format!("{role:?}").contains("shared-secret"));
    }
}
