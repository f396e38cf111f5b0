//! A TOML error as one line that names its key: toml renders an error over
//! several lines that quote the file, and names only the last part of a key
//! (unknown field `prot`), not where it sits (`server.prot`).

/// "line 2, server.prot: unknown field `prot`, expected one of ..."; only
/// the message when toml gives no place, and only the line when the place
/// is not a `key = value` line or a section header.
pub fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    let Some(before) = e.span().and_then(|span| text.get(..span.start)) else {
        return message;
    };
    let number = before.matches('\n').count() + 1;
    let this = text.lines().nth(number - 1).unwrap_or("");
    let section = text
        .lines()
        .take(number - 1)
        .filter_map(header)
        .last()
        .unwrap_or_default();
    let key = match header(this) {
        Some(name) => Some(name),
        None => this.split_once('=').map(|(k, _)| {
            let k = k.trim().trim_matches('"');
            if section.is_empty() {
                k.to_string()
            } else {
                format!("{section}.{k}")
            }
        }),
    };
    match key {
        Some(key) if !key.is_empty() => format!("line {number}, {key}: {message}"),
        _ => format!("line {number}: {message}"),
    }
}

/// The name in a `[section]` or `[[array]]` header line; None for any
/// other line, such as an array's `["a", "b"],` inside a value.
fn header(line: &str) -> Option<String> {
    let line = line.split('#').next().unwrap_or("").trim();
    let (open, close) = if line.starts_with("[[") {
        ("[[", "]]")
    } else {
        ("[", "]")
    };
    let name = line.strip_prefix(open)?.strip_suffix(close)?.trim();
    let key_like = |c: char| c.is_ascii_alphanumeric() || "_-. \"".contains(c);
    (!name.is_empty() && name.chars().all(key_like)).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::describe;

    fn err(text: &str) -> String {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Server {
            port: Option<u16>,
        }
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct File {
            server: Option<Server>,
            name: Option<String>,
        }
        let e = toml::from_str::<File>(text).unwrap_err();
        describe(text, &e)
    }

    #[test]
    fn names_the_key_with_its_section_and_line() {
        let e = err("name = \"a\"\n\n[server]\nprot = 5000\n");
        assert!(
            e.starts_with("line 4, server.prot: unknown field `prot`"),
            "{e}"
        );
        let e = err("[server]\nport = \"x\"\n");
        assert!(e.starts_with("line 2, server.port: invalid type"), "{e}");
        let e = err("name = 5\n");
        assert!(e.starts_with("line 1, name: invalid type"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn an_unknown_section_is_named_by_its_header() {
        let e = err("[sever]\nport = 1\n");
        assert!(e.contains("sever") && e.starts_with("line 1"), "{e}");
    }

    #[test]
    fn an_array_in_a_value_is_not_a_section() {
        let e = err("[server]\nport = [\n  [1],\n]\n");
        assert!(e.starts_with("line 2, server.port: invalid type"), "{e}");
        let e = err("[[server]]  # one\nport = 1\n");
        assert!(e.starts_with("line 1, server:"), "{e}");
    }

    #[test]
    fn bad_syntax_gives_the_line() {
        let e = err("[server]\nport = = 1\n");
        assert!(e.starts_with("line 2"), "{e}");
        let e = err("[server\n");
        assert!(e.starts_with("line 1"), "{e}");
    }
}
