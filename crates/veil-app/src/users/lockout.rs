//! Lock-outs with exponential back-off after failed logins, per account and per client address.
//!
//! Each [`Throttle`] counts failures in a sliding window; reaching its threshold locks the subject for
//! `first_lock`, doubling with every further lock-out up to `max_lock`. A successful login clears the account's
//! counter (never the address's, so one good account cannot launder an address's failures). Lock-out history is
//! forgotten after a day without failures.
//!
//! Counters live in the database (`login_failure`), keyed by an HMAC of the username or address under the keyring's
//! `mfa` key, so the table holds neither and several servers on one PostgreSQL database share them. The account
//! key is the *username as typed*, whether or not it exists, so an unknown username is locked out exactly like a
//! known one and a lock-out reveals nothing about which accounts exist.

use std::net::IpAddr;

use veil_store::LoginFailureRow;

use crate::error::AppResult;
use crate::Veil;

/// How failures of one kind of subject are counted and punished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// `account` or `address` (the `scope` column).
    pub scope: &'static str,
    /// Failures within `window_ms` that trigger a lock-out.
    pub threshold: i64,
    /// The counting window.
    pub window_ms: i64,
    /// The first lock-out's length; each further one doubles it.
    pub first_lock_ms: i64,
    /// The longest lock-out.
    pub max_lock_ms: i64,
}

const MINUTE_MS: i64 = 60 * 1000;
/// Lock-out history is forgotten after this long without a failure.
pub const HISTORY_MS: i64 = 24 * 60 * MINUTE_MS;

/// Per account (username as typed): 5 failures in 15 minutes lock it for 1, 2, 4 … minutes, at most an hour.
pub const ACCOUNT_THROTTLE: Throttle = Throttle {
    scope: "account",
    threshold: 5,
    window_ms: 15 * MINUTE_MS,
    first_lock_ms: MINUTE_MS,
    max_lock_ms: 60 * MINUTE_MS,
};

/// Per client address (an IPv4 address or an IPv6 /64): 20 failures in 15 minutes, same back-off.
pub const ADDRESS_THROTTLE: Throttle = Throttle {
    scope: "address",
    threshold: 20,
    window_ms: 15 * MINUTE_MS,
    first_lock_ms: MINUTE_MS,
    max_lock_ms: 60 * MINUTE_MS,
};

impl Throttle {
    /// The length of the `lockouts`-th lock-out (1-based).
    pub fn lock_length_ms(&self, lockouts: i64) -> i64 {
        let doublings = (lockouts - 1).clamp(0, 30) as u32;
        self.first_lock_ms
            .saturating_mul(1i64 << doublings)
            .min(self.max_lock_ms)
    }

    /// The counter after one more failure at `now`.
    pub fn after_failure(&self, previous: Option<&LoginFailureRow>, now: i64) -> LoginFailureRow {
        let mut row = match previous {
            Some(previous) => previous.clone(),
            None => LoginFailureRow {
                failures: 0,
                window_start: now,
                lockouts: 0,
                locked_until: None,
                last_failure_at: now,
                revision: 0,
            },
        };
        if now - row.last_failure_at >= HISTORY_MS {
            row.lockouts = 0;
        }
        if now - row.window_start >= self.window_ms {
            row.failures = 0;
            row.window_start = now;
        }
        row.failures += 1;
        row.last_failure_at = now;
        if row.failures >= self.threshold {
            row.lockouts += 1;
            row.locked_until = Some(now + self.lock_length_ms(row.lockouts));
            row.failures = 0;
            row.window_start = now;
        }
        row.revision += 1;
        row
    }
}

/// How long `row` stays locked after `now`, in ms, if it is locked.
pub fn remaining_lock_ms(row: &LoginFailureRow, now: i64) -> Option<i64> {
    row.locked_until
        .filter(|until| *until > now)
        .map(|until| until - now)
}

/// The address a client is counted under: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64 network, since one
/// host usually has a whole /64 to pick addresses from.
pub fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
        },
    }
}

/// A counter subject: which throttle and the keyed hash of the username or address.
pub(crate) type Subject = (Throttle, Vec<u8>);

impl Veil {
    /// The longest remaining lock-out among `subjects`, in ms.
    pub(crate) async fn lock_remaining(
        &self,
        subjects: &[Subject],
        now: i64,
    ) -> AppResult<Option<i64>> {
        let mut longest = None;
        for (throttle, subject) in subjects {
            if let Some(row) = self.store().login_failure(throttle.scope, subject).await? {
                if let Some(remaining) = remaining_lock_ms(&row, now) {
                    longest = Some(longest.unwrap_or(0).max(remaining));
                }
            }
        }
        Ok(longest)
    }

    /// Counts one failure against each subject (compare-and-swap, retried when another server wrote first).
    pub(crate) async fn record_failures(&self, subjects: &[Subject], now: i64) -> AppResult<()> {
        for (throttle, subject) in subjects {
            for _ in 0..16 {
                let previous = self.store().login_failure(throttle.scope, subject).await?;
                let next = throttle.after_failure(previous.as_ref(), now);
                if self
                    .store()
                    .put_login_failure(
                        throttle.scope,
                        subject,
                        &next,
                        previous.as_ref().map(|row| row.revision),
                    )
                    .await?
                {
                    if next.locked_until.is_some()
                        && previous.as_ref().map(|row| row.lockouts) != Some(next.lockouts)
                    {
                        tracing::warn!(
                            scope = throttle.scope,
                            lockouts = next.lockouts,
                            "login locked out"
                        );
                    }
                    break;
                }
            }
        }
        self.store()
            .prune_login_failures(now - HISTORY_MS, now)
            .await?;
        Ok(())
    }

    /// Clears an account's counter after a successful login.
    pub(crate) async fn clear_failures(&self, subject: &Subject) -> AppResult<()> {
        self.store()
            .clear_login_failure(subject.0.scope, &subject.1)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_an_hour() {
        let throttle = ACCOUNT_THROTTLE;
        let lengths: Vec<i64> = (1..=9)
            .map(|n| throttle.lock_length_ms(n) / MINUTE_MS)
            .collect();
        assert_eq!(lengths, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(throttle.lock_length_ms(1_000), 60 * MINUTE_MS);
    }

    #[test]
    fn fifth_failure_locks_and_next_lock_is_longer() {
        let throttle = ACCOUNT_THROTTLE;
        let mut now = 1_000_000;
        let mut row = None;
        for _ in 0..4 {
            let next = throttle.after_failure(row.as_ref(), now);
            assert_eq!(next.locked_until, None);
            row = Some(next);
            now += 1_000;
        }
        let locked = throttle.after_failure(row.as_ref(), now);
        assert_eq!(locked.locked_until, Some(now + MINUTE_MS));
        assert_eq!(
            remaining_lock_ms(&locked, now + 1_000),
            Some(MINUTE_MS - 1_000)
        );
        assert_eq!(remaining_lock_ms(&locked, now + MINUTE_MS), None);
        // After the lock expires, five more failures lock for two minutes.
        let mut row = locked;
        now += MINUTE_MS;
        for _ in 0..5 {
            row = throttle.after_failure(Some(&row), now);
            now += 1_000;
        }
        assert_eq!(row.lockouts, 2);
        assert_eq!(row.locked_until, Some(now - 1_000 + 2 * MINUTE_MS));
    }

    #[test]
    fn failures_outside_the_window_and_old_history_are_forgotten() {
        let throttle = ACCOUNT_THROTTLE;
        let mut row = throttle.after_failure(None, 0);
        for _ in 0..3 {
            row = throttle.after_failure(Some(&row), 0);
        }
        assert_eq!(row.failures, 4);
        let later = throttle.after_failure(Some(&row), throttle.window_ms);
        assert_eq!(later.failures, 1);
        let mut locked = LoginFailureRow {
            lockouts: 5,
            ..later
        };
        locked.last_failure_at = 0;
        let next_day = throttle.after_failure(Some(&locked), HISTORY_MS);
        assert_eq!(next_day.lockouts, 0);
    }

    #[test]
    fn addresses_are_grouped_sensibly() {
        for (address, key) in [
            ("203.0.113.7", "203.0.113.7"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ] {
            assert_eq!(address_key(address.parse().unwrap()), key);
        }
    }
}
