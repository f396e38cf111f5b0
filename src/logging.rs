//! tracing set-up: text or JSON lines on stderr, level from the config.

use std::io::{self, Write};

use tracing_subscriber::EnvFilter;

use crate::config::Log;

pub fn init(log: &Log) {
    let filter = EnvFilter::try_new(&log.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    let result = if log.format == "json" {
        builder
            .with_writer(|| Lossy(io::stderr()))
            .json()
            .flatten_event(true)
            .try_init()
    } else {
        builder
            .with_writer(|| OneLine(Lossy(io::stderr())))
            .try_init()
    };
    // Already initialised (tests call this more than once): keep the first.
    let _ = result;
}

/// Text lines quote field values as they are, so a value holding a line
/// break (a scope from a query string, say) would start a line of its own
/// that reads like another event: an anonymous client could write a fake
/// audit line. The formatter hands over each event whole, in one write;
/// every line break in it but the last is written escaped.
struct OneLine<W: Write>(W);

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        if !body.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            return self.0.write_all(buf).map(|()| buf.len());
        }
        self.0.write_all(&escape_breaks(body))?;
        if body.len() < buf.len() {
            self.0.write_all(b"\n")?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A log writer that drops what it cannot write. When the reader of the log
/// goes away (a closed pipe, a log shipper that died), tracing reports the
/// failed write on stderr with a macro that panics on that same error: every
/// request that logged panicked its task, and the server, still listening,
/// answered nothing. Requests matter more than their log lines.
pub struct Lossy<W: Write>(pub W);

impl<W: Write> Write for Lossy<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.0.write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.0.flush();
        Ok(())
    }
}

fn escape_breaks(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader went away.
    struct Gone;

    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_log_nobody_reads_is_dropped_quietly() {
        let mut out = OneLine(Lossy(Gone));
        out.write_all(b"INFO a line\n").unwrap();
        out.write_all(b"INFO two\nlines\n").unwrap();
        out.flush().unwrap();
    }

    #[test]
    fn an_event_stays_on_one_line() {
        let mut out = OneLine(Vec::new());
        out.write_all(b"INFO audit: login scopes=repository:a:pull\n2026 INFO forged\n")
            .unwrap();
        out.write_all(b"INFO plain line\n").unwrap();
        out.write_all(b"no newline\r").unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "INFO audit: login scopes=repository:a:pull\\n2026 INFO forged\nINFO plain line\nno newline\\r"
        );
    }
}
