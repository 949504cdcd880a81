//! AWS as the refresh side reads it: DRS, EC2 and IAM clients for every
//! account and region, built on first use and kept for the life of the
//! process (`clients`), the `DrsSource`, `Ec2Source` and `IamSource`
//! implementations over them (`drs`, `ec2`, `iam`), how each account is reached
//! (`access`), and how failures are classified and retried (`errors`,
//! `retry`). AWS SDK types stay inside this module.

mod access;
mod clients;
mod drs;
mod ec2;
mod errors;
mod iam;
mod retry;

pub use access::{AccountAccess, Credentials, StaticKeys};
pub use clients::{
    AwsUpstream, CachedClients, PageSizes, SetupError, UpstreamConfig, https_client,
};
pub use retry::{CallTimeouts, RetrySettings};
