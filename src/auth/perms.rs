//! Permissions: `ACTION:GLOB` strings (`push:team/*`, `pull:**`), actions
//! pull < push, delete < admin, globs on repository names (`*` stays in one
//! path component, `**` crosses `/`). A grant set answers "may this principal
//! do ACTION on REPO?" with one glob-set match per action.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
    Admin,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            "admin" | "*" => Some(Action::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::Admin => "admin",
        }
    }

    /// What granting `self` also grants: push and delete need to read, admin
    /// is everything.
    fn implies(self, other: Action) -> bool {
        self == other || self == Action::Admin || other == Action::Pull
    }
}

/// One `ACTION:GLOB`, as written in the config or on a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub action: Action,
    pub pattern: String,
}

impl Permission {
    pub fn parse(s: &str) -> Result<Permission, String> {
        let (action, pattern) = s.split_once(':').ok_or_else(|| {
            format!("permission {s:?}: expected ACTION:REPOSITORY-GLOB, e.g. \"push:team/*\"")
        })?;
        let action = Action::parse(action).ok_or_else(|| {
            format!("permission {s:?}: action must be pull, push, delete or admin")
        })?;
        if pattern.is_empty() {
            return Err(format!("permission {s:?}: empty repository glob"));
        }
        glob(pattern).map_err(|e| format!("permission {s:?}: {e}"))?;
        Ok(Permission {
            action,
            pattern: pattern.to_string(),
        })
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.action.as_str(), self.pattern)
    }
}

fn glob(pattern: &str) -> Result<globset::Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| e.kind().to_string())
}

/// What a principal may do, compiled for fast checks.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// One glob set per action (index: Action as usize), each holding the
    /// patterns of every permission that implies that action.
    sets: [Option<GlobSet>; 4],
    /// Some permission is `**`, every repository: may list the catalog and,
    /// for admin, use the admin API. Only `**`: `*` is the top level alone.
    everything: [bool; 4],
    /// Exact repository names and what each may do (a registry token's
    /// scopes): a lookup, not a glob to compile, so a token asking for many
    /// long names costs little.
    names: std::collections::HashMap<String, [bool; 4]>,
}

impl Grants {
    pub fn new(perms: &[Permission]) -> Grants {
        let mut g = Grants::default();
        for action in [Action::Pull, Action::Push, Action::Delete, Action::Admin] {
            let mut b = GlobSetBuilder::new();
            let mut any = false;
            for p in perms.iter().filter(|p| p.action.implies(action)) {
                if let Ok(gl) = glob(&p.pattern) {
                    b.add(gl);
                    any = true;
                }
                if p.pattern == "**" {
                    g.everything[action as usize] = true;
                }
            }
            if any {
                g.sets[action as usize] = b.build().ok();
            }
        }
        g
    }

    /// Adds `action` on exactly the repository `name` (and what it implies).
    pub fn grant_name(&mut self, action: Action, name: &str) {
        let entry = self.names.entry(name.to_string()).or_default();
        for a in [Action::Pull, Action::Push, Action::Delete, Action::Admin] {
            if action.implies(a) {
                entry[a as usize] = true;
            }
        }
    }

    pub fn allows(&self, action: Action, repository: &str) -> bool {
        self.names
            .get(repository)
            .is_some_and(|a| a[action as usize])
            || self.sets[action as usize]
                .as_ref()
                .is_some_and(|s| s.is_match(repository))
    }

    /// May `action` on every repository (the catalog, the admin API).
    pub fn allows_all(&self, action: Action) -> bool {
        self.everything[action as usize]
    }
}

/// The permissions a token role stands for.
pub fn role(name: &str) -> Result<Vec<Permission>, String> {
    let action = match name {
        "read" => Action::Pull,
        "write" => Action::Push,
        "admin" => Action::Admin,
        _ => return Err(format!("role {name:?}: expected read, write or admin")),
    };
    Ok(vec![Permission {
        action,
        pattern: "**".into(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(perms: &[&str]) -> Grants {
        Grants::new(
            &perms
                .iter()
                .map(|p| Permission::parse(p).unwrap())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn actions_imply_and_globs_match() {
        let g = grants(&["push:frontend/*", "pull:**", "delete:frontend/dev-*"]);
        assert!(g.allows(Action::Pull, "anything/at/all"));
        assert!(g.allows(Action::Push, "frontend/app"));
        assert!(
            !g.allows(Action::Push, "frontend/app/sub"),
            "* stays in one component"
        );
        assert!(!g.allows(Action::Push, "backend/app"));
        assert!(g.allows(Action::Delete, "frontend/dev-x"));
        assert!(!g.allows(Action::Delete, "frontend/app"));
        assert!(!g.allows(Action::Admin, "frontend/app"));
        assert!(g.allows_all(Action::Pull) && !g.allows_all(Action::Push));
        let admin = grants(&["admin:**"]);
        for a in [Action::Pull, Action::Push, Action::Delete, Action::Admin] {
            assert!(admin.allows(a, "x/y") && admin.allows_all(a));
        }
        assert!(!Grants::default().allows(Action::Pull, "x"));
    }

    #[test]
    fn names_are_exact_and_imply_like_globs() {
        let mut g = grants(&["pull:lib/*"]);
        g.grant_name(Action::Push, "team/a*b");
        assert!(g.allows(Action::Push, "team/a*b") && g.allows(Action::Pull, "team/a*b"));
        assert!(!g.allows(Action::Push, "team/axb"), "not a pattern");
        assert!(!g.allows(Action::Delete, "team/a*b"));
        assert!(g.allows(Action::Pull, "lib/x") && !g.allows(Action::Pull, "team/x"));
    }

    #[test]
    fn a_single_star_is_the_top_level_not_everything() {
        let g = grants(&["pull:*", "admin:*"]);
        assert!(g.allows(Action::Pull, "lib") && g.allows(Action::Admin, "lib"));
        assert!(!g.allows(Action::Pull, "backend/secret"));
        for a in [Action::Pull, Action::Admin] {
            assert!(!g.allows_all(a), "{a:?}: no catalog, no admin API");
        }
    }

    #[test]
    fn bad_permissions_are_refused() {
        for bad in ["pull", "steal:x", "push:", "push:[a", "push:{a"] {
            assert!(Permission::parse(bad).is_err(), "{bad}");
        }
        assert!(role("owner").is_err());
        assert_eq!(role("write").unwrap()[0].to_string(), "push:**");
    }
}
