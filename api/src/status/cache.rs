//! The answer cache and the fetch locks: an answer is kept until its nextUpdate
//! and at most `max_cache_age` after it was fetched, never past either; and a
//! wave of requests that miss together waits for one fetch, not one each.

use std::sync::Arc;

use super::{Answer, StatusChecker};

/// Answers kept at most; the cache starts afresh beyond.
const ANSWER_CACHE_ENTRIES: usize = 262_144;

/// Holds the fetch lock of a key, and forgets the lock when the last holder is done.
pub(super) struct InFlight<'a> {
    checker: &'a StatusChecker,
    key: Vec<u8>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut f = self.checker.fetching.lock().expect("fetch locks");
        if f.get(&self.key).is_some_and(|m| Arc::strong_count(m) <= 2) {
            f.remove(&self.key);
        }
    }
}

impl StatusChecker {
    /// Waits for the fetch lock of `key` (a certificate's hash, or a CRL's URL):
    /// one fetch at a time per key.
    pub(super) async fn in_flight(&self, key: Vec<u8>) -> InFlight<'_> {
        let lock = self
            .fetching
            .lock()
            .expect("fetch locks")
            .entry(key.clone())
            .or_default()
            .clone();
        InFlight {
            checker: self,
            key,
            _guard: lock.lock_owned().await,
        }
    }

    /// The answer kept for the certificate `key`, if it is still current at `now`:
    /// not from the future (beyond the skew), before its nextUpdate, and younger
    /// than `max_cache_age`.
    pub(super) fn cached(&self, key: &[u8; 32], now: i64) -> Option<Arc<Answer>> {
        let answers = self.answers.lock().expect("status cache");
        let a = answers.get(key)?;
        (a.this_update <= now + self.policy.skew
            && a.next_update.is_some_and(|n| now <= n)
            && now - a.fetched_at < self.policy.max_cache_age)
            .then(|| a.clone())
    }

    /// Keeps `answer` for the certificate `key` when it has a nextUpdate (one
    /// without is used once), never replacing a newer answer with an older one.
    pub(super) fn keep(&self, key: [u8; 32], answer: &Arc<Answer>) {
        if answer.next_update.is_some() {
            let mut answers = self.answers.lock().expect("status cache");
            if answers.len() >= ANSWER_CACHE_ENTRIES {
                answers.clear();
            }
            // A newer answer is never replaced by an older one.
            if answers
                .get(&key)
                .is_none_or(|held| held.this_update <= answer.this_update)
            {
                answers.insert(key, answer.clone());
            }
        }
    }
}
