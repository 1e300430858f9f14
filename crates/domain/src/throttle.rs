//! Sign-in throttling (docs/SECURITY.md, "Sign-in protection"): slow a guesser down without
//! locking the account's owner out. The caller passes the time, so this stays pure.
//!
//! - **Back-off per account and address.** Each (account, address) pair may fail
//!   `free_failures` times; each failure after that makes the pair wait twice as long as the
//!   one before (`first_delay`, then 2×, 4×, … up to `max_delay`). A success clears the pair.
//!   Guesses from one address never slow the owner down at another.
//! - **A budget per address.** An address may fail `address_failures` times, and the budget
//!   refills evenly over `address_refill`: one address cannot spray guesses over many
//!   accounts. An account that has signed in from an address is exempt from that address's
//!   budget, so someone behind the same NAT or proxy cannot lock out the people who work
//!   there.
//! - **Reserved before checked.** [`Throttle::begin`] counts the attempt as a failure at
//!   once, before the caller checks the password; [`Throttle::succeeded`] and
//!   [`Throttle::cancelled`] take it back. Attempts sent all at once therefore cannot all
//!   reach the password check.
//!
//! Memory is bounded whatever the callers send: a pair is remembered as a 16-byte digest of
//! the account and the address, each table keeps at most `capacity` entries and forgets the
//! least recently used one first. IPv6 addresses count per /64, the block one customer
//! network gets.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use hashlink::LruCache;
use sha2::{Digest, Sha256};

/// What the throttle allows; [`Policy::default`] gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Failures of one account from one address before the back-off starts.
    pub free_failures: u32,
    /// The wait after the first failure beyond the free ones; it doubles with each further one.
    pub first_delay: Duration,
    /// The longest wait.
    pub max_delay: Duration,
    /// A pair's failures are forgotten this long after its last failure.
    pub forget_after: Duration,
    /// Failures one address may have before it must wait (accounts known there excepted).
    pub address_failures: u32,
    /// How long an emptied address budget takes to refill completely.
    pub address_refill: Duration,
    /// Pairs, and addresses, remembered at most.
    pub capacity: usize,
}

pub const DEFAULT_FREE_FAILURES: u32 = 5;
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_ADDRESS_FAILURES: u32 = 30;

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            free_failures: DEFAULT_FREE_FAILURES,
            first_delay: Duration::from_secs(1),
            max_delay: DEFAULT_MAX_DELAY,
            forget_after: Duration::from_secs(24 * 3600),
            address_failures: DEFAULT_ADDRESS_FAILURES,
            address_refill: Duration::from_secs(3600),
            capacity: 65_536,
        }
    }
}

impl Policy {
    /// The wait after `beyond` failures past the free ones (1 → `first_delay`).
    fn delay(&self, beyond: u32) -> Duration {
        let factor = 1u32
            .checked_shl(beyond.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first_delay
            .checked_mul(factor)
            .map_or(self.max_delay, |d| d.min(self.max_delay))
    }

    /// How often one failure comes back to an address's budget.
    fn refill_every(&self) -> Duration {
        (self.address_refill / self.address_failures.max(1)).max(Duration::from_nanos(1))
    }
}

/// Why an attempt was refused, and how long until the next one may be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This account from this address failed too often lately.
    BackingOff { retry_after: Duration },
    /// This address used up its failures.
    AddressBudget { retry_after: Duration },
}

impl Refusal {
    pub fn retry_after(&self) -> Duration {
        match self {
            Refusal::BackingOff { retry_after } | Refusal::AddressBudget { retry_after } => {
                *retry_after
            }
        }
    }
}

/// An attempt that [`Throttle::begin`] let through and already counted as a failure; hand
/// it back to [`Throttle::failed`], [`Throttle::succeeded`] or [`Throttle::cancelled`].
#[must_use = "an attempt is settled as failed, succeeded or cancelled"]
#[derive(Debug)]
pub struct Attempt {
    pair: PairKey,
    network: IpAddr,
    /// Whether a failure was taken from the address's budget.
    from_budget: bool,
    /// The pair's wait before this attempt, and the one this attempt set, if it set one.
    block_before: Option<Instant>,
    block_set: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PairKey([u8; 16]);

impl PairKey {
    fn new(account: &str, network: IpAddr) -> PairKey {
        let mut digest = Sha256::new();
        digest.update((account.len() as u64).to_le_bytes());
        digest.update(account.as_bytes());
        match network {
            IpAddr::V4(v4) => digest.update(v4.octets()),
            IpAddr::V6(v6) => digest.update(v6.octets()),
        }
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest.finalize()[..16]);
        PairKey(key)
    }
}

#[derive(Debug)]
struct Pair {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
    /// The account signed in from this address before.
    known: bool,
}

impl Pair {
    /// Count one more failure; the wait it starts, if it starts one.
    fn charge(&mut self, policy: &Policy, now: Instant) -> Option<Instant> {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if self.failures <= policy.free_failures {
            return None;
        }
        let until = now + policy.delay(self.failures - policy.free_failures);
        self.blocked_until = Some(until);
        Some(until)
    }
}

#[derive(Debug)]
struct Budget {
    left: u32,
    refilled_at: Instant,
}

impl Budget {
    fn refill(&mut self, policy: &Policy, now: Instant) {
        let every = policy.refill_every();
        let elapsed = now.saturating_duration_since(self.refilled_at);
        let earned = u32::try_from(elapsed.as_nanos() / every.as_nanos()).unwrap_or(u32::MAX);
        if self.left.saturating_add(earned) >= policy.address_failures {
            self.left = policy.address_failures;
            self.refilled_at = now;
        } else {
            self.left += earned;
            self.refilled_at += every * earned;
        }
    }
}

/// The throttle's state: see the module's documentation.
pub struct Throttle {
    policy: Policy,
    pairs: LruCache<PairKey, Pair>,
    budgets: LruCache<IpAddr, Budget>,
}

impl Throttle {
    pub fn new(policy: Policy) -> Throttle {
        let capacity = policy.capacity.max(1);
        Throttle {
            pairs: LruCache::new(capacity),
            budgets: LruCache::new(capacity),
            policy,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Pairs and addresses remembered now.
    pub fn remembered(&self) -> (usize, usize) {
        (self.pairs.len(), self.budgets.len())
    }

    /// Let an attempt of `account` (normalised by the caller, and prefixed with its kind)
    /// from `address` through, counted as a failure until it is settled; or refuse it.
    pub fn begin(
        &mut self,
        account: &str,
        address: IpAddr,
        now: Instant,
    ) -> Result<Attempt, Refusal> {
        let network = network(address);
        let key = PairKey::new(account, network);
        let mut known = false;
        let mut block_before = None;
        if let Some(pair) = self.pairs.get_mut(&key) {
            if now.saturating_duration_since(pair.last_failure) >= self.policy.forget_after {
                pair.failures = 0;
                pair.blocked_until = None;
            }
            if let Some(until) = pair.blocked_until
                && now < until
            {
                return Err(Refusal::BackingOff {
                    retry_after: until - now,
                });
            }
            known = pair.known;
            block_before = pair.blocked_until;
        }
        if !known {
            self.take_from_budget(network, now)?;
        }
        let block_set = match self.pairs.get_mut(&key) {
            Some(pair) => pair.charge(&self.policy, now),
            None => {
                let mut pair = Pair {
                    failures: 0,
                    last_failure: now,
                    blocked_until: None,
                    known: false,
                };
                let block_set = pair.charge(&self.policy, now);
                self.pairs.insert(key, pair);
                block_set
            }
        };
        Ok(Attempt {
            pair: key,
            network,
            from_budget: !known,
            block_before,
            block_set,
        })
    }

    fn take_from_budget(&mut self, network: IpAddr, now: Instant) -> Result<(), Refusal> {
        let policy = &self.policy;
        match self.budgets.get_mut(&network) {
            Some(budget) => {
                budget.refill(policy, now);
                if budget.left == 0 {
                    let waited = now.saturating_duration_since(budget.refilled_at);
                    return Err(Refusal::AddressBudget {
                        retry_after: policy.refill_every().saturating_sub(waited),
                    });
                }
                budget.left -= 1;
            }
            None => {
                self.budgets.insert(
                    network,
                    Budget {
                        left: policy.address_failures.saturating_sub(1),
                        refilled_at: now,
                    },
                );
            }
        }
        Ok(())
    }

    fn refund_budget(&mut self, attempt: &Attempt) {
        if attempt.from_budget
            && let Some(budget) = self.budgets.peek_mut(&attempt.network)
        {
            budget.left = (budget.left + 1).min(self.policy.address_failures);
        }
    }

    /// The password was wrong (or the account unknown): the failure stays counted.
    pub fn failed(&mut self, attempt: Attempt) {
        drop(attempt);
    }

    /// The password was right: the pair starts afresh and is known from now on, and the
    /// address gets its failure back.
    pub fn succeeded(&mut self, attempt: Attempt, now: Instant) {
        self.refund_budget(&attempt);
        self.pairs.insert(
            attempt.pair,
            Pair {
                failures: 0,
                last_failure: now,
                blocked_until: None,
                known: true,
            },
        );
    }

    /// The password was not checked (the server was busy): the attempt is taken back.
    pub fn cancelled(&mut self, attempt: Attempt) {
        self.refund_budget(&attempt);
        if let Some(pair) = self.pairs.peek_mut(&attempt.pair) {
            pair.failures = pair.failures.saturating_sub(1);
            if attempt.block_set.is_some() && pair.blocked_until == attempt.block_set {
                pair.blocked_until = attempt.block_before;
            }
        }
    }
}

/// The network an address counts for: an IPv4 address itself (also when written as
/// IPv4-mapped IPv6), an IPv6 address's /64.
pub fn network(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// Characters of a caller-chosen value (an email, a login) that a log line shows.
pub const LOGGED_CHARS: usize = 64;

/// `text` as a log line may show it: at most [`LOGGED_CHARS`] characters, then `…` and the
/// full length, so that a caller cannot make the log grow with what they send.
pub fn for_log(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(LOGGED_CHARS) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes)", &text[..cut], text.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "admin:owner@acme.example";
    const B: &str = "admin:people@acme.example";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn policy() -> Policy {
        Policy {
            free_failures: 2,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            forget_after: Duration::from_secs(3600),
            address_failures: 100,
            address_refill: Duration::from_secs(100),
            capacity: 1000,
        }
    }

    /// What `begin` answered: `Ok` or the refusal's kind and whole seconds to wait.
    type Answer = Result<(), (&'static str, u64)>;

    fn outcome(result: &Result<Attempt, Refusal>) -> Answer {
        match result {
            Ok(_) => Ok(()),
            Err(r @ Refusal::BackingOff { .. }) => Err(("back-off", r.retry_after().as_secs())),
            Err(r @ Refusal::AddressBudget { .. }) => Err(("budget", r.retry_after().as_secs())),
        }
    }

    #[test]
    fn the_wait_doubles_after_the_free_failures_up_to_the_longest() {
        let p = policy();
        // (failures beyond the free ones, wait)
        for (beyond, secs) in [
            (1, 1),
            (2, 2),
            (3, 4),
            (4, 8),
            (5, 8),
            (40, 8),
            (u32::MAX, 8),
        ] {
            assert_eq!(p.delay(beyond), Duration::from_secs(secs), "{beyond}");
        }
    }

    #[test]
    fn one_pair_backs_off_step_by_step() {
        let mut t = Throttle::new(policy());
        let start = Instant::now();
        // (seconds since the start, what begin answers); every attempt fails.
        let table: [(u64, Answer); 11] = [
            (0, Ok(())),                // free
            (0, Ok(())),                // free
            (0, Ok(())),                // beyond the free ones: wait 1 s from now
            (0, Err(("back-off", 1))),  // refused; refusals are not counted
            (1, Ok(())),                // wait 2 s
            (2, Err(("back-off", 1))),  //
            (3, Ok(())),                // wait 4 s
            (6, Err(("back-off", 1))),  //
            (7, Ok(())),                // wait 8 s, the longest
            (15, Ok(())),               // still 8 s
            (22, Err(("back-off", 1))), //
        ];
        for (n, (at, expected)) in table.into_iter().enumerate() {
            let result = t.begin(A, ip("192.0.2.1"), start + Duration::from_secs(at));
            assert_eq!(outcome(&result), expected, "row {n}");
            if let Ok(attempt) = result {
                t.failed(attempt);
            }
        }
    }

    #[test]
    fn guesses_from_one_address_do_not_slow_the_owner_elsewhere() {
        let mut t = Throttle::new(policy());
        let now = Instant::now();
        for _ in 0..3 {
            let attempt = t.begin(A, ip("192.0.2.1"), now).unwrap();
            t.failed(attempt);
        }
        // (account, address, allowed)
        let table = [
            (A, "192.0.2.1", false), // the guesser waits
            (A, "198.51.100.7", true),
            (B, "192.0.2.1", true),
        ];
        for (account, address, allowed) in table {
            let result = t.begin(account, ip(address), now);
            assert_eq!(result.is_ok(), allowed, "{account} from {address}");
            if let Ok(attempt) = result {
                t.succeeded(attempt, now);
            }
        }
    }

    #[test]
    fn attempts_at_once_are_counted_before_they_are_settled() {
        let mut t = Throttle::new(policy());
        let now = Instant::now();
        let results: Vec<_> = (0..200).map(|_| t.begin(A, ip("192.0.2.1"), now)).collect();
        let through = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(through, 3, "the free failures and the first step");
    }

    #[test]
    fn success_clears_the_pair_and_cancelling_takes_the_attempt_back() {
        let mut t = Throttle::new(policy());
        let start = Instant::now();
        let address = ip("192.0.2.1");
        // (seconds, settle as, whether another attempt is then let through at once)
        let table = [
            (0, "failed", true),
            (0, "cancelled", true), // not counted
            (0, "failed", true),    // the second, the last free one
            (0, "failed", false),   // beyond the free ones: wait 1 s
            (1, "succeeded", true), // starts afresh
            (1, "failed", true),
            (1, "failed", true),
            (1, "failed", false),
        ];
        for (n, (at, settle, allowed)) in table.into_iter().enumerate() {
            let now = start + Duration::from_secs(at);
            let attempt = t
                .begin(A, address, now)
                .unwrap_or_else(|r| panic!("row {n}: refused {r:?}"));
            match settle {
                "failed" => t.failed(attempt),
                "cancelled" => t.cancelled(attempt),
                _ => t.succeeded(attempt, now),
            }
            let next = t.begin(A, address, now);
            assert_eq!(next.is_ok(), allowed, "row {n}");
            if let Ok(attempt) = next {
                t.cancelled(attempt);
            }
        }
    }

    #[test]
    fn a_cancelled_attempt_that_started_the_wait_ends_it() {
        let mut t = Throttle::new(policy());
        let now = Instant::now();
        let address = ip("192.0.2.1");
        for _ in 0..2 {
            let attempt = t.begin(A, address, now).unwrap();
            t.failed(attempt);
        }
        let third = t.begin(A, address, now).unwrap();
        assert!(
            t.begin(A, address, now).is_err(),
            "the third started a wait"
        );
        t.cancelled(third);
        assert!(t.begin(A, address, now).is_ok(), "cancelled: no wait");
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_while() {
        let mut t = Throttle::new(policy());
        let start = Instant::now();
        let address = ip("192.0.2.1");
        for _ in 0..3 {
            let attempt = t.begin(A, address, start).unwrap();
            t.failed(attempt);
        }
        let later = start + Duration::from_secs(3600);
        for _ in 0..2 {
            let attempt = t.begin(A, address, later).unwrap();
            t.failed(attempt);
        }
        assert!(t.begin(A, address, later).is_ok(), "the free ones again");
    }

    #[test]
    fn an_address_has_a_budget_that_refills_over_time() {
        // Three failures, one back every 10 s.
        let mut t = Throttle::new(Policy {
            address_failures: 3,
            address_refill: Duration::from_secs(30),
            ..policy()
        });
        let start = Instant::now();
        let address = ip("192.0.2.1");
        // (seconds, account, what begin answers); each attempt fails.
        let table: [(u64, &str, Answer); 8] = [
            (0, "a", Ok(())),
            (0, "b", Ok(())),
            (0, "c", Ok(())),
            (0, "d", Err(("budget", 10))),
            (4, "d", Err(("budget", 6))),
            (10, "d", Ok(())),
            (10, "e", Err(("budget", 10))),
            (100, "e", Ok(())),
        ];
        for (n, (at, account, expected)) in table.into_iter().enumerate() {
            let result = t.begin(account, address, start + Duration::from_secs(at));
            assert_eq!(outcome(&result), expected, "row {n}");
            if let Ok(attempt) = result {
                t.failed(attempt);
            }
        }
        // Refilled completely after the quiet while, and no more than that.
        let later = start + Duration::from_secs(1000);
        let through = (0..10)
            .filter(|i| {
                t.begin(&format!("f{i}"), address, later)
                    .map(|a| t.failed(a))
                    .is_ok()
            })
            .count();
        assert_eq!(through, 3);
    }

    #[test]
    fn an_account_known_at_an_address_is_exempt_from_its_budget() {
        let mut t = Throttle::new(Policy {
            address_failures: 3,
            ..policy()
        });
        let now = Instant::now();
        let office = ip("192.0.2.1");
        let attempt = t.begin(A, office, now).unwrap();
        t.succeeded(attempt, now);
        for i in 0..3 {
            let attempt = t.begin(&format!("guess{i}"), office, now).unwrap();
            t.failed(attempt);
        }
        // (account, what begin answers)
        let table = [
            (B, Err(("budget", 33))),
            (A, Ok(())), // known there
        ];
        for (account, expected) in table {
            let result = t.begin(account, office, now);
            assert_eq!(outcome(&result), expected, "{account}");
            if let Ok(attempt) = result {
                t.succeeded(attempt, now);
            }
        }
        // A known account's attempts neither take from the budget nor give back to it.
        let attempt = t.begin(A, office, now).unwrap();
        t.succeeded(attempt, now);
        assert_eq!(t.budgets.peek(&office).unwrap().left, 0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        // (address, the network it counts for)
        let table = [
            ("192.0.2.1", "192.0.2.1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
            ("2001:db8:1:2:ffff::1", "2001:db8:1:2::"),
            ("2001:db8:1:3::1", "2001:db8:1:3::"),
            ("::1", "::"),
        ];
        for (address, expected) in table {
            assert_eq!(network(ip(address)), ip(expected), "{address}");
        }
        let mut t = Throttle::new(Policy {
            address_failures: 2,
            ..policy()
        });
        let now = Instant::now();
        for (n, address) in ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
            .into_iter()
            .enumerate()
        {
            let result = t.begin(&format!("x{n}"), ip(address), now);
            assert_eq!(result.is_ok(), n < 2, "{address}");
        }
    }

    #[test]
    fn memory_is_bounded_whatever_the_accounts_and_addresses() {
        let mut t = Throttle::new(Policy {
            capacity: 100,
            ..policy()
        });
        let now = Instant::now();
        let long = "x".repeat(64 * 1024);
        for i in 0..1000u32 {
            let address = IpAddr::from(std::net::Ipv4Addr::from(0xC000_0200u32 + i));
            let attempt = t.begin(&format!("{long}{i}"), address, now).unwrap();
            t.failed(attempt);
        }
        assert_eq!(t.remembered(), (100, 100));
        // The most recent pairs are the ones kept.
        let last = IpAddr::from(std::net::Ipv4Addr::from(0xC000_0200u32 + 999));
        let pair = PairKey::new(&format!("{long}999"), last);
        assert!(t.pairs.peek(&pair).is_some());
    }

    #[test]
    fn logs_show_a_shortened_value() {
        let long = "a".repeat(70_000);
        let shown = format!("{}… (70000 bytes)", "a".repeat(64));
        // (value, as logged)
        let table = [
            ("owner@acme.example", "owner@acme.example"),
            (&"b".repeat(64), &"b".repeat(64)),
            (&long, &shown),
            (&"é".repeat(65), &format!("{}… (130 bytes)", "é".repeat(64))),
        ];
        for (value, expected) in table {
            assert_eq!(for_log(value), *expected);
        }
    }
}
