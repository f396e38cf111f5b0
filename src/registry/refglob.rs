//! Globs on `REPOSITORY:TAG`, as retention rules and `nora images ls` take
//! them. The pattern splits at its last `:` into a repository glob and a tag
//! glob, matched separately, so `**:dev-*` means "tags dev-* of every
//! repository". In the repository glob `*` stays within one path component
//! and `**` crosses `/` (`team/**`, `**/cache`). A pattern without `:`
//! is a repository glob and matches every tag.

use globset::{GlobBuilder, GlobMatcher};

#[derive(Debug, Clone)]
pub struct RefGlob {
    repository: GlobMatcher,
    tag: Option<GlobMatcher>,
}

impl RefGlob {
    pub fn new(pattern: &str) -> Result<RefGlob, String> {
        let (repo, tag) = match pattern.rsplit_once(':') {
            Some((r, t)) => (r, Some(t)),
            None => (pattern, None),
        };
        let compile = |p: &str| {
            GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| format!("bad glob {pattern:?}: {}", e.kind()))
        };
        if repo.is_empty() || tag == Some("") {
            return Err(format!(
                "bad glob {pattern:?}: expected REPOSITORY:TAG globs, e.g. \"team/**:dev-*\""
            ));
        }
        // A glob no name can match is a typo, and a protect rule with a typo
        // protects nothing: refuse it. Repository names are lower case, one
        // `:` parts them from tags, and neither has spaces or empty parts.
        let never = if pattern.chars().any(char::is_whitespace) {
            Some("names have no spaces")
        } else if repo.contains(':') {
            Some("one ':' parts the repository from the tag")
        } else if repo.chars().any(|c| c.is_ascii_uppercase()) {
            Some("repository names are lower case")
        } else if repo.starts_with('/') || repo.ends_with('/') || repo.contains("//") {
            Some("repository names have no empty path components")
        } else {
            None
        };
        if let Some(why) = never {
            return Err(format!("glob {pattern:?} can never match: {why}"));
        }
        Ok(RefGlob {
            repository: compile(repo)?,
            tag: tag.map(compile).transpose()?,
        })
    }

    pub fn is_match(&self, repository: &str, tag: &str) -> bool {
        self.repository.is_match(repository) && self.tag.as_ref().is_none_or(|t| t.is_match(tag))
    }
}

#[cfg(test)]
mod tests {
    use super::RefGlob;

    #[test]
    fn repository_and_tag_globs() {
        let g = RefGlob::new("**:dev-*").unwrap();
        assert!(g.is_match("a", "dev-1"));
        assert!(g.is_match("a/b/c", "dev-1"));
        assert!(!g.is_match("a/b", "release-1"));
        let g = RefGlob::new("*/app:*").unwrap();
        assert!(g.is_match("team/app", "v1"));
        assert!(
            !g.is_match("team/sub/app", "v1"),
            "* stays in one component"
        );
        let g = RefGlob::new("team/**").unwrap();
        assert!(g.is_match("team/a/b", "anything"));
        assert!(!g.is_match("other/a", "v1"));
        let g = RefGlob::new("**/cache:v[0-9]").unwrap();
        assert!(g.is_match("cache", "v1"));
        assert!(g.is_match("x/y/cache", "v2"));
        assert!(!g.is_match("x/y/cache", "v10"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(RefGlob::new("a[:x").is_err());
        assert!(RefGlob::new(":x").is_err());
        assert!(RefGlob::new("a:").is_err());
        assert!(RefGlob::new("{a").is_err());
        for never in ["A/B:x", "/x:*", "x/:*", "a//b", "a:b:c", " ", "app: v1"] {
            assert!(RefGlob::new(never).is_err(), "{never}");
        }
        assert!(RefGlob::new("app:V1-*").is_ok(), "tags may have capitals");
    }
}
