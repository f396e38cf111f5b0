//! Brute-force protection: failed logins are counted per client address.
//! From the 3rd failure within a window, each answer is delayed; from the
//! `limit`th (`[auth] failed_login_limit`, default 10; 0 turns this off),
//! the address is refused (429) until the window ends. A success does not
//! clear the count: with one account of their own, a guesser would otherwise
//! reset it between guesses at another's password. Behind a reverse proxy
//! every client has the proxy's address: set a higher limit there.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(300);
const SLOW_AFTER: u32 = 3;
const DELAY: Duration = Duration::from_millis(500);
/// Addresses remembered at most; the oldest windows go first.
const MAX_TRACKED: usize = 100_000;

pub struct Throttle {
    limit: u32,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Throttle {
    pub fn new(limit: u32) -> Throttle {
        Throttle {
            limit,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Err(seconds to wait) when `ip` is blocked.
    pub fn check(&self, ip: Option<IpAddr>) -> Result<(), u64> {
        let Some(ip) = ip.filter(|_| self.limit > 0) else {
            return Ok(());
        };
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // One reading of the clock: a second one, a moment later, could
        // be past the window, and the wait left would go below zero.
        match map.get(&ip).map(|(n, since)| (*n, since.elapsed())) {
            Some((n, elapsed)) if n >= self.limit && elapsed < WINDOW => {
                Err(WINDOW.saturating_sub(elapsed).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Records a failure; returns how long to hold the answer back.
    pub fn failed(&self, ip: Option<IpAddr>) -> Duration {
        let Some(ip) = ip.filter(|_| self.limit > 0) else {
            return Duration::ZERO;
        };
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 = entry.0.saturating_add(1);
        if entry.0 >= SLOW_AFTER {
            DELAY
        } else {
            Duration::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slows_then_blocks() {
        let t = Throttle::new(10);
        let ip = Some("10.0.0.1".parse().unwrap());
        let other = Some("10.0.0.2".parse().unwrap());
        assert_eq!(t.failed(ip), Duration::ZERO);
        assert_eq!(t.failed(ip), Duration::ZERO);
        assert_eq!(t.failed(ip), DELAY);
        for _ in 3..10 {
            assert!(t.check(ip).is_ok());
            t.failed(ip);
        }
        assert!(t.check(ip).is_err());
        assert!(t.check(other).is_ok(), "per address");
        assert!(t.check(None).is_ok());
        let off = Throttle::new(0);
        for _ in 0..20 {
            assert_eq!(off.failed(ip), Duration::ZERO);
        }
        assert!(off.check(ip).is_ok());
    }
}
