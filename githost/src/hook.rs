//! The hook interface: how the application above the Git host decides about pushes.
//!
//! The host calls [`Hooks::authorize`] before serving a request, [`Hooks::pre_receive`] with the
//! pushed objects still in quarantine (nothing is visible to readers yet), and
//! [`Hooks::post_receive`] after the refs moved. Hooks run in-process on a blocking thread; what
//! they return is reported to the pushing client as `remote:` lines (and, for refusals, as
//! `! [remote rejected] <ref> (<reason>)`).

use bstr::BString;
use gix::ObjectId;

use crate::auth::Principal;

/// Which Git service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `git-upload-pack`: clone, fetch, ls-remote.
    UploadPack,
    /// `git-receive-pack`: push.
    ReceivePack,
    /// `whispercms-watch-refs`: notifications of ref changes, for followers (authorized like
    /// reading).
    WatchRefs,
}

impl Service {
    /// The program name `git` asks for over SSH.
    pub fn program(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
            Service::WatchRefs => "whispercms-watch-refs",
        }
    }
}

/// What a ref update does to the ref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// The ref does not exist yet.
    Create,
    /// The new commit descends from the old one.
    FastForward,
    /// History is rewritten (force-push), or the ref is not a commit.
    NonFastForward,
    /// The ref is removed.
    Delete,
}

/// One ref update of a push, as the client asked for it.
#[derive(Debug, Clone)]
pub struct RefUpdate {
    /// Full ref name, e.g. `refs/heads/main`.
    pub name: BString,
    /// The value the client believes the ref has (null for a create).
    pub old: ObjectId,
    /// The value to store (null for a delete).
    pub new: ObjectId,
    /// What the update does.
    pub kind: UpdateKind,
}

/// What pre-receive sees.
pub struct PushContext<'a> {
    /// Who pushes.
    pub principal: &'a Principal,
    /// The repository pushed to.
    pub repository: &'a str,
    /// The requested updates that passed the host's own checks.
    pub updates: &'a [RefUpdate],
    /// `git push -o` values, if the client sent any.
    pub push_options: &'a [BString],
    /// An object database that sees the quarantined objects as well as the repository's.
    pub objects: &'a gix::odb::Handle,
    /// The repository as it would be after the push (refs not yet moved): its object database
    /// is the quarantine view above.
    pub repo: &'a gix::Repository,
}

/// The pre-receive verdict.
#[derive(Debug, Default)]
pub struct PreReceive {
    /// Lines to show the client (`remote: …`), in order.
    pub messages: Vec<String>,
    /// If set, the whole push is refused with this reason.
    pub refuse_all: Option<String>,
    /// Single refs refused, with the reason for each.
    pub refused: Vec<(BString, String)>,
}

impl PreReceive {
    /// Accept everything.
    pub fn accept() -> Self {
        PreReceive::default()
    }
}

/// What post-receive sees.
pub struct PostReceiveContext<'a> {
    /// Who pushed.
    pub principal: &'a Principal,
    /// The repository pushed to.
    pub repository: &'a str,
    /// The updates that were applied.
    pub updates: &'a [RefUpdate],
    /// The repository, with the new refs and objects in place.
    pub repo: &'a gix::Repository,
}

/// Server-side hooks. Every method has a permissive default.
pub trait Hooks: Send + Sync {
    /// May `principal` use `service` on `repository`? `Err` carries the message shown to them.
    fn authorize(&self, principal: &Principal, repository: &str, service: Service) -> Result<(), String> {
        let _ = (principal, repository, service);
        Ok(())
    }

    /// Decide about a push before anything is stored.
    fn pre_receive(&self, push: &PushContext<'_>) -> PreReceive {
        let _ = push;
        PreReceive::accept()
    }

    /// React to a stored push; returns lines to show the client.
    fn post_receive(&self, push: &PostReceiveContext<'_>) -> Vec<String> {
        let _ = push;
        Vec::new()
    }
}

/// Hooks that allow everything (a plain Git host).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Hooks for AllowAll {}
