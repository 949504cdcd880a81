//! The contract between the refresh workflow's steps, in one place: what starts
//! a run (the execution input), the targets and batches the planner hands the
//! refresher, which upstream fetch a target needs, what each batch reports and
//! what the run's end totals, and where plans and batch results are kept
//! between the steps; and the same steps run in process for the local mode. The planner (`plan`) and the refresher (`refresh`) both speak these
//! types and never each other's internals.

mod batch;
mod fetch;
mod input;
mod result;
mod run;
mod store;
mod target;

pub use batch::{Batch, MAX_BATCH_TARGETS, RunRef, pack};
pub use fetch::Fetch;
pub use input::{
    ExecutionInput, InputError, MAX_INLINE_TARGETS, TriggerInput, TriggerKind, WarmRequest,
    from_json,
};
pub use result::{
    BatchResult, Counts, FailureRecord, PlanLocation, PlanOutput, SummarizeInput, SummarizeRequest,
};
pub use run::run_in_process;
pub use store::{PlanStore, RunLedger, RunRecords};
pub use target::TargetSpec;
