//! The integration tests: one binary, so the crate links once and the moto and
//! workflow harnesses start once per run. One module per area; harnesses and
//! helpers in `support`.

mod support;

mod capacity;
mod cfn_moto;
mod cfn_template;
mod change_feed;
mod cli;
mod cost;
mod demand;
mod deploy;
mod drill_data;
mod event_rules;
mod fleet;
mod leases;
mod linked_calls;
mod local_mode;
mod member_account;
mod monitoring;
mod plan;
mod reader;
mod reader_encoding;
mod reader_extension;
mod reader_inputs;
mod reader_lambda;
mod refresh;
mod refresh_accounts;
mod refresh_trigger;
mod refresher_lambda;
mod regions;
mod serve;
mod simulator;
mod statemachine;
mod store_dynamodb;
mod store_embedded;
mod upstream_aws;
mod workflow;
