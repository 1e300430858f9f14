//! The lookups that hot paths make by a unique key, each with the index that must answer it.
//!
//! Each is written so that only its key's unique index (or primary key) matches every
//! condition: no `ORDER BY`, and no condition that a partial index's predicate also matches.
//! PostgreSQL, planning a table it has no statistics for (a first sync, autovacuum off or not
//! yet run), estimates every index alike; given the choice it walked the organisation's SCIM
//! page index for `userName eq` and filtered 20,000 users per lookup.
//!
//! The texts here are the ones the store runs (both backends; the direct SQLite path binds
//! the same text in its numbered form). `crates/sync/tests/plans.rs` asks a freshly loaded,
//! never analysed PostgreSQL database how it would run each, and SQLite too.

use crate::scim::IndexedColumn;
use crate::users::{
    CONTEXT_KEYS, SIEVE_SQL, by_unique_key_sql, foreign_keys_sql, users_by_keys_sql,
};

/// A query a hot path makes, with what must answer it.
#[derive(Clone, Debug)]
pub struct PointLookup {
    /// What makes it (for messages).
    pub name: String,
    /// The SQL, with `$n` placeholders.
    pub sql: String,
    /// What each `$n` stands for, in order.
    pub params: Vec<LookupParam>,
    pub answered_by: AnsweredBy,
}

/// What must answer a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnsweredBy {
    /// Probes of this unique index (or primary key): no other index, no sequential scan.
    Unique(&'static str),
    /// Every user a configuration manages (the sieve): a scan of the organisation's users is
    /// right, but not through the SCIM page index, and their managers are found by primary key
    /// or by hashing, never by scanning the table again for each user.
    ManagedUsers,
}

/// What a lookup's parameter stands for, for a test to fill in from stored data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LookupParam {
    /// The organisation's id.
    Org,
    /// This column (text) of one of the organisation's users.
    User(&'static str),
    /// The id of a configuration of the organisation.
    Config,
    /// The id of one of its runs.
    Run,
    /// An hour (epoch milliseconds, BIGINT).
    Hour,
    /// The digest of a SCIM token.
    TokenDigest,
}

/// The unique index (or primary key) of a key column of `users`, as PostgreSQL names it.
fn users_index(column: &str) -> &'static str {
    match column {
        "id" => "users_pkey",
        "external_id" => "users_external_id",
        "username_norm" => "users_username",
        "employee_id" => "users_employee_id",
        "email_norm" => "users_email",
        "phone_mobile_e164" => "users_phone_mobile",
        _ => "(no unique index)",
    }
}

/// Every lookup by a unique key that SCIM requests and runs make per record, and the sieve.
pub fn point_lookups() -> Vec<PointLookup> {
    let mut all = Vec::new();
    for attribute in IndexedColumn::ALL {
        let column = attribute.column();
        all.push(PointLookup {
            name: format!("SCIM user by {attribute:?}"),
            sql: by_unique_key_sql(column),
            params: vec![LookupParam::Org, LookupParam::User(column)],
            answered_by: AnsweredBy::Unique(users_index(column)),
        });
    }
    // The context of a SCIM write: a key or a few per column. Files' chunks of 500 keys are
    // left to the planner, which may rightly read the whole organisation instead.
    for column in CONTEXT_KEYS {
        for n in [1, 4] {
            all.push(PointLookup {
                name: format!("context: users by {n} {column}"),
                sql: users_by_keys_sql(column, n),
                params: std::iter::once(LookupParam::Org)
                    .chain(std::iter::repeat_n(LookupParam::User(column), n))
                    .collect(),
                answered_by: AnsweredBy::Unique(users_index(column)),
            });
        }
    }
    for column in ["email_norm", "phone_mobile_e164"] {
        all.push(PointLookup {
            name: format!("context: {column} held in other organisations"),
            sql: foreign_keys_sql(column, 1),
            params: vec![LookupParam::Org, LookupParam::User(column)],
            answered_by: AnsweredBy::Unique(users_index(column)),
        });
    }
    all.push(PointLookup {
        name: "SCIM write: the hour's activity run".into(),
        sql: crate::scim_writes::SELECT_ACTIVITY_RUN.into(),
        params: vec![LookupParam::Config, LookupParam::Hour, LookupParam::Org],
        answered_by: AnsweredBy::Unique("sync_runs_activity_hour"),
    });
    all.push(PointLookup {
        name: "SCIM write: the activity run's last log row".into(),
        sql: crate::scim_writes::LAST_LOG_SEQ.into(),
        params: vec![LookupParam::Run],
        answered_by: AnsweredBy::Unique("sync_log_rows_pkey"),
    });
    all.push(PointLookup {
        name: "SCIM token".into(),
        sql: crate::operator::SELECT_TOKEN.into(),
        params: vec![LookupParam::TokenDigest],
        answered_by: AnsweredBy::Unique("scim_tokens_digest"),
    });
    all.push(PointLookup {
        name: "the sieve: a configuration's users and their managers".into(),
        sql: SIEVE_SQL.into(),
        params: vec![LookupParam::Org, LookupParam::Config],
        answered_by: AnsweredBy::ManagedUsers,
    });
    all
}
