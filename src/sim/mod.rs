//! A simulated AWS fleet: one HTTP server that the unmodified `aws-sdk-drs`,
//! `aws-sdk-ec2` and `aws-sdk-iam` clients talk to (`endpoint_url` pointing at
//! it), serving deterministic, realistic data per account and region, with
//! pagination and fault injection. No emulator for DRS exists, and moto's EC2
//! and IAM never paginate.
//!
//! - **Routing**: the SigV4 credential scope names the service (`drs`: REST-JSON
//!   by path; `ec2`, `iam`: query protocol by `Action`) and the region.
//!   Signatures are not verified.
//! - **Caller's account**: the access key of the credential scope, looked up in
//!   [`SimConfig::access_keys`], else asked of STS at [`SimConfig::sts_endpoint`]
//!   (a moto server; once per key), else [`SimConfig::default_account`].
//! - **Data**: a pure function of `(seed, account, region, generation)`; the same
//!   configuration always yields byte-identical bodies. Bumping a generation
//!   changes some servers (and subnets' free addresses) and nothing else.
//! - **Faults**: latency, throttling, server errors (rates and next-N), DRS not
//!   initialised, access denied, disabled regions; all changeable at run time,
//!   through [`SimHandle`] or `PUT /_sim/config`.
//!
//! Operations: DRS `DescribeSourceServers`, `ListStagingAccounts`; EC2
//! `DescribeSubnets`, `DescribeSecurityGroups`, `DescribeInstanceTypes`; IAM
//! `ListInstanceProfiles`.

mod admin;
mod aws;
mod caller;
mod catalog;
mod clock;
mod config;
mod data;
mod drs;
mod ec2;
mod faults;
mod fleet;
mod iam;
mod network;
mod page;
mod profiles;
mod query;
mod rng;
mod server;
mod xml;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use config::{
    AccountMatch, ConfigError, DEFAULT_ACCOUNT, Faults, FleetConfig, FleetParams, FleetSize,
    MAX_PAGE_SIZE, RegionalSelector, SimConfig, default_account,
};
pub use server::{Hold, RequestCounts, SimHandle, Simulator};

/// A simulated service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Drs,
    Ec2,
    Iam,
}

impl Service {
    /// The service's SigV4 signing name: `drs`, `ec2`, `iam`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drs => "drs",
            Self::Ec2 => "ec2",
            Self::Iam => "iam",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
