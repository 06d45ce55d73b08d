//! The client side of Git: clone, fetch from and push to a remote over SSH or HTTPS, in-process.
//!
//! Follow mode (a server that mirrors a primary or a shared remote) and the desktop app use this
//! instead of the `git` and `ssh` programs:
//!
//! - [`url`]: which remote, parsed from `ssh://…`, scp-like `user@host:path` or `https://…`
//!   (gix-url);
//! - [`host_key`]: the server's key pinned by an OpenSSH `known_hosts` file or a fingerprint;
//! - [`ssh`]: the russh connection (key authentication, timeouts, keepalive) and `exec` of a Git
//!   service, bridged to blocking `Read`/`Write` for the protocol code;
//! - [`http`]: smart HTTP (token in Basic authentication, rustls), the same conversation cut
//!   into stateless requests;
//! - [`Transport`]: what fetch and push need of either; [`Remote`] is one or the other;
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
pub mod http;
pub mod push;
pub mod ssh;
pub mod url;
pub mod watch;

use std::future::Future;
use std::io::{Read, Write};
use std::time::Duration;

pub use fetch::{clone, FetchOutcome, FetchRequest, RefChange, RefSpec, Vet};
pub use host_key::HostKeyPolicy;
pub use http::{HttpConnection, HttpOptions, Token};
pub use push::{PushCommand, PushOutcome, PushRequest, RefStatus};
pub use ssh::{host_fingerprint, Connection, SshOptions};
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
    /// An HTTP remote answered with an error, or not like a Git server.
    #[error("{url}: {reason}")]
    Http {
        /// The request's address.
        url: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// The TLS handshake failed, or the TLS settings cannot be used.
    #[error("TLS with {addr}: {reason}")]
    Tls {
        /// `host:port`, or the CA file.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The HTTP token cannot be used (its text never appears here).
    #[error("token: {0}")]
    Token(String),
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

/// What fetch and push need of a way to reach a remote: run one Git service and hand its two
/// directions to the blocking protocol code, which ends each request with `flush()` and drops
/// the writer when it has nothing more to say.
pub trait Transport: Send + Sync {
    /// What the remote says.
    type Reader: Read + Send + 'static;
    /// What we say.
    type Writer: Write + Send + 'static;

    /// Whether fetches ask for protocol v2.
    fn prefers_v2(&self) -> bool;

    /// Run `program` (`git-upload-pack`, `git-receive-pack`) for the remote's repository.
    fn run<T, F>(&self, program: &str, v2: bool, conversation: F) -> impl Future<Output = Result<T>> + Send
    where
        F: FnOnce(Self::Reader, Self::Writer) -> Result<T> + Send + 'static,
        T: Send + 'static;
}

impl Transport for Connection {
    type Reader = crate::channel_io::ChannelReader;
    type Writer = crate::channel_io::ChannelWriter;

    fn prefers_v2(&self) -> bool {
        Connection::prefers_v2(self)
    }

    fn run<T, F>(&self, program: &str, v2: bool, conversation: F) -> impl Future<Output = Result<T>> + Send
    where
        F: FnOnce(Self::Reader, Self::Writer) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        Connection::run(self, program, v2, conversation)
    }
}

impl Transport for HttpConnection {
    type Reader = http::ResponseReader;
    type Writer = http::RequestWriter;

    fn prefers_v2(&self) -> bool {
        HttpConnection::prefers_v2(self)
    }

    fn run<T, F>(&self, program: &str, v2: bool, conversation: F) -> impl Future<Output = Result<T>> + Send
    where
        F: FnOnce(Self::Reader, Self::Writer) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        HttpConnection::run(self, program, v2, conversation)
    }
}

/// A remote reached over SSH or HTTP(S), for callers that take the address from settings.
pub enum Remote {
    /// `ssh://` or `user@host:path`.
    Ssh(Connection),
    /// `https://` or `http://`.
    Http(HttpConnection),
}

impl Remote {
    /// The remote's address.
    pub fn url(&self) -> &RemoteUrl {
        match self {
            Remote::Ssh(c) => c.url(),
            Remote::Http(c) => c.url(),
        }
    }

    /// Close the connection politely.
    pub async fn close(self) {
        if let Remote::Ssh(c) = self {
            c.close().await;
        }
    }
}

impl Transport for Remote {
    type Reader = Box<dyn Read + Send>;
    type Writer = Box<dyn Write + Send>;

    fn prefers_v2(&self) -> bool {
        match self {
            Remote::Ssh(c) => c.prefers_v2(),
            Remote::Http(c) => c.prefers_v2(),
        }
    }

    async fn run<T, F>(&self, program: &str, v2: bool, conversation: F) -> Result<T>
    where
        F: FnOnce(Self::Reader, Self::Writer) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        match self {
            Remote::Ssh(c) => c.run(program, v2, move |i, o| conversation(Box::new(i), Box::new(o))).await,
            Remote::Http(c) => c.run(program, v2, move |i, o| conversation(Box::new(i), Box::new(o))).await,
        }
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
