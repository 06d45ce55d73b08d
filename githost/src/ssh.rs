//! The SSH endpoint: accept connections, authenticate public keys, run Git services on `exec`.
//!
//! One task per connection runs the russh session. A channel's `exec` is parsed (never given to
//! a shell), authorized by the hooks, and served on a blocking thread: the pack protocol code is
//! synchronous (gix), so the channel's async halves are bridged to `Read`/`Write`. stdout carries
//! the protocol, stderr (extended data 1) carries fatal messages, and the exit status is sent
//! before the channel closes, so `git` never hangs waiting for it.
//!
//! Connections are bounded in total and per IP address; sessions have an idle timeout (russh)
//! and an overall time limit.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use russh::keys::PrivateKey;
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::auth::{KeyAuthorizer, Principal};
use crate::channel_io;
use crate::command::{self, GitCommand};
use crate::hook::{Hooks, Service};
use crate::limits::Limits;
use crate::protocol::ProtocolVersion;
use crate::receive_pack::ReceivePack;
use crate::repository::Repository;
use crate::upload_pack::UploadPack;

/// The Git host: its repositories, who may connect, and the hooks that govern pushes.
pub struct GitHost {
    repos: HashMap<String, Arc<Repository>>,
    keys: Arc<dyn KeyAuthorizer>,
    hooks: Arc<dyn Hooks>,
    limits: Limits,
    /// What pack generation may use, shared by every clone and fetch of the host.
    pack_budget: crate::budget::MemoryBudget,
    /// Set when the endpoint stops accepting: long-lived commands (ref watches) end then.
    closing: watch::Sender<bool>,
}

impl GitHost {
    /// A host with no repositories yet.
    pub fn new(keys: Arc<dyn KeyAuthorizer>, hooks: Arc<dyn Hooks>, limits: Limits) -> Self {
        let pack_budget = crate::budget::MemoryBudget::new(limits.pack_memory_bytes);
        GitHost { repos: HashMap::new(), keys, hooks, limits, pack_budget, closing: watch::Sender::new(false) }
    }

    /// Serve `repo` under its name.
    pub fn add_repository(&mut self, repo: Arc<Repository>) {
        self.repos.insert(repo.name().to_string(), repo);
    }

    /// The repository called `name`.
    pub fn repository(&self, name: &str) -> Option<&Arc<Repository>> {
        self.repos.get(name)
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A receiver that turns `true` when the endpoint is shutting down.
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// The repository `cmd` names, if `principal` may use `cmd`'s service on it.
    pub(crate) fn open_for(&self, principal: &Principal, cmd: &GitCommand) -> crate::Result<&Arc<Repository>> {
        let repo =
            self.repository(&cmd.repository).ok_or_else(|| crate::Error::NoSuchRepository(cmd.repository.clone()))?;
        if let Err(message) = self.hooks.authorize(principal, repo.name(), cmd.service) {
            return Err(crate::Error::Protocol(message));
        }
        Ok(repo)
    }

    /// Run one Git service on blocking streams: what an SSH `exec` does once authenticated.
    /// Exposed so other transports (and tests) can drive the same code.
    pub fn run_service(
        &self,
        principal: &Principal,
        cmd: &GitCommand,
        version: ProtocolVersion,
        input: impl std::io::Read,
        output: impl std::io::Write + Send,
    ) -> crate::Result<()> {
        let repo = self.open_for(principal, cmd)?;
        match cmd.service {
            Service::UploadPack => UploadPack { repo, version, budget: Some(&self.pack_budget) }.serve(input, output),
            Service::WatchRefs => Err(crate::Error::Protocol("watching refs needs the SSH endpoint".into())),
            Service::ReceivePack => {
                ReceivePack { repo, hooks: self.hooks.as_ref(), principal, limits: &self.limits, version }
                    .serve(input, output)
            }
        }
    }
}

/// Serve SSH on `listener` until `shutdown` resolves, then stop accepting and wait (up to the
/// session time limit) for running sessions to finish.
pub async fn serve(
    host: Arc<GitHost>,
    listener: TcpListener,
    host_key: PrivateKey,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = host.limits.clone();
    let config = Arc::new(russh::server::Config {
        server_id: russh::SshId::Standard(format!("SSH-2.0-{}", crate::protocol::AGENT.replace('/', "_")).into()),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        keys: vec![host_key],
        inactivity_timeout: Some(limits.idle_timeout),
        auth_rejection_time: std::time::Duration::from_millis(300),
        auth_rejection_time_initial: Some(std::time::Duration::from_millis(0)),
        max_auth_attempts: 6,
        nodelay: true,
        window_size: 8 * 1024 * 1024,
        ..Default::default()
    });
    // Authenticated sessions and connections still authenticating are counted apart: a stranger
    // holding connections open takes only `max_unauthenticated` slots, never a user's.
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let unauthenticated = Arc::new(Semaphore::new(limits.max_unauthenticated));
    let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let (done_tx, mut done_rx) = watch::channel(0usize);
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let Ok(startup) = unauthenticated.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many connections not yet authenticated");
            continue;
        };
        let Some(ip_guard) = IpGuard::acquire(&per_ip, peer.ip(), limits.max_connections_per_ip) else {
            tracing::warn!(%peer, "connection refused: too many connections from this address");
            continue;
        };
        let handler = Connection {
            host: host.clone(),
            peer,
            principal: None,
            channels: HashMap::new(),
            git_protocol: HashMap::new(),
            running: Arc::default(),
            startup: Some(startup),
            session_permit: None,
            sessions: total.clone(),
            authenticated: Arc::default(),
        };
        let authenticated = handler.authenticated.clone();
        let login_grace = limits.login_grace;
        let config = config.clone();
        let session_limit = limits.session_timeout;
        let idle_limit = limits.idle_timeout;
        let active = active.clone();
        let done_tx = done_tx.clone();
        active.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            let _ip_guard = ip_guard;
            // The identification exchange happens before russh's inactivity timer runs: bound it
            // too (by the login grace time, which it is part of), or a client that connects and
            // sends nothing would hold its slot forever.
            let identification = idle_limit.min(login_grace);
            match tokio::time::timeout(identification, russh::server::run_stream(config, stream, handler)).await {
                Ok(Ok(session)) => tokio::select! {
                    ended = tokio::time::timeout(session_limit, session) => match ended {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "ssh session ended with an error"),
                        Err(_) => tracing::warn!(%peer, "ssh session closed: time limit reached"),
                    },
                    () = unauthenticated_after(login_grace, &authenticated) => {
                        tracing::info!(%peer, "ssh connection closed: not authenticated within the login grace time");
                    }
                },
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "ssh handshake failed"),
                Err(_) => tracing::info!(%peer, "ssh connection closed: no identification in time"),
            }
            let left = active.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) - 1;
            let _ = done_tx.send(left);
        });
    }
    drop(listener);
    host.closing.send_replace(true);
    tracing::info!("ssh: no longer accepting; waiting for running sessions");
    let wait = async {
        while active.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            if done_rx.changed().await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(limits.session_timeout, wait).await;
    Ok(())
}

/// Resolves when `grace` has passed and the connection has not authenticated; never otherwise.
async fn unauthenticated_after(grace: std::time::Duration, authenticated: &std::sync::atomic::AtomicBool) {
    tokio::time::sleep(grace).await;
    if authenticated.load(std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
}

/// Counts a connection against its IP address while alive.
struct IpGuard {
    map: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl IpGuard {
    fn acquire(map: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpGuard { map: map.clone(), ip })
    }
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// The state of one SSH connection.
struct Connection {
    host: Arc<GitHost>,
    peer: SocketAddr,
    principal: Option<Principal>,
    channels: HashMap<ChannelId, Channel<Msg>>,
    git_protocol: HashMap<ChannelId, String>,
    /// Services running on this connection (each `exec` is one).
    running: Arc<std::sync::atomic::AtomicUsize>,
    /// Its slot among the connections not yet authenticated, until it authenticates.
    startup: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Its slot among the authenticated sessions, once it has one.
    session_permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The authenticated sessions' slots.
    sessions: Arc<Semaphore>,
    /// Set when it authenticates (the login grace timer reads it).
    authenticated: Arc<std::sync::atomic::AtomicBool>,
}

/// Decrements a connection's running-service count when a service ends, however it ends.
struct RunningGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Services one connection may run at once; `git` runs one, so this is generous.
const MAX_SERVICES_PER_CONNECTION: usize = 4;

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        match self.host.keys.authorize(user, key.public_key) {
            Some(principal) => {
                let permit = match self.session_permit.take() {
                    Some(permit) => permit,
                    None => match self.sessions.clone().try_acquire_owned() {
                        Ok(permit) => permit,
                        Err(_) => {
                            tracing::warn!(peer = %self.peer, user = %principal.id, "refused: server at its session limit");
                            return Ok(Auth::reject());
                        }
                    },
                };
                tracing::info!(peer = %self.peer, user = %principal.id, key = %principal.key_fingerprint, "authenticated");
                self.session_permit = Some(permit);
                self.startup = None;
                self.authenticated.store(true, std::sync::atomic::Ordering::SeqCst);
                self.principal = Some(principal);
                Ok(Auth::Accept)
            }
            None => {
                tracing::info!(peer = %self.peer, key = %key.public_key.fingerprint(Default::default()), "unknown key refused");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= 8 {
            return Ok(()); // dropping `reply` refuses the channel
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "GIT_PROTOCOL" && value.len() < 256 {
            self.git_protocol.insert(channel, value.to_string());
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(ch) = self.channels.remove(&channel) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        let version = ProtocolVersion::from_env(&self.git_protocol.remove(&channel).unwrap_or_default());
        let running = self.running.clone();
        if running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= MAX_SERVICES_PER_CONNECTION {
            running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move { refuse(ch, "too many requests on one connection").await });
            return Ok(());
        }
        let line = String::from_utf8_lossy(data).into_owned();
        let host = self.host.clone();
        let principal = self.principal.clone();
        let peer = self.peer;
        tokio::spawn(async move {
            let _running = RunningGuard(running);
            let Some(principal) = principal else {
                return refuse(ch, "not authenticated").await;
            };
            let cmd = match command::parse(&line) {
                Ok(cmd) => cmd,
                Err(e) => {
                    tracing::info!(%peer, user = %principal.id, command = %line, "refused command");
                    return refuse(ch, &e.to_string()).await;
                }
            };
            if cmd.service == Service::WatchRefs {
                let repo = match host.open_for(&principal, &cmd) {
                    Ok(repo) => repo.clone(),
                    Err(e) => return refuse(ch, &e.to_string()).await,
                };
                return crate::watch::serve(repo, host.closing(), ch, &principal.id, peer).await;
            }
            run_git(host, ch, principal, cmd, version, peer).await;
        });
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        if let Some(ch) = self.channels.remove(&channel) {
            let name = self.principal.as_ref().map(|p| p.id.clone()).unwrap_or_default();
            tokio::spawn(async move {
                refuse(
                    ch,
                    &format!(
                        "Hi {name}! You've authenticated, but this server does not provide shell access; use git."
                    ),
                )
                .await
            });
        }
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::info!(peer = %self.peer, subsystem = name, "refused subsystem");
        session.channel_failure(channel)?;
        Ok(())
    }
}

/// Send a one-line message on stderr, exit status 128, and close the channel.
pub(crate) async fn refuse(ch: Channel<Msg>, message: &str) {
    let mut stderr = ch.make_writer_ext(Some(1));
    let _ = stderr.write_all(format!("fatal: {message}\n").as_bytes()).await;
    let _ = stderr.flush().await;
    let _ = ch.exit_status(128).await;
    let _ = ch.eof().await;
    let _ = ch.close().await;
}

async fn run_git(
    host: Arc<GitHost>,
    ch: Channel<Msg>,
    principal: Principal,
    cmd: GitCommand,
    version: ProtocolVersion,
    peer: SocketAddr,
) {
    let (input, output, pump) = channel_io::bridge(ch, host.limits.idle_timeout);
    let started = std::time::Instant::now();
    let user = principal.id.clone();
    let service = cmd.service;
    let repository = host.repository(&cmd.repository).cloned();
    let result = tokio::task::spawn_blocking(move || host.run_service(&principal, &cmd, version, input, output)).await;
    let outcome = match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(join) => {
            // A panic may have left the shared object store inconsistent: start a fresh one.
            if let Some(repo) = repository.filter(|_| join.is_panic()) {
                match repo.reopen() {
                    Ok(()) => tracing::warn!(repository = repo.name(), "object store opened afresh after a panic"),
                    Err(e) => tracing::error!(error = %e, "could not open the object store afresh after a panic"),
                }
            }
            Err(format!("internal error: {join}"))
        }
    };
    let Some(write_half) = pump.finish().await else { return };
    let code = match &outcome {
        Ok(()) => {
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(%peer, %user, service = service.program(), ms, "git request served");
            0
        }
        Err(message) => {
            tracing::info!(%peer, %user, service = service.program(), error = %message, "git request failed");
            let _ = write_half.extended_data(1, format!("fatal: {message}\n").as_bytes()).await;
            128
        }
    };
    let _ = write_half.exit_status(code).await;
    let _ = write_half.eof().await;
    let _ = write_half.close().await;
}
