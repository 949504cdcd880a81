//! One module per real system. AWS SDK types stay inside these modules.

pub mod dynamodb;
pub mod embedded;
pub mod local_queue;
pub mod sfn;
