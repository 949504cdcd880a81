//! One module per real system. AWS SDK types stay inside these modules.

pub mod aws;
pub mod dynamodb;
#[cfg(feature = "local")]
pub mod embedded;
#[cfg(feature = "local")]
pub mod local_queue;
pub mod sfn;
