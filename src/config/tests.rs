use super::*;

fn write(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn defaults_without_a_file() {
    let c = Config::load_with(None, |_| None).unwrap();
    assert_eq!(c.listen_addr(), "127.0.0.1:4000");
    assert_eq!(c.storage.path, PathBuf::from("nora-data"));
}

#[test]
fn env_overrides_file() {
    let f = write("[server]\nport = 5000\nhost = \"0.0.0.0\"\n");
    let c = Config::load_with(Some(f.path()), |k| {
        (k == "NORA_PORT").then(|| "6000".into())
    })
    .unwrap();
    assert_eq!(c.listen_addr(), "0.0.0.0:6000");
}

#[test]
fn unknown_key_names_key_and_file() {
    let f = write("[server]\nprot = 5000\n");
    let e = Config::load_with(Some(f.path()), |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 2, server.prot: unknown field")
            && e.contains(&f.path().display().to_string()),
        "{e}"
    );
}

#[test]
fn bad_values_are_errors() {
    let f = write("[log]\nformat = \"xml\"\n");
    let e = Config::load_with(Some(f.path()), |_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("log.format"), "{e}");
    let e = Config::load_with(None, |k| (k == "NORA_PORT").then(|| "99999".into()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("NORA_PORT") && e.contains("server.port"), "{e}");
    let f = write("[storage]\nupload_ttl = \"soon\"\n");
    assert!(Config::load_with(Some(f.path()), |_| None).is_err());
}

#[test]
fn s3_prefixes_that_stores_would_read_another_way_are_refused() {
    for (prefix, why) in [
        ("/nora", "double /"),
        ("a//b", "double /"),
        ("../other", ".."),
        ("team/./nora", ".."),
        ("a/..", ".."),
        ("a\\u0001b", "control"),
    ] {
        let f = write(&format!(
            "[storage]\nmode = \"s3\"\n[storage.s3]\nbucket = \"b\"\nprefix = \"{prefix}\"\n"
        ));
        let e = Config::load_with(Some(f.path()), |_| None)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("storage.s3.prefix") && e.contains(why),
            "{prefix}: {e}"
        );
    }
    for fine in ["", "nora", "team/nora/", "a.b/..c/v1.2"] {
        assert_eq!(check_s3_prefix(fine), Ok(()), "{fine}");
    }
}

#[test]
fn tls_needs_a_certificate_and_its_key() {
    let f = write("[server]\ntls_cert = \"/etc/nora/cert.pem\"\n");
    let e = Config::load_with(Some(f.path()), |_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("server.tls_key") && e.contains("required with server.tls_cert"),
        "{e}"
    );
    let c = Config::load_with(Some(f.path()), |k| {
        (k == "NORA_TLS_KEY").then(|| "/etc/nora/key.pem".into())
    })
    .unwrap();
    assert_eq!(c.server.tls_key, Some(PathBuf::from("/etc/nora/key.pem")));
    assert_eq!(c.server.scheme(), "https");
    assert_eq!(Config::default().server.scheme(), "http");
}

/// A misspelt level used to pass as a target name and log nothing.
#[test]
fn log_levels_are_levels() {
    for bad in ["warning", "verbose", "", " ", "nora=loud", "=info", "info,"] {
        let e = Config::load_with(None, |k| (k == "NORA_LOG_LEVEL").then(|| bad.into()));
        let e = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("log.level"), "{bad:?}: {e}");
    }
    for good in ["info", "WARN", "off", "nora=debug,warn", "nora::audit=info"] {
        let c = Config::load_with(None, |k| (k == "NORA_LOG_LEVEL").then(|| good.into()));
        assert!(c.is_ok(), "{good:?}");
    }
}
