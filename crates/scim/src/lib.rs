//! SCIM 2.0 (RFC 7643, RFC 7644) as rollcall speaks it, with no I/O: the HTTP surface in
//! `rollcall-web` reads requests, calls these functions and stores through the engine.
//!
//! - [`schema`]: the attribute tables of the User resource (core, enterprise, rollcall's own
//!   extension under a configurable URN) and the discovery documents made from them.
//! - [`resource`]: a stored user as a SCIM resource, and a SCIM resource as an incoming record.
//! - [`filter`]: the RFC 7644 §3.4.2.2 filter language, parsed and evaluated.
//! - [`patch`]: RFC 7644 §3.5.2 PATCH operations applied to a resource, with the lenient
//!   forms Microsoft Entra ID and Okta send.
//! - [`error`]: SCIM error bodies.

pub mod error;
pub mod filter;
pub mod patch;
pub mod resource;
pub mod schema;
