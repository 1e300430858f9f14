//! The domain of rollcall: what a user record is, which values are valid, and how an incoming
//! batch of records from one source configuration is matched against the stored users of an
//! organisation and turned into a [`plan::Plan`].
//!
//! This crate is pure and synchronous: no I/O, no database, no HTTP. Storage hands the planner
//! the stored users that a batch's keys can reach ([`plan::Context`]); the planner decides.

pub mod admin_edit;
pub mod bulk_update;
pub mod client_address;
pub mod config;
#[doc(hidden)]
pub mod damage;
pub mod expr;
pub mod field;
pub mod ids;
pub mod mapping;
mod phone_valid;
pub mod plan;
pub mod record;
pub mod run;
pub mod run_filter;
pub mod setup;
pub mod throttle;
pub mod unchanged;
pub mod user;
pub mod values;

pub use field::FieldKey;
pub use ids::{ConfigId, OrgId, RunId, UserId};
pub use run::{Action, Counts, ErrorType, LogRow, RunStatus, Trigger};
pub use user::{Profile, StoredUser};
