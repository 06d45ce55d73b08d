//! The SSH connection to a remote: connect within a timeout, check the host key
//! ([`HostKeyPolicy`]), authenticate with a key file (ed25519, ECDSA or RSA, OpenSSH format),
//! keep the connection alive, and run one Git service per channel.
//!
//! The protocol code is blocking (`Read`/`Write`, like the server side); [`Connection::run`]
//! bridges a channel to it through bounded queues and runs it on a blocking thread. What the
//! remote writes to stderr is kept (bounded) and becomes the error when the conversation fails,
//! so `fatal: '/x' does not appear to be a git repository` reaches the person as the server said it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;
use tokio::sync::mpsc;

use super::host_key::HostKeyPolicy;
use super::url::RemoteUrl;
use super::{ClientError, Result};
use crate::channel_io::{ChannelReader, ChannelWriter, QUEUE};

/// Most bytes of the remote's stderr kept for an error message.
const MAX_STDERR: usize = 16 * 1024;

/// How to reach a remote over SSH.
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// The private key (OpenSSH format, unencrypted).
    pub key: PathBuf,
    /// How the server's host key is checked.
    pub host_key: HostKeyPolicy,
    /// Limit on TCP connect, key exchange and authentication together.
    pub connect_timeout: Duration,
    /// A connection on which nothing at all arrives for this long is closed (keepalive replies
    /// count, so a healthy idle connection stays up).
    pub idle_timeout: Duration,
    /// Interval of keepalive requests when the server is silent.
    pub keepalive: Duration,
    /// Ask for protocol v2 when fetching (servers that cannot answer in v0, which works too).
    pub protocol_v2: bool,
}

impl SshOptions {
    /// Options with the usual timeouts (10 s to connect, 60 s idle, keepalive every 15 s).
    pub fn new(key: impl Into<PathBuf>, host_key: HostKeyPolicy) -> Self {
        SshOptions {
            key: key.into(),
            host_key,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            keepalive: Duration::from_secs(15),
            protocol_v2: true,
        }
    }
}

/// Checks the host key during the handshake and remembers why it refused one.
struct Handler {
    policy: HostKeyPolicy,
    host: String,
    port: u16,
    refusal: Arc<Mutex<Option<ClientError>>>,
}

impl client::Handler for Handler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let verdict = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.policy.check(&self.host, self.port, key),
            PublicKeyOrCertificate::Certificate(_) => {
                Err(ClientError::Ssh("the server offered a host certificate; pin its plain host key instead".into()))
            }
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(e) => {
                if let Ok(mut slot) = self.refusal.lock() {
                    *slot = Some(e);
                }
                Ok(false)
            }
        }
    }
}

/// The `SHA256:…` fingerprint of the host key `url`'s server shows, without authenticating:
/// what a first connection shows the person, to check with the server's administrator before
/// it is pinned (trust on first use, confirmed by a person rather than assumed).
pub async fn host_fingerprint(url: &RemoteUrl, timeout: Duration) -> Result<String> {
    if url.is_http() {
        return Err(ClientError::Url { url: url.original.clone(), reason: "not an SSH address".into() });
    }
    let refusal = Arc::new(Mutex::new(None));
    // No fingerprint matches the empty pin, so the handshake stops at the host key, which the
    // refusal names.
    let handler = Handler {
        policy: HostKeyPolicy::Fingerprint(String::new()),
        host: url.host.clone(),
        port: url.port,
        refusal: refusal.clone(),
    };
    let addr = format!("{}:{}", url.host, url.port);
    let handshake = async {
        let socket = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|source| ClientError::Connect { addr: addr.clone(), source })?;
        let outcome = client::connect_stream(Arc::new(client::Config::default()), socket, handler).await;
        let refused = refusal.lock().ok().and_then(|mut r| r.take());
        match (refused, outcome) {
            (Some(ClientError::HostKeyChanged { fingerprint, .. }), _) => Ok(fingerprint),
            (Some(other), _) => Err(other),
            (None, Err(e)) => Err(ClientError::Ssh(e.to_string())),
            (None, Ok(_)) => Err(ClientError::Ssh("the server showed no host key".into())),
        }
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| ClientError::Timeout { what: format!("asking {addr} for its host key"), after: timeout })?
}

/// An authenticated SSH connection to one remote. Cheap to keep open; each [`run`](Self::run)
/// opens a channel of its own.
pub struct Connection {
    handle: Handle<Handler>,
    url: RemoteUrl,
    idle_timeout: Duration,
    protocol_v2: bool,
}

impl Connection {
    /// Connect to `url`'s host, check its key and authenticate.
    pub async fn connect(url: &RemoteUrl, options: &SshOptions) -> Result<Connection> {
        if url.is_http() {
            return Err(ClientError::Url { url: url.original.clone(), reason: "not an SSH address".into() });
        }
        let key_error = |reason: String| ClientError::Key { path: options.key.display().to_string(), reason };
        let key = russh::keys::load_secret_key(&options.key, None).map_err(|e| key_error(e.to_string()))?;
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(options.idle_timeout),
            keepalive_interval: Some(options.keepalive),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        });
        let refusal = Arc::new(Mutex::new(None));
        let handler = Handler {
            policy: options.host_key.clone(),
            host: url.host.clone(),
            port: url.port,
            refusal: refusal.clone(),
        };
        let addr = format!("{}:{}", url.host, url.port);
        let timeout =
            |what: &str| ClientError::Timeout { what: format!("{what} {addr}"), after: options.connect_timeout };
        let connecting = async {
            let socket = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
                .await
                .map_err(|source| ClientError::Connect { addr: addr.clone(), source })?;
            let _ = socket.set_nodelay(true);
            client::connect_stream(config, socket, handler).await.map_err(|e| {
                refusal.lock().ok().and_then(|mut r| r.take()).unwrap_or_else(|| ClientError::Ssh(e.to_string()))
            })
        };
        let mut handle =
            tokio::time::timeout(options.connect_timeout, connecting).await.map_err(|_| timeout("connecting to"))??;
        let hash = handle.best_supported_rsa_hash().await.map_err(ClientError::from)?.flatten();
        let auth = tokio::time::timeout(
            options.connect_timeout,
            handle.authenticate_publickey(url.user.clone(), PrivateKeyWithHashAlg::new(Arc::new(key), hash)),
        )
        .await
        .map_err(|_| timeout("authenticating to"))??;
        if !auth.success() {
            return Err(ClientError::AuthRefused {
                user: url.user.clone(),
                host: addr,
                key: options.key.display().to_string(),
            });
        }
        Ok(Connection {
            handle,
            url: url.clone(),
            idle_timeout: options.idle_timeout,
            protocol_v2: options.protocol_v2,
        })
    }

    /// Whether fetches ask for protocol v2.
    pub fn prefers_v2(&self) -> bool {
        self.protocol_v2
    }

    /// The remote this connection reaches.
    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    /// Open a channel running `program` for the remote's repository (asking for protocol v2 when
    /// `v2` is set).
    pub(crate) async fn exec(&self, program: &str, v2: bool) -> Result<russh::Channel<russh::client::Msg>> {
        let channel = self.handle.channel_open_session().await?;
        if v2 {
            // Servers that do not accept the variable (OpenSSH without `AcceptEnv GIT_PROTOCOL`)
            // ignore it and answer in v0; the conversation handles both.
            channel.set_env(false, "GIT_PROTOCOL", "version=2").await?;
        }
        channel.exec(true, self.url.command(program)).await?;
        Ok(channel)
    }

    /// Run `program` (e.g. `git-upload-pack`) for the remote's repository, asking for protocol v2
    /// when `v2` is set, and hand its stdin/stdout to `conversation` on a blocking thread.
    /// `conversation` drops the writer when it has nothing more to send (the remote sees EOF).
    pub async fn run<T, F>(&self, program: &str, v2: bool, conversation: F) -> Result<T>
    where
        F: FnOnce(ChannelReader, ChannelWriter) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let channel = self.exec(program, v2).await?;
        let (mut read_half, write_half) = channel.split();
        let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_w = stderr.clone();

        let reader = tokio::spawn(async move {
            let mut in_tx = Some(in_tx);
            let mut exit = None;
            loop {
                match read_half.wait().await {
                    Some(ChannelMsg::Data { data }) => {
                        if let Some(tx) = &in_tx {
                            if tx.send(data.to_vec()).await.is_err() {
                                in_tx = None;
                            }
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        if let Ok(mut buf) = stderr_w.lock() {
                            let room = MAX_STDERR.saturating_sub(buf.len());
                            buf.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => exit = Some(exit_status),
                    Some(ChannelMsg::Failure) => {
                        if let Ok(mut buf) = stderr_w.lock() {
                            buf.extend_from_slice(b"the server refused to run the Git service\n");
                        }
                    }
                    Some(ChannelMsg::Eof) => in_tx = None,
                    Some(ChannelMsg::Close) | None => return exit,
                    Some(_) => {}
                }
            }
        });
        let stall = self.idle_timeout;
        let writer = tokio::spawn(async move {
            while let Some(chunk) = out_rx.recv().await {
                // Whole packets, as the server's side does (see `channel_io`).
                match tokio::time::timeout(stall, write_half.data_bytes(chunk)).await {
                    Ok(Ok(())) => {}
                    _ => return, // the remote is gone or stopped reading: the conversation's writes fail
                }
            }
            let _ = write_half.eof().await;
        });

        let input = ChannelReader::new(in_rx);
        let output = ChannelWriter::new(out_tx);
        let outcome = tokio::task::spawn_blocking(move || conversation(input, output))
            .await
            .map_err(|e| ClientError::Ssh(format!("the conversation thread failed: {e}")))?;
        let _ = writer.await;
        // The exit status arrives just before the channel closes; a remote that keeps the channel
        // open after the conversation ended is not waited for long.
        let exit = match tokio::time::timeout(Duration::from_secs(5), reader).await {
            Ok(Ok(exit)) => exit,
            _ => None,
        };
        let stderr = stderr.lock().map(|b| String::from_utf8_lossy(&b).trim().to_string()).unwrap_or_default();
        match outcome {
            Err(e) if !stderr.is_empty() && !matches!(e, ClientError::Local(_)) => {
                tracing::debug!(error = %e, "remote conversation failed");
                Err(ClientError::Remote(stderr))
            }
            Err(e) => Err(e),
            Ok(_) if exit.is_some_and(|s| s != 0) && !stderr.is_empty() => Err(ClientError::Remote(stderr)),
            Ok(v) => Ok(v),
        }
    }

    /// Close the connection politely.
    pub async fn close(self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}
