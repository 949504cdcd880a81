//! Helpers shared by the black-box tests. Each test binary uses a part of them.
#![allow(dead_code)]

pub mod moto;
pub mod plan;
pub mod proxy;
pub mod reader;
pub mod refresh;
pub mod store_contract;
pub mod workflow;
