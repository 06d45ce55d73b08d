//! References: listing them for advertisement, validating names, and updating them as one
//! compare-and-swap transaction.
//!
//! All writes go through [`apply`], which states the expected old value of every ref it touches
//! (`MustNotExist` for a create, `MustExistAndMatch` otherwise), so a ref that moved since the
//! client looked is never overwritten: the update fails (`failed to update ref`, as `git` says).

use bstr::{BStr, BString, ByteSlice};
use gix::objs::FindExt;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};
use gix::ObjectId;

use crate::error::{Error, Result};

/// A reference as advertised to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefEntry {
    /// Full name, e.g. `refs/heads/main`.
    pub name: BString,
    /// The object the ref points at.
    pub id: ObjectId,
    /// For annotated tags: the object the tag chain finally points at.
    pub peeled: Option<ObjectId>,
}

/// The value of `name` if it is a direct ref (`Ok(None)` if it does not exist); a symbolic ref
/// gives `Err(reason)`: pushes update refs themselves, never what a symref points at.
pub fn direct_value(repo: &gix::Repository, name: &BStr) -> Result<std::result::Result<Option<ObjectId>, String>> {
    Ok(match repo.refs.try_find(name).map_err(Error::refs)? {
        None => Ok(None),
        Some(r) => match r.target {
            Target::Object(id) => Ok(Some(id)),
            Target::Symbolic(_) => Err("refusing to update a symbolic ref".into()),
        },
    })
}

/// Where `HEAD` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// `HEAD` names a branch; `id` is `None` while that branch does not exist (unborn).
    Symbolic {
        /// The branch, e.g. `refs/heads/main`.
        target: BString,
        /// The branch's commit, if it exists.
        id: Option<ObjectId>,
    },
    /// `HEAD` points at a commit directly.
    Detached(ObjectId),
}

/// All references under `refs/`, sorted by name, with tags peeled. Symbolic refs under `refs/`
/// are advertised with the value they resolve to; dangling ones are skipped.
pub fn list(repo: &gix::Repository) -> Result<Vec<RefEntry>> {
    let platform = repo.refs.iter().map_err(Error::refs)?;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for r in platform.all().map_err(Error::refs)? {
        let r = r.map_err(Error::refs)?;
        let id = match r.target {
            Target::Object(id) => id,
            Target::Symbolic(target) => match resolve(repo, target.as_bstr())? {
                Some(id) => id,
                None => continue,
            },
        };
        let peeled = peel_tag(&repo.objects, id, &mut buf)?;
        out.push(RefEntry { name: r.name.as_bstr().to_owned(), id, peeled });
    }
    Ok(out)
}

/// The current value of one ref, following symbolic refs; `None` if it does not exist.
pub fn resolve(repo: &gix::Repository, name: &BStr) -> Result<Option<ObjectId>> {
    let mut name = name.to_owned();
    // Bounded like git's own symref resolution, so a symref loop cannot hang us.
    for _ in 0..5 {
        let Some(r) = repo.refs.try_find(name.as_bstr()).map_err(Error::refs)? else {
            return Ok(None);
        };
        match r.target {
            Target::Object(id) => return Ok(Some(id)),
            Target::Symbolic(next) => name = next.as_bstr().to_owned(),
        }
    }
    Ok(None)
}

/// Where `HEAD` points.
pub fn head(repo: &gix::Repository) -> Result<Head> {
    let r = repo.refs.find_loose("HEAD").map_err(Error::refs)?;
    Ok(match r.target {
        Target::Object(id) => Head::Detached(id),
        Target::Symbolic(target) => {
            let id = resolve(repo, target.as_bstr())?;
            Head::Symbolic { target: target.as_bstr().to_owned(), id }
        }
    })
}

/// If `id` is an annotated tag, the id of the first non-tag object its chain points at.
pub fn peel_tag(objects: &impl gix::objs::Find, id: ObjectId, buf: &mut Vec<u8>) -> Result<Option<ObjectId>> {
    let mut current = id;
    let mut peeled = None;
    // Tag chains are short; the bound protects against a (hash-impossible) cycle in corrupt data.
    for _ in 0..64 {
        let Some(data) = objects.try_find(&current, buf).map_err(Error::odb)? else {
            return Ok(peeled);
        };
        if data.kind != gix::objs::Kind::Tag {
            return Ok(peeled);
        }
        let target =
            gix::objs::TagRefIter::from_bytes(data.data, gix::hash::Kind::Sha1).target_id().map_err(Error::odb)?;
        peeled = Some(target);
        current = target;
    }
    Ok(peeled)
}

/// Check a ref name a client wants to update against git's rules (`git check-ref-format`), and
/// that it is a ref under `refs/` (never `HEAD` or another pseudo-ref).
pub fn validate_name(name: &BStr) -> std::result::Result<FullName, String> {
    if !name.starts_with(b"refs/") {
        return Err("refusing to update a ref outside refs/".into());
    }
    gix::validate::reference::name(name).map_err(|e| format!("invalid ref name: {e}"))?;
    if name.starts_with(b"refs/heads/") {
        gix::validate::reference::branch_name(name).map_err(|e| format!("invalid branch name: {e}"))?;
    }
    FullName::try_from(name).map_err(|e| format!("invalid ref name: {e}"))
}

/// One compare-and-swap ref change. A null `old` means "must not exist yet"; a null `new` means
/// delete.
#[derive(Debug, Clone)]
pub struct Cas {
    /// The validated ref name.
    pub name: FullName,
    /// Expected current value.
    pub old: ObjectId,
    /// Value to store.
    pub new: ObjectId,
}

/// Apply `changes` as one transaction: either all refs move or none does. Fails with a message
/// naming the first ref whose current value is not the expected one.
pub fn apply(repo: &gix::Repository, changes: &[Cas], reflog_message: &str) -> Result<(), String> {
    let edits = changes.iter().map(|c| {
        let expected = if c.old.is_null() {
            PreviousValue::MustNotExist
        } else {
            PreviousValue::MustExistAndMatch(Target::Object(c.old))
        };
        let change = if c.new.is_null() {
            Change::Delete { expected, log: RefLog::AndReference }
        } else {
            Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: reflog_message.into(),
                },
                expected,
                new: Target::Object(c.new),
            }
        };
        RefEdit { change, name: c.name.clone(), deref: false }
    });
    let committer = gix::actor::Signature {
        name: "whispercms".into(),
        email: "whispercms@localhost".into(),
        time: gix::date::Time::now_utc(),
    };
    let mut time_buf = gix::date::parse::TimeBuf::default();
    repo.refs
        .transaction()
        .prepare(edits, gix::lock::acquire::Fail::Immediately, gix::lock::acquire::Fail::Immediately)
        .and_then(|t| t.commit(committer.to_ref(&mut time_buf)))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Whether `ancestor` is reachable from `descendant` (a fast-forward from one to the other).
pub fn is_ancestor_objects(objects: &impl gix::objs::Find, ancestor: ObjectId, descendant: ObjectId) -> Result<bool> {
    if ancestor == descendant {
        return Ok(true);
    }
    let mut seen = gix::hashtable::HashSet::default();
    let mut queue = vec![descendant];
    let mut buf = Vec::new();
    while let Some(id) = queue.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Ok(commit) = objects.find_commit_iter(&id, &mut buf) else {
            continue;
        };
        for parent in commit.parent_ids() {
            if parent == ancestor {
                return Ok(true);
            }
            queue.push(parent);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["refs/heads/main", "refs/tags/v1.0", "refs/heads/preview/alice-1"] {
            assert!(validate_name(name.into()).is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_hostile_names() {
        for name in [
            "refs/heads/../x",
            "refs/heads/a..b",
            "refs/heads/x.lock",
            "refs/heads/x/",
            "refs/heads/.hidden",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a^",
            "refs/heads/a:b",
            "refs/heads/a?",
            "refs/heads/a*",
            "refs/heads/a[",
            "refs/heads/a\\b",
            "refs/heads/@{x}",
            "refs/heads/a\u{7f}",
            "refs/heads//a",
            "refs/heads/HEAD",
            "HEAD",
            "refs",
            "main",
            "",
        ] {
            assert!(validate_name(name.into()).is_err(), "accepted {name:?}");
        }
        assert!(validate_name(b"refs/heads/a\0b".as_bstr()).is_err());
    }
}
