//! Refresh requests as Step Functions executions.
