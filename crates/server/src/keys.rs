//! Several users of one server: API keys from a keys file (`keys.toml`), each with
//! a name and the collections it may read. Search, answers, files, the status and
//! the OpenAI API see only those collections; chats are per key.
//!
//! ```toml
//! [[key]]
//! name = "alice"
//! key = "…at least 16 characters…"
//! collections = ["contracts", "letters"]   # left out: every collection
//! ```

use crate::error::ApiError;
use anyhow::{Context, Result, bail};
use docchat_store::SearchFilter;
use serde::Deserialize;
use std::path::Path;

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's name; empty for the server's only user (no keys, or one key).
    name: String,
    /// The collections it may read; `None`: every one.
    collections: Option<Vec<String>>,
    /// Whether it may do anything at all (a request with no valid key may not).
    known: bool,
}

impl Principal {
    /// The only user of a server with no keys file: every collection, every chat.
    pub fn everyone() -> Self {
        Self {
            name: String::new(),
            collections: None,
            known: true,
        }
    }

    /// A request the guard let through without a key (the sign-in page).
    pub fn nobody() -> Self {
        Self {
            name: String::new(),
            collections: Some(Vec::new()),
            known: false,
        }
    }

    /// A named key's holder.
    pub fn named(name: impl Into<String>, collections: Option<Vec<String>>) -> Self {
        Self {
            name: name.into(),
            collections,
            known: true,
        }
    }

    /// The key's name (empty for the only user).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The owner its chats are kept under.
    pub fn owner(&self) -> &str {
        &self.name
    }

    /// Whose chats it sees: its own, or every chat for the only user.
    pub fn chats_owner(&self) -> Option<&str> {
        (!self.name.is_empty()).then_some(self.name.as_str())
    }

    /// Whether it may read `collection`.
    pub fn may_read(&self, collection: &str) -> bool {
        self.known
            && self
                .collections
                .as_ref()
                .is_none_or(|c| c.iter().any(|x| x == collection))
    }

    /// Whether it may change the folders, the index and the models (a key limited
    /// to some collections may not).
    pub fn may_administer(&self) -> bool {
        self.known && self.collections.is_none()
    }

    /// Narrows `filter` to the collections it may read: none asked means all of
    /// them; asking for another is refused (403).
    pub fn restrict(&self, filter: &mut SearchFilter) -> Result<(), ApiError> {
        if !self.known {
            return Err(ApiError::Forbidden("an API key is required".into()));
        }
        let Some(allowed) = &self.collections else {
            return Ok(());
        };
        if let Some(other) = filter.collections.iter().find(|c| !allowed.contains(c)) {
            return Err(ApiError::Forbidden(format!(
                "the key {:?} may not read the collection {other:?}",
                self.name
            )));
        }
        if filter.collections.is_empty() {
            filter.collections = allowed.clone();
            if allowed.is_empty() {
                // No collection at all: a name no collection has.
                filter.collections.push("\u{0}none".into());
            }
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    key: Vec<KeyEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    name: String,
    key: String,
    #[serde(default)]
    collections: Option<Vec<String>>,
}

/// Reads a keys file: each key with its holder. Names and keys must be unique.
pub fn load(path: &Path) -> Result<Vec<(String, Principal)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the keys file {}", path.display()))?;
    parse(&text).with_context(|| format!("invalid keys file {}", path.display()))
}

fn parse(text: &str) -> Result<Vec<(String, Principal)>> {
    let file: KeysFile = toml::from_str(text)?;
    if file.key.is_empty() {
        bail!("no [[key]] entries");
    }
    let mut out: Vec<(String, Principal)> = Vec::new();
    for e in file.key {
        let (name, key) = (e.name.trim().to_string(), e.key.trim().to_string());
        if name.is_empty() {
            bail!("a key has an empty name");
        }
        if out.iter().any(|(_, p)| p.name == name) {
            bail!("two keys are named {name:?}");
        }
        if out.iter().any(|(k, _)| *k == key) {
            bail!("the key of {name:?} is another's too");
        }
        out.push((key, Principal::named(name, e.collections)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_only_its_collections() {
        let keys = parse(
            r#"
            [[key]]
            name = "alice"
            key = "alice-0123456789abcdef"
            collections = ["contracts"]

            [[key]]
            name = "admin"
            key = "admin-0123456789abcdef"
            "#,
        )
        .unwrap();
        let (alice, admin) = (&keys[0].1, &keys[1].1);
        assert!(alice.may_read("contracts") && !alice.may_read("hr"));
        assert!(admin.may_read("hr") && admin.may_administer() && !alice.may_administer());
        assert_eq!(alice.chats_owner(), Some("alice"));
        let mut f = SearchFilter::default();
        alice.restrict(&mut f).unwrap();
        assert_eq!(f.collections, ["contracts"]);
        let mut f = SearchFilter::collections(vec!["hr".into()]);
        let e = alice.restrict(&mut f).unwrap_err();
        assert!(matches!(e, ApiError::Forbidden(m) if m.contains("\"hr\"")));
        let mut f = SearchFilter::collections(vec!["hr".into()]);
        admin.restrict(&mut f).unwrap();
        assert_eq!(f.collections, ["hr"]);
        assert_eq!(Principal::everyone().chats_owner(), None);
        assert!(!Principal::nobody().may_read("contracts"));
    }

    #[test]
    fn names_and_keys_are_unique() {
        let twice = |a: &str, b: &str| {
            format!(
                "[[key]]\nname = \"{a}\"\nkey = \"k-0123456789abcdef\"\n[[key]]\nname = \"{b}\"\nkey = \"{}\"\n",
                if a == b {
                    "other-0123456789abcdef"
                } else {
                    "k-0123456789abcdef"
                }
            )
        };
        assert!(
            parse(&twice("a", "a"))
                .unwrap_err()
                .to_string()
                .contains("two keys are named")
        );
        assert!(
            parse(&twice("a", "b"))
                .unwrap_err()
                .to_string()
                .contains("another's too")
        );
        assert!(parse("").is_err());
    }
}
