//! Sizes, times and digests as people read them.

use std::time::{SystemTime, UNIX_EPOCH};

/// `1.5 MiB`; exact bytes when `human` is off (scripts reading a table).
pub fn size(bytes: u64, human: bool) -> String {
    if !human {
        return bytes.to_string();
    }
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `3 hours ago` on a terminal; RFC 3339 UTC elsewhere.
pub fn time(unix: u64, human: bool) -> String {
    if !human {
        return rfc3339(unix);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let ago = now.saturating_sub(unix);
    let (n, unit) = match ago {
        0..60 => return "just now".into(),
        60..3600 => (ago / 60, "minute"),
        3600..86400 => (ago / 3600, "hour"),
        86400..2_592_000 => (ago / 86400, "day"),
        2_592_000..31_536_000 => (ago / 2_592_000, "month"),
        _ => (ago / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

pub fn rfc3339(unix: u64) -> String {
    chrono::DateTime::from_timestamp(unix as i64, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// `sha256:0123456789ab`: enough to tell images apart in a table.
pub fn short_digest(digest: &str) -> &str {
    let end = digest.find(':').map(|i| i + 13).unwrap_or(12);
    digest.get(..end).unwrap_or(digest)
}

/// `s` as it may be printed to a terminal: control characters (escape
/// sequences, line breaks) and bidirectional overrides written as `\u{..}`.
/// Labels, platforms and artifact types come from whoever pushed the image;
/// printed raw, an escape sequence could rewrite the screen or the
/// terminal's title, and a line break could forge a row.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return s.into();
    }
    s.chars()
        .map(|c| {
            if unsafe_char(c) {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_drives_a_terminal() {
        assert_eq!(printable("linux/amd64"), "linux/amd64");
        assert_eq!(printable("amd\x1b[2J"), "amd\\u{1b}[2J");
        assert_eq!(printable("a\nb\u{7}\u{9b}"), "a\\u{a}b\\u{7}\\u{9b}");
        assert_eq!(printable("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(printable("café ✓"), "café ✓");
    }

    #[test]
    fn sizes_and_digests() {
        assert_eq!(size(512, true), "512 B");
        assert_eq!(size(1536, true), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024, true), "3.0 GiB");
        assert_eq!(size(1536, false), "1536");
        assert_eq!(
            short_digest(&format!("sha256:{}", "ab".repeat(32))),
            "sha256:abababababab"
        );
        assert_eq!(short_digest("x"), "x");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
