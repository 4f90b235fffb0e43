//! Per-source rate limiting for the relay: a token bucket per client address. Behind a reverse proxy
//! every connection comes from the proxy, so with `relay.trust_proxy` the address is taken from
//! `X-Forwarded-For` — but only on connections from loopback, where the proxy runs. Pure: the time
//! is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Beyond this many tracked addresses, idle ones are forgotten so memory stays small.
const MAX_TRACKED: usize = 10_000;

/// Where a request comes from. With `trust_proxy`, a loopback peer is the proxy and the client is
/// the last `X-Forwarded-For` entry — the one the proxy itself added, which a client cannot forge
/// (Caddy replaces the header; nginx's `$proxy_add_x_forwarded_for` appends to it).
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trust_proxy: bool) -> IpAddr {
    if !(trust_proxy && peer.is_loopback()) {
        return peer;
    }
    forwarded_for.and_then(|h| h.rsplit(',').next()).and_then(|last| last.trim().parse().ok()).unwrap_or(peer)
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// `per_minute` requests a minute per address, in bursts of up to a minute's worth.
pub struct RateLimiter {
    per_minute: u32,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter { per_minute: per_minute.max(1), buckets: HashMap::new() }
    }

    /// Takes one request from `source`'s budget, or says how long until one is free.
    pub fn check(&mut self, source: IpAddr, now: Instant) -> Result<(), Duration> {
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(&source) {
            self.forget_idle(now, capacity / per_second);
        }
        let bucket = self.buckets.entry(source).or_insert(Bucket { tokens: capacity, at: now });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refilled).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }

    /// Drops buckets that have refilled completely (idle for `full_after` seconds): they would start full anyway.
    fn forget_idle(&mut self, now: Instant, full_after: f64) {
        self.buckets.retain(|_, b| now.saturating_duration_since(b.at).as_secs_f64() < full_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_counts_only_when_trusted_and_from_the_local_proxy() {
        let xff = Some("6.6.6.6, 41.90.1.2");
        assert_eq!(client_address(ip("127.0.0.1"), xff, true), ip("41.90.1.2"), "the entry the proxy added");
        assert_eq!(client_address(ip("127.0.0.1"), xff, false), ip("127.0.0.1"));
        assert_eq!(client_address(ip("41.90.1.2"), Some("1.2.3.4"), true), ip("41.90.1.2"), "a direct client cannot pick its address");
        assert_eq!(client_address(ip("::1"), Some(" 2001:db8::1 "), true), ip("2001:db8::1"));
        assert_eq!(client_address(ip("127.0.0.1"), Some("garbage"), true), ip("127.0.0.1"));
        assert_eq!(client_address(ip("127.0.0.1"), None, true), ip("127.0.0.1"));
    }

    #[test]
    fn each_source_gets_its_own_budget_which_refills_over_time() {
        let mut limiter = RateLimiter::new(60);
        let t0 = Instant::now();
        for _ in 0..60 {
            limiter.check(ip("10.0.0.1"), t0).unwrap();
        }
        let wait = limiter.check(ip("10.0.0.1"), t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO, "{wait:?}");
        limiter.check(ip("10.0.0.2"), t0).expect("another source is not affected");
        limiter.check(ip("10.0.0.1"), t0 + Duration::from_secs(1)).expect("one more after a second");
        assert!(limiter.check(ip("10.0.0.1"), t0 + Duration::from_secs(1)).is_err());
        for _ in 0..60 {
            limiter.check(ip("10.0.0.1"), t0 + Duration::from_secs(120)).unwrap();
        }
    }

    #[test]
    fn idle_sources_are_forgotten_when_many_are_tracked() {
        let mut limiter = RateLimiter::new(60);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED as u32 {
            limiter.check(IpAddr::from(i.to_be_bytes()), t0).unwrap();
        }
        limiter.check(ip("10.9.9.9"), t0 + Duration::from_secs(61)).unwrap();
        assert_eq!(limiter.buckets.len(), 1);
    }
}
