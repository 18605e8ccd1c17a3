//! The OpenAPI 3.1 description of the whole API, served without
//! authentication at `GET /elements/api-v2/openapi.json`. A copy lives in
//! `docs/openapi.json`; `tests/openapi.rs` keeps both from drifting: every
//! route the routers serve is described, every described route is served,
//! and the integration tests' answers validate against its schemas.

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// The path below `/elements/api-v2` where it is served.
pub const PATH: &str = "openapi.json";
