//! `--token SECRET` on a command line is readable by every user of the
//! machine (`ps`, `/proc/PID/cmdline`) for as long as the command runs. As
//! curl does for `-u user:password`, nora overwrites the value in its own
//! argument memory as soon as clap has copied it, so a `ps` taken after the
//! first milliseconds shows `--token ********`. `NORA_TOKEN` and
//! `nora login` stay the way to keep a token off the command line entirely.
//! A password in a `--url` (`http://user:pw@host`) is masked the same way:
//! the commands that use the URL refuse it, but `serve`, `backup` and the
//! others that ignore `--url` would otherwise run on with it in view.
//!
//! The original `argv` is only reachable where the C runtime hands it to
//! `.init_array` functions (glibc on Linux, as std itself reads it); on
//! other platforms this does nothing.

/// Flags whose value is a secret.
const SECRET_FLAGS: &[&[u8]] = &[b"--token"];

/// Flags whose value is a URL, which may hold a password.
const URL_FLAGS: &[&[u8]] = &[b"--url"];

/// Overwrites the password of `scheme://user:password@host…` in place.
fn mask_url_password(url: &mut [u8]) {
    let Some(start) = url.windows(3).position(|w| w == b"://").map(|i| i + 3) else {
        return;
    };
    let authority = &url[start..];
    let end = authority
        .iter()
        .position(|b| b"/?#".contains(b))
        .unwrap_or(authority.len());
    let Some(at) = authority[..end].iter().rposition(|&b| b == b'@') else {
        return;
    };
    if let Some(colon) = authority[..at].iter().position(|&b| b == b':') {
        url[start + colon + 1..start + at].fill(b'*');
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod imp {
    use std::ffi::{CStr, c_char, c_int};
    use std::sync::atomic::{AtomicIsize, AtomicPtr, Ordering};

    static ARGC: AtomicIsize = AtomicIsize::new(0);
    static ARGV: AtomicPtr<*mut c_char> = AtomicPtr::new(std::ptr::null_mut());

    #[used]
    #[unsafe(link_section = ".init_array")]
    static CAPTURE: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = capture;

    extern "C" fn capture(argc: c_int, argv: *mut *mut c_char, _env: *mut *mut c_char) {
        ARGC.store(argc as isize, Ordering::Relaxed);
        ARGV.store(argv, Ordering::Relaxed);
    }

    pub fn hide(secret_flags: &[&[u8]], url_flags: &[&[u8]]) {
        let argc = ARGC.load(Ordering::Relaxed);
        let argv = ARGV.load(Ordering::Relaxed);
        if argv.is_null() {
            return;
        }
        let mut value_next = false;
        let mut url_next = false;
        for i in 1..argc {
            // SAFETY: the C runtime's argv holds argc valid pointers to
            // NUL-terminated strings, owned by the process and writable
            // (C's main may modify them); nothing else reads them once
            // std::env::args has been copied by clap.
            unsafe {
                let arg = *argv.offset(i);
                if arg.is_null() {
                    return;
                }
                let len = CStr::from_ptr(arg).to_bytes().len();
                let bytes = std::slice::from_raw_parts_mut(arg.cast::<u8>(), len);
                if value_next {
                    bytes.fill(b'*');
                    value_next = false;
                } else if url_next {
                    super::mask_url_password(bytes);
                    url_next = false;
                } else if bytes == b"--" {
                    return;
                } else if let Some(flag) = secret_flags.iter().find(|f| bytes.starts_with(f)) {
                    match bytes.get(flag.len()) {
                        None => value_next = true,
                        Some(b'=') => bytes[flag.len() + 1..].fill(b'*'),
                        Some(_) => {}
                    }
                } else if let Some(flag) = url_flags.iter().find(|f| bytes.starts_with(f)) {
                    match bytes.get(flag.len()) {
                        None => url_next = true,
                        Some(b'=') => super::mask_url_password(&mut bytes[flag.len() + 1..]),
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

/// Overwrites the values of secret flags in the process's argument memory.
/// Call once the arguments have been parsed (clap holds its own copy).
pub fn hide_secret_args() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    imp::hide(SECRET_FLAGS, URL_FLAGS);
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (SECRET_FLAGS, URL_FLAGS);
}

#[cfg(test)]
mod tests {
    use super::mask_url_password;

    #[test]
    fn only_a_urls_password_is_masked() {
        for (url, want) in [
            ("http://ci:s3cret@reg:4000/x", "http://ci:******@reg:4000/x"),
            ("https://ci:p@ss@reg", "https://ci:****@reg"),
            ("http://ci@reg:4000", "http://ci@reg:4000"),
            ("http://reg:4000/a@b", "http://reg:4000/a@b"),
            ("http://reg:4000?u=a:b@c", "http://reg:4000?u=a:b@c"),
            ("reg:4000", "reg:4000"),
        ] {
            let mut bytes = url.as_bytes().to_vec();
            mask_url_password(&mut bytes);
            assert_eq!(String::from_utf8(bytes).unwrap(), want, "{url}");
        }
    }
}
