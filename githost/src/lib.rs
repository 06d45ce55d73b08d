//! The embedded Git remote of WhisperCMS.
//!
//! `githost` makes a process a Git server that the plain `git` CLI can clone from, fetch from
//! and push to over SSH, with no `git` binary, no `sshd` and no shell involved:
//!
//! - [`ssh`]: the russh endpoint (accept, public-key auth, `exec` of the two Git services);
//! - [`command`]: parsing what the client asks to run;
//! - [`pktline`], [`sideband`], [`protocol`]: the wire format;
//! - [`upload_pack`]: clone and fetch, protocol v0/v1 and v2;
//! - [`watch`]: `whispercms-watch-refs`, ref-change notifications for followers;
//! - [`receive_pack`]: push, through the [`quarantine`] and compare-and-swap [`refs`] updates;
//! - [`hook`]: the interface through which an application authorizes and vets pushes;
//! - [`auth`], [`keys`]: principals, authorized keys, key files;
//! - [`client`]: the other side: fetch, clone and push to a remote over SSH (follow mode, desktop);
//! - [`repository`], [`limits`]: the hosted repository and the bounds on what a client may cost.
//!
//! This crate is plumbing: it knows nothing of the CMS, HTTP or policies.

pub mod auth;
pub mod budget;
pub mod bundle;
mod channel_io;
pub mod client;
pub mod command;
mod error;
pub mod fsck;
pub mod hook;
pub mod integrity;
mod keepalive;
pub mod keys;
pub mod limits;
pub mod maintenance;
pub mod pack_writer;
pub mod pktline;
pub mod protocol;
pub mod quarantine;
pub mod receive_pack;
pub mod refs;
pub mod repository;
pub mod sideband;
pub mod ssh;
#[cfg(test)]
mod test_git;
pub mod upload_pack;
pub mod watch;

pub use auth::{AuthorizedKeys, KeyAuthorizer, Principal};
pub use error::{Error, Result};
pub use hook::{AllowAll, Hooks, PostReceiveContext, PreReceive, PushContext, RefUpdate, Service, UpdateKind};
pub use limits::Limits;
pub use repository::Repository;
pub use ssh::{serve, GitHost};
