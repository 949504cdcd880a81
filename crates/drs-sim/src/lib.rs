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
//!   changes some servers (with their launches' jobs and recovery instances,
//!   and subnets' free addresses) and nothing else.
//! - **Faults**: latency, throttling, server errors (rates and next-N), DRS not
//!   initialised, access denied, disabled regions; all changeable at run time,
//!   through [`SimHandle`] or `PUT /_sim/config`.
//! - **Live fleet**: [`SimHandle::apply`] applies a [`Change`] (replication
//!   progress, a stall, its recovery, a launch, a new subnet, security group or
//!   instance profile, a source network's status, a recovery instance's
//!   failback) to one fleet or account and returns the [`LiveEvent`]:
//!   the EventBridge event AWS would deliver, naming what is now served.
//!   [`Life`] chooses a deterministic sequence of changes from a seed.
//!
//! - **Launches**: jobs and recovery instances derive from the servers' last
//!   launches (a launch change included) and a few past drills.
//!
//! Operations: DRS `DescribeSourceServers`, `DescribeJobs`,
//! `DescribeRecoveryInstances`, `DescribeSourceNetworks`, `ListStagingAccounts`; EC2
//! `DescribeSubnets`, `DescribeSecurityGroups`, `DescribeInstanceTypes`; IAM
//! `ListInstanceProfiles`.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use drs_sim::{SimConfig, Simulator};
//!
//! let sim = Simulator::start(([127, 0, 0, 1], 0).into(), SimConfig::default()).await?;
//! // SDK clients get this as their endpoint URL.
//! let endpoint_url = sim.endpoint();
//! # drop(endpoint_url);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! The `drs-sim` binary (feature `cli`, on by default) serves the same
//! simulator as a process; a library user can depend on the crate with
//! `default-features = false` and leave the command line out.

mod admin;
mod aws;
mod caller;
mod catalog;
mod clock;
mod config;
mod data;
mod drs;
mod ec2;
mod exchange;
mod faults;
mod fleet;
mod iam;
mod ids;
mod launches;
mod life;
mod live;
mod network;
mod page;
mod profiles;
mod query;
mod rng;
mod server;
mod service;
mod source_networks;
mod xml;

pub use config::{
    AccountConfig, AccountMatch, ConfigError, DEFAULT_ACCOUNT, Faults, FleetConfig, FleetParams,
    FleetSize, MAX_PAGE_SIZE, RegionalSelector, ServerSet, SimConfig, SourceNetworkSet,
    default_account,
};
pub use ids::{AccountId, InvalidId, Region};
pub use life::Life;
pub use live::{Change, LiveError, LiveEvent};
pub use server::{Hold, SimHandle, Simulator};
pub use service::{RequestCounts, Service};

/// The simulated "now" of every fleet's first generation, 2024-06-01T00:00:00Z,
/// in seconds since the Unix epoch: the dates the simulator serves (jobs'
/// creation times among them) count from it, whatever the wall clock says.
pub const EPOCH_UNIX_SECS: i64 = clock::EPOCH;
