//! The people who may publish: `access/users.toml` (ids, names, SSH keys, roles), read with the
//! server's own parser (`hooks::users`) and changed through `toml_edit`, so comments and the
//! order of people stay as the owner wrote them. A change is a save like any other, which only
//! an admin may publish (the server's policies decide that, not the app).

pub use hooks::users::User;

use crate::worktree;
use crate::{Error, Result, Workspace};

/// The roles every site knows (a site policy may add more).
pub const ROLES: [&str; 4] = ["admin", "publisher", "editor", "reader"];

const PATH: &str = hooks::users::PATH;

fn text(ws: &Workspace) -> Result<String> {
    let file = ws.dir().join(PATH);
    match std::fs::read_to_string(&file) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::fs(file)(e)),
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::Page { path: PATH.into(), reason: reason.into() }
}

/// The people, as the server reads them.
pub fn list(ws: &Workspace) -> Result<Vec<User>> {
    hooks::users::parse(&text(ws)?).map_err(bad)
}

/// Add a person, or change the one with the same id (name, roles; a key is added to theirs).
/// What the server would refuse (a bad key, a key of someone else's) is never written.
pub fn upsert(ws: &Workspace, id: &str, name: &str, key: Option<&str>, roles: &[String]) -> Result<()> {
    let mut doc: toml_edit::DocumentMut = text(ws)?.parse().map_err(|e| bad(format!("{e}")))?;
    let users = doc
        .entry("user")
        .or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| bad("`user` is not a list of [[user]] tables"))?;
    let index = users.iter().position(|t| t.get("id").and_then(|v| v.as_str()) == Some(id));
    let table = match index {
        Some(i) => users.get_mut(i).ok_or_else(|| bad("lost a user"))?,
        None => {
            let mut t = toml_edit::Table::new();
            t.insert("id", toml_edit::value(id));
            users.push(t);
            let last = users.len() - 1;
            users.get_mut(last).ok_or_else(|| bad("lost a user"))?
        }
    };
    if !name.is_empty() || table.contains_key("name") {
        table.insert("name", toml_edit::value(name));
    }
    if let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) {
        let keys = table
            .entry("keys")
            .or_insert_with(|| toml_edit::value(toml_edit::Array::new()))
            .as_array_mut()
            .ok_or_else(|| bad(format!("user {id:?}: keys is not a list")))?;
        if !keys.iter().any(|k| k.as_str() == Some(key)) {
            keys.push(key);
        }
    }
    crate::pages::put(table, "roles", roles.iter().map(String::as_str).collect::<toml_edit::Array>());
    write(ws, &doc)
}

/// Set the age recipient of person `id` (what `secrets/` files are also encrypted to, so they
/// can change secrets on their own computer); empty removes it. A malformed one is never written.
pub fn set_age(ws: &Workspace, id: &str, age: &str) -> Result<()> {
    let age = age.trim();
    if !age.is_empty() {
        secrets::identity::parse_recipient(age).map_err(|e| bad(e.to_string()))?;
    }
    let mut doc: toml_edit::DocumentMut = text(ws)?.parse().map_err(|e| bad(format!("{e}")))?;
    let (users, index) = find(&mut doc, id)?;
    let table = users.get_mut(index).ok_or_else(|| bad("lost a user"))?;
    match age.is_empty() {
        true => drop(table.remove("age")),
        false => crate::pages::put(table, "age", age),
    }
    write(ws, &doc)
}

/// Remove the person `id` (their keys stop working once the change is published).
pub fn remove(ws: &Workspace, id: &str) -> Result<()> {
    let mut doc: toml_edit::DocumentMut = text(ws)?.parse().map_err(|e| bad(format!("{e}")))?;
    let (users, index) = find(&mut doc, id)?;
    users.remove(index);
    write(ws, &doc)
}

/// The `[[user]]` list of `doc` and where `id` is in it.
fn find<'d>(doc: &'d mut toml_edit::DocumentMut, id: &str) -> Result<(&'d mut toml_edit::ArrayOfTables, usize)> {
    let users = doc.get_mut("user").and_then(|u| u.as_array_of_tables_mut()).ok_or_else(|| bad("no users"))?;
    let index = users
        .iter()
        .position(|t| t.get("id").and_then(|v| v.as_str()) == Some(id))
        .ok_or_else(|| bad(format!("no user {id:?}")))?;
    Ok((users, index))
}

fn write(ws: &Workspace, doc: &toml_edit::DocumentMut) -> Result<()> {
    let text = doc.to_string();
    hooks::users::parse(&text).map_err(bad)?;
    worktree::write_file(&ws.dir().join(PATH), text.as_bytes(), gix::objs::tree::EntryKind::Blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixture::site;

    fn key() -> String {
        let dir = tempfile::tempdir().unwrap();
        let k = githost::keys::load_or_generate(&dir.path().join("k"), "test").unwrap();
        k.public_key().to_openssh().unwrap()
    }

    #[test]
    fn people_are_added_changed_and_removed_and_comments_stay() {
        let (_tmp, ws) = site();
        std::fs::create_dir_all(ws.dir().join("access")).unwrap();
        std::fs::write(
            ws.dir().join(PATH),
            "# Who may publish\n[[user]]\nid = \"ada\" # the owner\nroles = [\"admin\"]\n",
        )
        .unwrap();
        let (k1, k2) = (key(), key());
        upsert(&ws, "bob", "Bob", Some(&k1), &["editor".into()]).unwrap();
        upsert(&ws, "bob", "Bob B.", Some(&k2), &["editor".into(), "publisher".into()]).unwrap();
        let people = list(&ws).unwrap();
        assert_eq!(people.len(), 2);
        assert_eq!(people[1].name, "Bob B.");
        assert_eq!(people[1].keys, [k1.clone(), k2]);
        assert_eq!(people[1].roles, ["editor", "publisher"]);
        let text = std::fs::read_to_string(ws.dir().join(PATH)).unwrap();
        assert!(text.starts_with("# Who may publish\n[[user]]\nid = \"ada\" # the owner\n"), "{text}");
        // The same key for another person, or a bad one, is refused and nothing is written.
        assert!(upsert(&ws, "eve", "", Some(&k1), &[]).is_err());
        assert!(upsert(&ws, "eve", "", Some("ssh-ed25519 nonsense"), &[]).is_err());
        assert!(upsert(&ws, "e v e", "", None, &[]).is_err());
        assert_eq!(std::fs::read_to_string(ws.dir().join(PATH)).unwrap(), text);
        remove(&ws, "bob").unwrap();
        assert_eq!(list(&ws).unwrap().len(), 1);
        assert!(remove(&ws, "bob").is_err());
    }
}
