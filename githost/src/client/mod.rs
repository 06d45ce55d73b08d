//! The client side of Git: clone, fetch from and push to a remote over SSH, in-process.
//!
//! Follow mode (a server that mirrors a primary or a shared remote) and the desktop app use this
//! instead of the `git` and `ssh` programs:
//!
//! - [`url`]: which remote, parsed from `ssh://…` or scp-like `user@host:path` (gix-url);
//! - [`host_key`]: the server's key pinned by an OpenSSH `known_hosts` file or a fingerprint;
//! - [`ssh`]: the russh connection (key authentication, timeouts, keepalive) and `exec` of a Git
//!   service, bridged to blocking `Read`/`Write` for the protocol code;
//! - [`advertisement`]: what a server announces (v0 ref advertisement, v2 capabilities, `ls-refs`);
//! - [`fetch`]: fetch and clone, protocol v2 with v0 fallback; the pack goes through the same
//!   [quarantine](crate::quarantine) and connectivity check as a push into our own host, and refs
//!   move by compare-and-swap;
//! - [`watch`]: notifications of ref changes from a WhisperCMS primary;
//! - [`push`]: send-pack (create, update, delete, force, atomic), with `report-status` and the
//!   server's `remote:` messages handed to the caller.
//!
//! Why not gix's own fetch: it indexes the pack straight into the object store and moves refs
//! itself, while our invariants need the pack to wait in a quarantine until it is checked and the
//! refs to move only by compare-and-swap under the repository lock. The pieces we already have
//! for the server side (pkt-lines, side-band, pack indexing with thin-pack completion, the pack
//! planner and writer) make both directions small. gix has no client-side push at all.

pub mod advertisement;
pub mod fetch;
pub mod host_key;
pub mod push;
pub mod ssh;
pub mod url;
pub mod watch;

use std::time::Duration;

pub use fetch::{clone, FetchOutcome, FetchRequest, RefChange, RefSpec, Vet};
pub use host_key::HostKeyPolicy;
pub use push::{PushCommand, PushOutcome, PushRequest, RefStatus};
pub use ssh::{Connection, SshOptions};
pub use url::RemoteUrl;

/// Everything that can go wrong talking to a remote. The texts are meant for the person who set
/// the remote up: each names the host, file or ref involved.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The remote's address could not be understood.
    #[error("invalid remote URL {url:?}: {reason}")]
    Url {
        /// The address as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A refspec could not be understood.
    #[error("invalid refspec {spec:?}: {reason}")]
    RefSpec {
        /// The refspec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The private key could not be read.
    #[error("cannot use the SSH key {path}: {reason}")]
    Key {
        /// The key file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The TCP connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// A step took longer than allowed.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// The server's host key is neither in the known hosts nor the pinned fingerprint.
    #[error(
        "the host key of {host} is not known (its fingerprint is {fingerprint}); \
         if that is right, add it to {pinned_by}"
    )]
    UnknownHostKey {
        /// `host` or `[host]:port`.
        host: String,
        /// The key's `SHA256:…` fingerprint.
        fingerprint: String,
        /// Where a trusted key would be listed.
        pinned_by: String,
    },
    /// The server's host key differs from the one on record.
    #[error(
        "the host key of {host} has CHANGED: it is now {fingerprint}, but {expected}; \
         refusing to connect (the connection may be intercepted, or the server's key was replaced)"
    )]
    HostKeyChanged {
        /// `host` or `[host]:port`.
        host: String,
        /// The key the server showed.
        fingerprint: String,
        /// What was expected, and where it is recorded.
        expected: String,
    },
    /// The server did not accept our key.
    #[error("{user}@{host} refused the key {key}")]
    AuthRefused {
        /// The SSH user.
        user: String,
        /// The server.
        host: String,
        /// The key file offered.
        key: String,
    },
    /// The SSH layer failed.
    #[error("ssh: {0}")]
    Ssh(String),
    /// The remote ended the conversation with an error of its own (`ERR`, band 3, or `fatal:` on
    /// stderr with a non-zero exit).
    #[error("the remote said: {0}")]
    Remote(String),
    /// A ref watch ended cleanly: the remote restarted, or the session reached its time limit.
    /// Reconnect.
    #[error("the remote ended the watch")]
    WatchEnded,
    /// The remote broke the protocol.
    #[error("protocol error from the remote: {0}")]
    Protocol(String),
    /// The local repository, or what arrived for it (a broken pack, missing objects).
    #[error(transparent)]
    Local(#[from] crate::Error),
    /// Reading from or writing to the remote failed.
    #[error("connection to the remote failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<crate::pktline::PktError> for ClientError {
    fn from(e: crate::pktline::PktError) -> Self {
        match e {
            crate::pktline::PktError::Eof => ClientError::Protocol("the remote hung up unexpectedly".into()),
            crate::pktline::PktError::Malformed(m) => ClientError::Protocol(m),
            crate::pktline::PktError::Io(e) => ClientError::Io(e),
        }
    }
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Ssh(e.to_string())
    }
}

/// Receives a remote's messages or progress as they come.
pub type Messages = Box<dyn FnMut(&str) + Send>;

/// Read the band-1 data of a side-band stream with `read_data`; band 2 goes to `on_message`,
/// band 3 ends the stream as the remote's error.
fn read_sideband<R: std::io::Read, T>(
    reader: &mut crate::pktline::PktReader<R>,
    mut on_message: impl FnMut(&str),
    read_data: impl FnOnce(&mut dyn std::io::BufRead) -> T,
) -> Result<T> {
    let mut remote_error = None;
    let data = reader.with_sideband_data(
        |is_error, text| {
            let text = String::from_utf8_lossy(text);
            if is_error {
                remote_error = Some(text.trim().to_string());
                return std::ops::ControlFlow::Break(());
            }
            on_message(&text);
            std::ops::ControlFlow::Continue(())
        },
        read_data,
    );
    match remote_error {
        Some(message) => Err(ClientError::Remote(message)),
        None => Ok(data),
    }
}

/// The module's result type.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
