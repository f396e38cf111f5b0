//! When a recurring job runs next: a fixed interval or a cron expression.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
pub enum When {
    Every(Duration),
    Cron(Box<croner::Cron>),
}

impl When {
    /// "6h", "30m" (humantime) or a five-field cron expression, evaluated in UTC.
    pub fn parse(s: &str) -> Result<When, String> {
        if let Ok(d) = humantime::parse_duration(s) {
            if d.is_zero() {
                return Err("the interval must be longer than zero".into());
            }
            return Ok(When::Every(d));
        }
        croner::Cron::from_str(s)
            .map(|c| When::Cron(Box::new(c)))
            .map_err(|e| {
                format!(
                    "expected an interval like \"6h\" or a cron expression like \"0 3 * * *\": {e}"
                )
            })
    }

    /// The first run strictly after `after`.
    pub fn next(&self, after: SystemTime) -> Option<SystemTime> {
        match self {
            When::Every(d) => after.checked_add(*d),
            When::Cron(c) => {
                let t: chrono::DateTime<chrono::Utc> = after.into();
                c.find_next_occurrence(&t, false).ok().map(SystemTime::from)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_cron() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let w = When::parse("6h").unwrap();
        assert_eq!(w.next(t0), Some(t0 + Duration::from_secs(6 * 3600)));
        let w = When::parse("0 3 * * *").unwrap();
        let next = w.next(t0).unwrap();
        let secs = next
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(secs % 86400, 3 * 3600, "03:00 UTC");
        assert!(next > t0 && next <= t0 + Duration::from_secs(86400));
        assert!(When::parse("soon").is_err());
        assert!(When::parse("0s").is_err());
    }
}
