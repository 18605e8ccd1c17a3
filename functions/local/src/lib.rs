//! The local stack: everything `make run` needs besides the handlers, which
//! are the very functions Lambda runs.

pub mod admin;
pub mod http_server;
pub mod moto;
pub mod queues;
pub mod stack;
pub mod tables;
pub mod triggers;
