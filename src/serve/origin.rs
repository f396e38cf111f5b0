//! Where clients reach this server, for the absolute links nora writes
//! (the token realm of a challenge, upload `Location`s behind a proxy).

use std::sync::Arc;

use http::HeaderMap;

#[derive(Debug, Clone)]
pub struct Origin {
    /// `[server] public_url`: what a proxy in front of nora answers as.
    public_url: Option<Arc<str>>,
    /// `https` when nora terminates TLS itself, else `http`.
    scheme: &'static str,
}

impl Origin {
    pub fn new(public_url: Option<&str>, scheme: &'static str) -> Self {
        Origin {
            public_url: public_url.map(|u| Arc::from(u.trim_end_matches('/'))),
            scheme,
        }
    }

    /// The configured public URL, if any (without a trailing `/`).
    pub fn public_url(&self) -> Option<&str> {
        self.public_url.as_deref()
    }

    /// The base of absolute links: the public URL when one is set, else the
    /// host the client used.
    pub fn base(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.public_url {
            return u.to_string();
        }
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            // Only what a host[:port] is made of: the value lands inside a
            // quoted challenge parameter.
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            })
            .unwrap_or("localhost");
        format!("{}://{host}", self.scheme)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::HOST, host.parse().unwrap());
        h
    }

    #[test]
    fn the_base_takes_only_a_host_from_the_host_header() {
        let plain = Origin::new(None, "http");
        let base = |host: &str| plain.base(&with_host(host));
        assert_eq!(base("reg.example:4000"), "http://reg.example:4000");
        assert_eq!(base("[::1]:4000"), "http://[::1]:4000");
        assert_eq!(base("evil.com\"x"), "http://localhost");
        assert_eq!(base("a,b"), "http://localhost");
        assert_eq!(plain.base(&HeaderMap::new()), "http://localhost");
    }

    #[test]
    fn tls_and_a_public_url_shape_the_base() {
        let h = with_host("reg.example:4000");
        assert_eq!(
            Origin::new(None, "https").base(&h),
            "https://reg.example:4000"
        );
        let public = Origin::new(Some("https://registry.example.com/"), "http");
        assert_eq!(public.base(&h), "https://registry.example.com");
        assert_eq!(public.public_url(), Some("https://registry.example.com"));
    }
}
