//! Process limits a server needs raised.

/// Raises the soft limit on open files to the hard one, as Go programs (and
/// so distribution) do at start. Every connection and every blob being read
/// holds a descriptor; the soft limit of 1,024 that services usually start
/// with would turn a few hundred parallel pulls into refused connections,
/// while the hard limit is commonly 500 times that. Returns the limits
/// (before, after) when it changed them.
pub fn raise_open_files() -> Option<(libc::rlim_t, libc::rlim_t)> {
    let mut lim = open_files()?;
    if lim.rlim_cur >= lim.rlim_max {
        return None;
    }
    let before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: setrlimit only reads the struct. It refuses (and nothing
    // changes) when the hard limit is above what the kernel allows.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return None;
    }
    Some((before, lim.rlim_max))
}

/// The soft limit on open files: what the process may open now.
pub fn open_files_limit() -> Option<libc::rlim_t> {
    open_files().map(|l| l.rlim_cur)
}

fn open_files() -> Option<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the one struct it is given.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim)
}
