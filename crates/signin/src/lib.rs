//! Sign-in protection shared by the admin surfaces (`POST /api/v1/session`,
//! `/admin/sign-in`) and SFTP password sign-in (docs/SECURITY.md, "Sign-in protection").
//!
//! [`Guard::sign_in`] is the one way a password is checked:
//! 1. the attempt is reserved with the throttle ([`rollcall_domain::throttle`]) before
//!    anything else, so attempts sent at once cannot all reach the check (429 beyond it);
//! 2. it is admitted only while fewer than `hashing + queue` checks run or wait (503 beyond:
//!    a password hash holds about 19 MiB while it runs);
//! 3. the account is looked up, and its password checked on the blocking pool, at most
//!    `hashing` at a time; an unknown account, or one without a password, is checked against
//!    a dummy hash of the same cost, so that the answer takes as long either way.
//!
//! SFTP key sign-in never comes here: keys cannot be guessed, and password failures must
//! not stop a customer's uploads.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rollcall_domain::throttle::{Policy, Throttle, for_log};
use rollcall_store::credentials;
use tokio::sync::Semaphore;

/// The longest account name that can exist: admin emails have at most 254 characters and
/// SFTP logins 64. Longer ones fail at once, unlooked-up and unhashed (which tells nothing:
/// no such account exists).
pub const MAX_ACCOUNT_BYTES: usize = 254;

/// How many attempts may wait for a hashing permit, per permit.
pub const QUEUE_PER_PERMIT: usize = 8;

#[derive(Clone, Debug)]
pub struct GuardSettings {
    pub policy: Policy,
    /// Password checks running at once.
    pub hashing: usize,
    /// Password checks that may wait for one of those.
    pub queue: usize,
}

impl GuardSettings {
    /// The throttle's `policy`, and `hashing` checks at once (0: one per core).
    pub fn new(policy: Policy, hashing: usize) -> GuardSettings {
        let hashing = if hashing == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            hashing
        };
        GuardSettings {
            policy,
            hashing,
            queue: hashing * QUEUE_PER_PERMIT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("cannot make the dummy password hash: {0}")]
    DummyHash(String),
}

/// Where a sign-in comes from; the metrics' and logs' `surface`, and the throttle's key
/// prefix (an SFTP login and an admin email never share a throttle entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Admin,
    Sftp,
}

impl Surface {
    pub fn label(self) -> &'static str {
        match self {
            Surface::Admin => "admin",
            Surface::Sftp => "sftp",
        }
    }
}

/// How a sign-in ended.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The password was right: the account found.
    SignedIn(T),
    /// Unknown account, no password, or a wrong one (the caller must not say which).
    Failed,
    /// The throttle refused the attempt unchecked; try again after `retry_after`.
    TooMany { retry_after: Duration },
    /// Too many password checks are running or waiting; try again in a moment.
    Busy,
}

/// The sign-in protection of one process: see the crate's documentation.
pub struct Guard {
    throttle: Mutex<Throttle>,
    hashing: Arc<Semaphore>,
    admitted: Semaphore,
    dummy_hash: String,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("hashing", &self.hashing.available_permits())
            .field("admitted", &self.admitted.available_permits())
            .finish_non_exhaustive()
    }
}

impl Guard {
    pub fn new(settings: GuardSettings) -> Result<Guard, GuardError> {
        // Only the cost of checking against it matters: it never signs anyone in.
        let dummy_hash = credentials::hash_password("no account has this password")
            .map_err(GuardError::DummyHash)?;
        Ok(Guard {
            throttle: Mutex::new(Throttle::new(settings.policy)),
            hashing: Arc::new(Semaphore::new(settings.hashing.max(1))),
            admitted: Semaphore::new(settings.hashing.max(1) + settings.queue),
            dummy_hash,
        })
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        // A panic while the lock was held cannot leave the tables half-updated in a way
        // that matters more than refusing every sign-in would.
        self.throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Check `password` for `account` (normalised by the caller: a lower-case email, a
    /// login) from `address`. `lookup` finds the account and its password hash; it runs only
    /// once the attempt is reserved and admitted.
    pub async fn sign_in<T, E>(
        &self,
        surface: Surface,
        account: &str,
        address: IpAddr,
        password: &str,
        lookup: impl Future<Output = Result<Option<(T, Option<String>)>, E>>,
    ) -> Result<Outcome<T>, E> {
        let shown = for_log(account);
        let key = format!("{}:{account}", surface.label());
        let surface = surface.label();
        let attempt = match self.throttle().begin(&key, address, Instant::now()) {
            Ok(attempt) => attempt,
            Err(refusal) => {
                let retry_after = refusal.retry_after();
                // Refusals cost nothing and come as fast as anyone sends them: counted in
                // the metrics, logged only at debug so that they cannot flood the log.
                tracing::debug!(surface, account = %shown, %address, retry_after_s = retry_after.as_secs(),
                    "sign-in refused unchecked: too many failures");
                count(surface, "throttled");
                return Ok(Outcome::TooMany { retry_after });
            }
        };
        let Ok(admitted) = self.admitted.try_acquire() else {
            self.throttle().cancelled(attempt);
            tracing::debug!(surface, account = %shown, %address,
                "sign-in refused unchecked: too many password checks at once");
            count(surface, "busy");
            return Ok(Outcome::Busy);
        };
        let (found, hash, reason) = if account.len() > MAX_ACCOUNT_BYTES {
            (None, None, "no such account (too long)")
        } else {
            match lookup.await {
                Ok(Some((found, Some(hash)))) => (Some(found), Some(hash), "wrong password"),
                Ok(Some((_, None))) => (None, Some(self.dummy_hash.clone()), "no password"),
                Ok(None) => (None, Some(self.dummy_hash.clone()), "no such account"),
                Err(e) => {
                    self.throttle().cancelled(attempt);
                    return Err(e);
                }
            }
        };
        let right = match hash {
            Some(hash) => self.check(password, hash).await,
            None => false,
        };
        drop(admitted);
        match found {
            Some(found) if right => {
                self.throttle().succeeded(attempt, Instant::now());
                count(surface, "signed_in");
                Ok(Outcome::SignedIn(found))
            }
            _ => {
                self.throttle().failed(attempt);
                tracing::warn!(surface, account = %shown, %address, reason, "sign-in failed");
                count(surface, "failed");
                Ok(Outcome::Failed)
            }
        }
    }

    /// Argon2 on the blocking pool, holding a hashing permit until the hash is done, even
    /// if the caller stops waiting (a client that hangs up cannot free a permit early).
    async fn check(&self, password: &str, hash: String) -> bool {
        let Ok(permit) = self.hashing.clone().acquire_owned().await else {
            return false; // never closed
        };
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let right = credentials::verify_password(&password, &hash);
            drop(permit);
            right
        })
        .await
        .unwrap_or(false)
    }
}

fn count(surface: &'static str, outcome: &'static str) {
    metrics::counter!("rollcall_sign_ins_total", "surface" => surface, "outcome" => outcome)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn guard(hashing: usize, queue: usize) -> Arc<Guard> {
        let policy = Policy {
            free_failures: 2,
            ..Policy::default()
        };
        Arc::new(
            Guard::new(GuardSettings {
                policy,
                hashing,
                queue,
            })
            .unwrap(),
        )
    }

    fn address(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    type Found = Result<Option<(&'static str, Option<String>)>, ()>;

    fn with_password(hash: &str) -> Found {
        Ok(Some(("found", Some(hash.to_owned()))))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_beyond_the_running_and_waiting_ones_are_busy() {
        let guard = guard(1, 1);
        let hash = credentials::hash_password("right password").unwrap();
        let release = Arc::new(tokio::sync::Notify::new());
        let tasks: Vec<_> = (0..6u8)
            .map(|n| {
                let (guard, hash, release) = (guard.clone(), hash.clone(), release.clone());
                tokio::spawn(async move {
                    let lookup = async move {
                        release.notified().await;
                        with_password(&hash)
                    };
                    let outcome = guard
                        .sign_in(Surface::Admin, "a@x", address(n), "right password", lookup)
                        .await;
                    matches!(outcome, Ok(Outcome::Busy))
                })
            })
            .collect();
        // Let every task reach its lookup or its refusal, then release the admitted ones.
        tokio::time::sleep(Duration::from_millis(200)).await;
        release.notify_waiters();
        let mut busy = 0;
        for task in tasks {
            busy += usize::from(task.await.unwrap());
        }
        assert_eq!(busy, 4, "one running and one waiting were admitted");
    }

    #[tokio::test]
    async fn outcomes_and_what_the_throttle_counts() {
        let guard = guard(1, 1);
        let hash = credentials::hash_password("right password").unwrap();
        let from = address(1);
        // (account, password, what lookup finds, outcome)
        let table: [(&str, &str, Found, &str); 6] = [
            ("a@x", "right password", with_password(&hash), "signed in"),
            ("a@x", "wrong", with_password(&hash), "failed"),
            ("b@x", "right password", Ok(None), "failed"),
            ("c@x", "right password", Ok(Some(("found", None))), "failed"),
            // A lookup that fails is not counted.
            ("d@x", "x", Err(()), "error"),
            ("d@x", "x", Err(()), "error"),
        ];
        for (account, password, found, expected) in table {
            let outcome = guard
                .sign_in(Surface::Admin, account, from, password, async { found })
                .await;
            let got = match outcome {
                Ok(Outcome::SignedIn(_)) => "signed in",
                Ok(Outcome::Failed) => "failed",
                Ok(Outcome::TooMany { .. }) => "too many",
                Ok(Outcome::Busy) => "busy",
                Err(()) => "error",
            };
            assert_eq!(got, expected, "{account} {password}");
        }
        // Two free failures per pair; errors took nothing.
        for expected in ["failed", "failed", "failed", "too many"] {
            let outcome = guard
                .sign_in(Surface::Admin, "d@x", from, "x", async { Found::Ok(None) })
                .await;
            let got = match outcome {
                Ok(Outcome::Failed) => "failed",
                Ok(Outcome::TooMany { .. }) => "too many",
                _ => "other",
            };
            assert_eq!(got, expected);
        }
        // The same name on the other surface is another account.
        let outcome = guard
            .sign_in(Surface::Sftp, "d@x", from, "x", async { Found::Ok(None) })
            .await;
        assert!(matches!(outcome, Ok(Outcome::Failed)));
    }

    #[tokio::test]
    async fn accounts_too_long_to_exist_fail_without_a_lookup() {
        let guard = guard(1, 1);
        let long = "a".repeat(MAX_ACCOUNT_BYTES + 1);
        let outcome = guard
            .sign_in(Surface::Admin, &long, address(1), "x", async {
                panic!("looked up");
                #[allow(unreachable_code)]
                Found::Ok(None)
            })
            .await;
        assert!(matches!(outcome, Ok(Outcome::Failed)));
    }
}
