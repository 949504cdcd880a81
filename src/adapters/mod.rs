//! One module per real system. AWS SDK types stay inside these modules.

pub mod drs;
pub mod dynamodb;
pub mod ec2;
pub mod embedded;
pub mod iam;
pub mod local_queue;
pub mod sfn;
pub mod upstream;
