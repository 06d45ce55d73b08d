//! Which objects a fetch sends: the commits the client lacks (or those within the requested
//! depth), their trees and blobs minus what the client already has, and tags on request.
//!
//! The commit walk is git's classic one: a queue ordered by commit time, fed with the wants
//! (interesting) and the common commits (uninteresting); uninteresting marks spread to parents;
//! the walk stops once only uninteresting commits are queued. Trees of the uninteresting commits
//! at the boundary ("edges") are marked as present on the client first, so unchanged subtrees are
//! skipped whole — a one-file change to a large site sends a handful of objects.

use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use gix::objs::Find;
use gix::ObjectId;

use super::commits::Commits;
use crate::error::{Error, Result};
use crate::refs::RefEntry;

/// How far back a shallow fetch goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deepen {
    /// `deepen N`: N commits from each want.
    Depth(u32),
    /// `deepen N` with `deepen-relative`: N more commits below the client's shallow boundary.
    Relative(u32),
}

/// What a fetch needs to know to plan its pack.
#[derive(Debug, Default)]
pub struct Request {
    /// Objects the client asked for.
    pub wants: Vec<ObjectId>,
    /// Commits both sides have.
    pub common: Vec<ObjectId>,
    /// Commits the client has without their parents.
    pub client_shallow: HashSet<ObjectId>,
    /// Shallow fetch, if asked for.
    pub deepen: Option<Deepen>,
    /// Send annotated tags that point into the pack.
    pub include_tag: bool,
}

/// The result: objects to send and the new shallow boundary.
#[derive(Debug, Default)]
pub struct Plan {
    /// Objects for the pack, commits first.
    pub objects: Vec<ObjectId>,
    /// Commits that become shallow on the client.
    pub shallow: Vec<ObjectId>,
    /// Client-shallow commits whose parents are now sent.
    pub unshallow: Vec<ObjectId>,
    /// Trees and blobs known to be on the client (those of the boundary commits): the only
    /// objects a thin pack may use as delta bases.
    pub client_has: HashSet<ObjectId>,
}

/// Only the new shallow boundary of a deepening request (what protocol v0 announces before
/// negotiation): the commit walk of [`plan`] without the tree walk.
pub fn shallow_boundary(
    commits: &mut Commits<'_>,
    req: &Request,
    deepen: Deepen,
) -> Result<(Vec<ObjectId>, Vec<ObjectId>)> {
    let wants = want_commits(commits, &req.wants)?;
    let w = walk_depth(commits, &wants, &req.common, &req.client_shallow, deepen)?;
    Ok((w.shallow, w.unshallow))
}

/// The commits behind `wants` (tags peeled; trees and blobs have none).
fn want_commits(commits: &mut Commits<'_>, wants: &[ObjectId]) -> Result<Vec<ObjectId>> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for w in wants {
        let id = crate::refs::peel_tag(&commits.repo().objects, *w, &mut buf)?.unwrap_or(*w);
        if commits.try_get(id)?.is_some() {
            out.push(id);
        }
    }
    Ok(out)
}

const SEEN: u8 = 1;
const UNINTERESTING: u8 = 2;

/// Plan the pack for `req`; `tags` are the repository's refs (for `include-tag`).
pub fn plan(commits: &mut Commits<'_>, req: &Request, tags: &[RefEntry]) -> Result<Plan> {
    let repo = commits.repo();
    let mut out = Plan::default();
    let mut sent: HashSet<ObjectId> = HashSet::new();
    let mut want_commits = Vec::new();
    let mut root_trees = Vec::new();
    let mut buf = Vec::new();
    for &want in &req.wants {
        let mut id = want;
        // Peel tags, sending every tag object on the way.
        for _ in 0..64 {
            let Some(data) = repo.objects.try_find(&id, &mut buf).map_err(Error::odb)? else {
                return Err(Error::NotOurRef(id.to_string()));
            };
            match data.kind {
                gix::objs::Kind::Tag => {
                    if sent.insert(id) {
                        out.objects.push(id);
                    }
                    id = gix::objs::TagRefIter::from_bytes(data.data, gix::hash::Kind::Sha1)
                        .target_id()
                        .map_err(Error::odb)?;
                }
                gix::objs::Kind::Commit => {
                    want_commits.push(id);
                    break;
                }
                gix::objs::Kind::Tree => {
                    root_trees.push(id);
                    break;
                }
                gix::objs::Kind::Blob => {
                    if sent.insert(id) {
                        out.objects.push(id);
                    }
                    break;
                }
            }
        }
    }
    let common: Vec<ObjectId> =
        req.common.iter().copied().filter(|c| commits.try_get(*c).ok().flatten().is_some()).collect();

    let (walked, edges) = match req.deepen {
        None => walk_missing(commits, &want_commits, &common, &req.client_shallow)?,
        Some(deepen) => {
            let w = walk_depth(commits, &want_commits, &common, &req.client_shallow, deepen)?;
            out.shallow = w.shallow;
            out.unshallow = w.unshallow;
            (w.commits, w.edges)
        }
    };

    // Everything in the trees of edge commits is on the client already.
    let mut have_objects: HashSet<ObjectId> = HashSet::new();
    for edge in &edges {
        let tree = commits.get(*edge)?.tree;
        mark_tree(repo, tree, &mut have_objects, &mut buf)?;
    }
    let have_objects = have_objects;
    for c in &walked {
        if sent.insert(*c) {
            out.objects.push(*c);
        }
    }
    for c in &walked {
        let tree = commits.get(*c)?.tree;
        add_tree(repo, tree, &have_objects, &mut sent, &mut out.objects, &mut buf)?;
    }
    for tree in root_trees {
        add_tree(repo, tree, &have_objects, &mut sent, &mut out.objects, &mut buf)?;
    }
    if req.include_tag {
        for t in tags {
            if let Some(peeled) = t.peeled {
                if sent.contains(&peeled) && !sent.contains(&t.id) {
                    add_tag_chain(repo, t.id, &mut sent, &mut out.objects, &mut buf)?;
                }
            }
        }
    }
    out.client_has = have_objects;
    Ok(out)
}

fn add_tag_chain(
    repo: &gix::Repository,
    mut id: ObjectId,
    sent: &mut HashSet<ObjectId>,
    objects: &mut Vec<ObjectId>,
    buf: &mut Vec<u8>,
) -> Result<()> {
    for _ in 0..64 {
        let Some(data) = repo.objects.try_find(&id, buf).map_err(Error::odb)? else { return Ok(()) };
        if data.kind != gix::objs::Kind::Tag {
            return Ok(());
        }
        let target =
            gix::objs::TagRefIter::from_bytes(data.data, gix::hash::Kind::Sha1).target_id().map_err(Error::odb)?;
        if sent.insert(id) {
            objects.push(id);
        }
        id = target;
    }
    Ok(())
}

/// Commits reachable from `wants` but not from `common`, newest first, and the uninteresting
/// parents of those commits (the edges).
fn walk_missing(
    commits: &mut Commits<'_>,
    wants: &[ObjectId],
    common: &[ObjectId],
    client_shallow: &HashSet<ObjectId>,
) -> Result<(Vec<ObjectId>, Vec<ObjectId>)> {
    let mut flags: HashMap<ObjectId, u8> = HashMap::new();
    let mut queue: BinaryHeap<(i64, ObjectId)> = BinaryHeap::new();
    for &c in common {
        let time = commits.get(c)?.time;
        flags.insert(c, SEEN | UNINTERESTING);
        queue.push((time, c));
    }
    for &w in wants {
        if flags.contains_key(&w) {
            continue;
        }
        let time = commits.get(w)?.time;
        flags.insert(w, SEEN);
        queue.push((time, w));
    }
    let mut out = Vec::new();
    let mut edges = HashSet::new();
    while let Some((_, id)) = queue.pop() {
        let uninteresting = flags[&id] & UNINTERESTING != 0;
        let parents = commits.get(id)?.parents.clone();
        if uninteresting {
            // A client-shallow commit's parents are not on the client: don't claim them.
            if !client_shallow.contains(&id) {
                for p in parents {
                    let f = flags.entry(p).or_insert(0);
                    if *f & UNINTERESTING == 0 {
                        let was_seen = *f & SEEN != 0;
                        *f |= SEEN | UNINTERESTING;
                        if !was_seen {
                            if let Some(info) = commits.try_get(p)? {
                                queue.push((info.time, p));
                            }
                        }
                    }
                }
            }
        } else if client_shallow.contains(&id) {
            // The client has this commit but not its history; send neither.
        } else {
            out.push(id);
            for p in parents {
                let f = flags.entry(p).or_insert(0);
                if *f & UNINTERESTING != 0 {
                    edges.insert(p);
                } else if *f & SEEN == 0 {
                    *f |= SEEN;
                    let time = commits.get(p)?.time;
                    queue.push((time, p));
                }
            }
        }
        if queue.iter().all(|(_, c)| flags[c] & UNINTERESTING != 0) {
            break;
        }
    }
    // A commit output early may have been found uninteresting later (clock skew); keep it (the
    // client tolerates extra objects) but never use it as an edge.
    let edges = edges.into_iter().filter(|e| commits_known_uninteresting(&flags, e)).collect();
    Ok((out, edges))
}

fn commits_known_uninteresting(flags: &HashMap<ObjectId, u8>, id: &ObjectId) -> bool {
    flags.get(id).is_some_and(|f| f & UNINTERESTING != 0)
}

struct DepthWalk {
    commits: Vec<ObjectId>,
    edges: Vec<ObjectId>,
    shallow: Vec<ObjectId>,
    unshallow: Vec<ObjectId>,
}

/// Commits within the requested depth, excluding those the client has.
fn walk_depth(
    commits: &mut Commits<'_>,
    wants: &[ObjectId],
    common: &[ObjectId],
    client_shallow: &HashSet<ObjectId>,
    deepen: Deepen,
) -> Result<DepthWalk> {
    // What the client has: everything reachable from the common commits, down to its shallow
    // boundary (its history is cut there).
    let mut client_has: HashSet<ObjectId> = HashSet::new();
    let mut stack: Vec<ObjectId> = common.to_vec();
    while let Some(c) = stack.pop() {
        if !client_has.insert(c) || client_shallow.contains(&c) {
            continue;
        }
        if let Some(info) = commits.try_get(c)? {
            stack.extend(info.parents.iter().copied());
        }
    }

    // Breadth-first with a level per commit; `None` = unbounded (relative mode, above the
    // client's boundary).
    let (max, mut queue): (u32, VecDeque<(ObjectId, Option<u32>)>) = match deepen {
        Deepen::Depth(n) => (n, wants.iter().map(|w| (*w, Some(1))).collect()),
        Deepen::Relative(n) => {
            let mut q: VecDeque<_> = wants.iter().map(|w| (*w, None)).collect();
            q.extend(client_shallow.iter().map(|s| (*s, Some(0))));
            (n, q)
        }
    };
    let mut level_of: HashMap<ObjectId, Option<u32>> = HashMap::new();
    let mut order = Vec::new();
    let mut shallow = HashSet::new();
    let mut unshallow = HashSet::new();
    let mut edges = HashSet::new();
    while let Some((id, level)) = queue.pop_front() {
        // The client's boundary counts from its shallow commits, also when one is a want.
        let level = if level.is_none() && client_shallow.contains(&id) { Some(0) } else { level };
        // Revisit a commit only if we now reach it with more depth left.
        if let Some(prev) = level_of.get(&id) {
            let better = match (prev, level) {
                (Some(p), Some(l)) => l < *p,
                (Some(_), None) => true,
                _ => false,
            };
            if !better {
                continue;
            }
        } else {
            order.push(id);
        }
        level_of.insert(id, level);
        let Some(info) = commits.try_get(id)? else { continue };
        let parents = info.parents.clone();
        let at_boundary = level.is_some_and(|l| l >= max);
        if at_boundary {
            if !parents.is_empty() && !client_shallow.contains(&id) {
                shallow.insert(id);
            }
            continue;
        }
        shallow.remove(&id);
        if client_shallow.contains(&id) && !parents.is_empty() {
            unshallow.insert(id);
        }
        for p in parents {
            if level.is_none() && client_shallow.contains(&p) {
                continue; // queued as a start of its own, with its depth budget
            }
            if client_has.contains(&p) {
                // On the client with its whole tree: exclude that tree's objects.
                edges.insert(p);
                if level.is_none() {
                    continue;
                }
            }
            queue.push_back((p, level.map(|l| l + 1)));
        }
    }
    let commits_out: Vec<ObjectId> = order.into_iter().filter(|c| !client_has.contains(c)).collect();
    // Unshallowed commits are on the client, with their trees: good edges.
    edges.extend(unshallow.iter().copied());
    let mut shallow: Vec<_> = shallow.into_iter().collect();
    shallow.sort();
    let mut unshallow: Vec<_> = unshallow.into_iter().collect();
    unshallow.sort();
    Ok(DepthWalk { commits: commits_out, edges: edges.into_iter().collect(), shallow, unshallow })
}

/// Mark every object in `tree` as present on the client.
fn mark_tree(repo: &gix::Repository, tree: ObjectId, seen: &mut HashSet<ObjectId>, buf: &mut Vec<u8>) -> Result<()> {
    let mut stack = vec![tree];
    while let Some(t) = stack.pop() {
        if !seen.insert(t) {
            continue;
        }
        for entry in tree_entries(repo, t, buf)? {
            if entry.1 {
                stack.push(entry.0);
            } else {
                seen.insert(entry.0);
            }
        }
    }
    Ok(())
}

/// Add `tree` and everything below it that the client lacks.
fn add_tree(
    repo: &gix::Repository,
    tree: ObjectId,
    have: &HashSet<ObjectId>,
    sent: &mut HashSet<ObjectId>,
    out: &mut Vec<ObjectId>,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let mut stack = vec![tree];
    while let Some(t) = stack.pop() {
        if have.contains(&t) || !sent.insert(t) {
            continue;
        }
        out.push(t);
        for (id, is_tree) in tree_entries(repo, t, buf)? {
            if is_tree {
                stack.push(id);
            } else if !have.contains(&id) && sent.insert(id) {
                out.push(id);
            }
        }
    }
    Ok(())
}

/// The entries of a tree as (id, is-tree), without submodule commits.
fn tree_entries(repo: &gix::Repository, tree: ObjectId, buf: &mut Vec<u8>) -> Result<Vec<(ObjectId, bool)>> {
    let data = repo
        .objects
        .try_find(&tree, buf)
        .map_err(Error::odb)?
        .ok_or_else(|| Error::Odb(format!("tree {tree} is missing")))?;
    let tree_ref = gix::objs::TreeRef::from_bytes(data.data, gix::hash::Kind::Sha1).map_err(Error::odb)?;
    Ok(tree_ref.entries.iter().filter(|e| !e.mode.is_commit()).map(|e| (e.oid.to_owned(), e.mode.is_tree())).collect())
}
