//! Decrypted values. A [`Secret`] is zeroed when dropped and prints as `Secret(<redacted>)`:
//! it can be compared and sent, never logged by accident. A [`SecretTree`] is a document's
//! decrypted content: maps and lists of secrets, the shape of the file.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

/// One decrypted value (numbers and booleans kept as their text).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(Zeroizing::new(value))
    }

    /// The value, for the code that sends it (a header, an SMTP login) and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A document's decrypted content.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretTree {
    Value(Secret),
    List(Vec<SecretTree>),
    Map(BTreeMap<String, SecretTree>),
}

impl std::fmt::Debug for SecretTree {
    /// Only the shape: keys and list lengths.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretTree::Value(v) => v.fmt(f),
            SecretTree::List(items) => write!(f, "[{} values]", items.len()),
            SecretTree::Map(map) => f.debug_set().entries(map.keys()).finish(),
        }
    }
}

impl SecretTree {
    /// The subtree at `path` (map keys, or list indexes as numbers).
    pub fn get(&self, path: &[&str]) -> Option<&SecretTree> {
        path.iter().try_fold(self, |node, key| match node {
            SecretTree::Map(map) => map.get(*key),
            SecretTree::List(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            SecretTree::Value(_) => None,
        })
    }

    /// The value at `path`, when it is a single value.
    pub fn value(&self, path: &[&str]) -> Option<&Secret> {
        match self.get(path)? {
            SecretTree::Value(v) => Some(v),
            _ => None,
        }
    }

    /// Every value, depth first.
    pub fn values(&self) -> Vec<&Secret> {
        let mut out = Vec::new();
        fn walk<'a>(node: &'a SecretTree, out: &mut Vec<&'a Secret>) {
            match node {
                SecretTree::Value(v) => out.push(v),
                SecretTree::List(items) => items.iter().for_each(|i| walk(i, out)),
                SecretTree::Map(map) => map.values().for_each(|i| walk(i, out)),
            }
        }
        walk(self, &mut out);
        out
    }

    /// From decoded JSON; the JSON's strings are not zeroed (the caller drops it at once).
    pub(crate) fn from_json(value: serde_json::Value) -> SecretTree {
        match value {
            serde_json::Value::String(s) => SecretTree::Value(Secret::new(s)),
            serde_json::Value::Array(items) => SecretTree::List(items.into_iter().map(SecretTree::from_json).collect()),
            serde_json::Value::Object(map) => {
                SecretTree::Map(map.into_iter().map(|(k, v)| (k, SecretTree::from_json(v))).collect())
            }
            serde_json::Value::Null => SecretTree::Value(Secret::new(String::new())),
            other => SecretTree::Value(Secret::new(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let tree = SecretTree::from_json(serde_json::json!({"smtp": {"password": "hunter2", "ports": [1, 2]}}));
        let shown = format!("{tree:?} {:?} {:?}", tree.get(&["smtp"]).unwrap(), tree.value(&["smtp", "password"]));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(tree.value(&["smtp", "password"]).unwrap().expose(), "hunter2");
        assert_eq!(tree.value(&["smtp", "ports", "1"]).unwrap().expose(), "2");
        assert!(tree.value(&["smtp"]).is_none());
        assert_eq!(tree.values().len(), 3);
    }
}
