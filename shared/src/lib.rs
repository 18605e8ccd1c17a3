//! The library every connector-events Lambda shares: the instance model, Cloud
//! Elements configuration parsing, the element catalog, DynamoDB state,
//! encryption of secrets, authentication and the outbound network guard.

pub mod api;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod elements;
pub mod error;
pub mod events;
#[cfg(test)]
mod fuzz_targets;
pub mod ids;
pub mod instance_cache;
pub mod javadate;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod netguard;
pub mod oauth1;
pub mod outbound;
pub mod polling;
pub mod request_auth;
pub mod settings;
pub mod signing;
pub mod spool;
pub mod store;
pub mod webhook;
