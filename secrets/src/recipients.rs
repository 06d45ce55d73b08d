//! Who a secrets file is encrypted to — one rule for the CLI and the desktop app:
//!
//! the recipients it had (for a new file: its neighbours' that belong to no user, i.e. the
//! server's), those asked for, the editor's own, and the `age` recipient of every admin — minus
//! the recipients of listed users who are not admins, so a user who stops being an admin loses
//! access at the next change.

use std::collections::BTreeSet;

/// A person of `access/users.toml`, as far as this rule cares.
pub struct Person<'a> {
    pub age: Option<&'a str>,
    pub admin: bool,
}

/// The recipients, sorted; empty when nobody is left (the caller refuses to write then).
pub fn choose(
    existing: Option<&[String]>,
    neighbours: &[Vec<String>],
    asked: &[String],
    own: &[String],
    people: &[Person<'_>],
) -> Vec<String> {
    let users: BTreeSet<&str> = people.iter().filter_map(|p| p.age).collect();
    let demoted: BTreeSet<&str> = people.iter().filter(|p| !p.admin).filter_map(|p| p.age).collect();
    let mut out: BTreeSet<String> = BTreeSet::new();
    match existing {
        Some(r) => out.extend(r.iter().cloned()),
        None => out.extend(neighbours.iter().flatten().filter(|r| !users.contains(r.as_str())).cloned()),
    }
    out.extend(asked.iter().map(|r| r.trim().to_string()));
    out.extend(own.iter().cloned());
    out.extend(people.iter().filter(|p| p.admin).filter_map(|p| p.age.map(str::to_string)));
    out.retain(|r| !demoted.contains(r.as_str()));
    out.into_iter().collect()
}

/// The secrets documents under `dir` (by extension), depth first.
pub fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => out.extend(files_in(&path)),
            Ok(t) if t.is_file() && crate::Format::of_path(&path.to_string_lossy()).is_some() => out.push(path),
            _ => {}
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_in_demoted_out_server_from_neighbours() {
        let people = [Person { age: Some("age1alice"), admin: true }, Person { age: Some("age1bob"), admin: false }];
        let neighbours = vec![vec!["age1server".to_string(), "age1bob".to_string()]];
        let new = choose(None, &neighbours, &[], &["age1me".into()], &people);
        assert_eq!(new, ["age1alice", "age1me", "age1server"]);
        let kept = choose(Some(&["age1bob".into(), "age1server".into()]), &[], &["age1extra".into()], &[], &people);
        assert_eq!(kept, ["age1alice", "age1extra", "age1server"]);
        assert!(choose(None, &[], &[], &[], &[]).is_empty());
    }
}
