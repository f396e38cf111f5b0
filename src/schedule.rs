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
            // Shorter, a job would run back to back, holding its lock.
            if d < Duration::from_secs(1) {
                return Err("the interval must be at least 1s".into());
            }
            return Ok(When::Every(d));
        }
        let expected =
            "expected an interval like \"6h\" or a five-field cron expression like \"0 3 * * *\"";
        let fields = s.split_whitespace().count();
        if fields != 5 {
            return Err(format!("{expected}: {fields} fields"));
        }
        let when = croner::Cron::from_str(s)
            .map(|c| When::Cron(Box::new(c)))
            .map_err(|e| format!("{expected}: {e}"))?;
        // "0 0 30 2 *" (February 30th) parses, and never comes.
        if when.next(SystemTime::now()).is_none() {
            return Err("this cron expression never matches a date".into());
        }
        Ok(when)
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
        for never in [
            "0s",
            "1ns",
            "500ms",
            "0 0 30 2 *",
            "* * * * * *",
            "0 * * * * * *",
            "0 3 * *",
        ] {
            assert!(When::parse(never).is_err(), "{never}");
        }
        assert!(When::parse("1s").is_ok() && When::parse("*/5 * * * *").is_ok());
    }
}
