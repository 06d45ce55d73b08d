//! Follow mode: this server takes its site from a remote instead of from pushes.
//!
//! A follower keeps one connection to the remote, over SSH or HTTPS (our Git client, no `ssh`,
//! `git` or curl). On
//! start and whenever the followed branches move it fetches them; every fetched ref update is
//! vetted like a push before anything is stored (the hooks' validation and lock-out rules, and
//! with `trust = "signatures"` every new commit's signature and its signer's right to change what
//! it changes); what passes is published through the same post-receive path as a push on the
//! primary. What fails keeps the last good commit serving, and says why in the log, on
//! `/metrics` and on `/readyz`.
//!
//! How it learns that a branch moved: against a WhisperCMS primary, `whispercms-watch-refs`
//! (the primary tells us at once; no polling, nothing runs on either side while idle but SSH
//! keepalives); against a plain Git server or over HTTPS, an up-to-date check every
//! `poll_interval_secs` (one `ls-refs` round trip, or one `info/refs` request). A lost connection is retried with capped
//! exponential backoff; the site keeps serving meanwhile.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use githost::client::{
    fetch, watch::RefWatch, ClientError, Connection, FetchRequest, HostKeyPolicy, HttpConnection, HttpOptions,
    RefChange, RefSpec, Remote, RemoteUrl, SshOptions, Token,
};
use githost::{
    Hooks, Limits, PostReceiveContext, PreReceive, Principal, PushContext, RefUpdate, Repository, UpdateKind,
};
use gix::ObjectId;
use site_runtime::Site;

use crate::settings::{FollowSettings, Trust};

/// Longest wait between two attempts to reach an unreachable remote.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What `/metrics` and `/readyz` say about following.
#[derive(Default)]
pub struct FollowStatus {
    /// Unix time of the last successful check or fetch.
    last_success: AtomicI64,
    /// Unix time since which we may be behind (0: up to date, as far as we know).
    behind_since: AtomicI64,
    /// Whether a watch keeps us up to date right now.
    watching: AtomicBool,
    failures: AtomicU64,
    refused: AtomicU64,
    /// The last refusal per branch: (commit, why).
    refusals: Mutex<BTreeMap<String, (ObjectId, String)>>,
    last_error: Mutex<Option<String>>,
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl FollowStatus {
    /// Prometheus text.
    pub fn render(&self) -> String {
        let behind = self.behind_since.load(Ordering::Relaxed);
        let lag = if behind == 0 { 0 } else { now() - behind };
        let mut out = format!(
            "# HELP whispercms_follow_lag_seconds How long this follower may have been behind its remote (0: in sync).\n\
             # TYPE whispercms_follow_lag_seconds gauge\nwhispercms_follow_lag_seconds {lag}\n\
             # HELP whispercms_follow_last_success_timestamp When the remote was last reached and followed.\n\
             # TYPE whispercms_follow_last_success_timestamp gauge\nwhispercms_follow_last_success_timestamp {}\n\
             # HELP whispercms_follow_failures_total Failed attempts to reach or fetch from the remote.\n\
             # TYPE whispercms_follow_failures_total counter\nwhispercms_follow_failures_total {}\n\
             # HELP whispercms_follow_refused_total Fetched commits refused (validation, signatures).\n\
             # TYPE whispercms_follow_refused_total counter\nwhispercms_follow_refused_total {}\n\
             # HELP whispercms_follow_watching Whether the remote notifies this follower of changes (else it polls).\n\
             # TYPE whispercms_follow_watching gauge\nwhispercms_follow_watching {}\n",
            self.last_success.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
            u8::from(self.watching.load(Ordering::Relaxed)),
        );
        if let Ok(refusals) = self.refusals.lock() {
            out.push_str("# HELP whispercms_follow_refused_info The last refused commit of each branch.\n");
            out.push_str("# TYPE whispercms_follow_refused_info gauge\n");
            for (branch, (commit, _)) in refusals.iter() {
                out.push_str(&format!("whispercms_follow_refused_info{{branch=\"{branch}\",commit=\"{commit}\"}} 1\n"));
            }
        }
        out
    }

    /// The `/readyz` line for `branch`, if there is something to say.
    fn note(&self, url: &str, branch: &str) -> Option<String> {
        if let Some((commit, why)) = self.refusals.lock().ok()?.get(branch) {
            return Some(format!("follow {url}: commit {commit} of {branch} was refused: {why}"));
        }
        self.last_error.lock().ok()?.as_ref().map(|e| format!("follow {url}: {e} (serving the last good commit)"))
    }
}

/// The hooks of a follower: reading as the primary's rules say, pushing refused before anything
/// is stored.
pub struct FollowerHooks {
    /// The rules of the live site (reads, post-receive).
    pub inner: Arc<hooks::Governance>,
    /// Where pushes should go.
    pub url: String,
}

impl Hooks for FollowerHooks {
    fn authorize(&self, principal: &Principal, repository: &str, service: githost::Service) -> Result<(), String> {
        self.inner.authorize(principal, repository, service)
    }

    fn pre_receive(&self, _push: &PushContext<'_>) -> PreReceive {
        let message = format!("this server follows {}; push there", self.url);
        PreReceive { messages: vec![message.clone()], refuse_all: Some(message), refused: Vec::new() }
    }
}

/// How the remote is reached.
enum Reach {
    Ssh(SshOptions),
    Http(HttpOptions),
}

/// One follower.
pub struct Follower {
    settings: FollowSettings,
    url: RemoteUrl,
    reach: Reach,
    repo: Arc<Repository>,
    governance: Arc<hooks::Governance>,
    sites: Vec<Arc<Site>>,
    /// What the remote's followed branches pointed at when last seen (refused values included).
    seen: Mutex<BTreeMap<String, ObjectId>>,
    pub status: Arc<FollowStatus>,
}

impl Follower {
    pub fn new(
        settings: FollowSettings,
        repo: Arc<Repository>,
        governance: Arc<hooks::Governance>,
        sites: Vec<Arc<Site>>,
    ) -> anyhow::Result<Follower> {
        let url = RemoteUrl::parse(&settings.url)?;
        let reach = if url.is_http() {
            let token = settings.token_file.as_deref().map(Token::from_file).transpose()?;
            Reach::Http(HttpOptions { token, ca_file: settings.ca_file.clone(), ..HttpOptions::default() })
        } else {
            let host_key = match (&settings.known_hosts, &settings.host_key_fingerprint) {
                (Some(path), _) => HostKeyPolicy::KnownHosts(path.clone()),
                (None, Some(f)) => HostKeyPolicy::Fingerprint(f.clone()),
                (None, None) => anyhow::bail!("[follow]: the remote's host key is not pinned"),
            };
            let key = settings.key.clone().ok_or_else(|| anyhow::anyhow!("[follow]: key is not set"))?;
            Reach::Ssh(SshOptions::new(key, host_key))
        };
        Ok(Follower { settings, url, reach, repo, governance, sites, seen: Mutex::default(), status: Arc::default() })
    }

    /// Follow until `stop` turns true. `first` is told when the first attempt ended (synced or
    /// not), so start-up can serve what it has without waiting for an unreachable remote.
    pub async fn run(
        self: Arc<Self>,
        mut stop: tokio::sync::watch::Receiver<bool>,
        first: tokio::sync::oneshot::Sender<()>,
    ) {
        let mut first = Some(first);
        let mut backoff = Duration::from_millis(500);
        loop {
            let mut synced = false;
            let session = self.session(&mut first, &mut synced);
            let ended = tokio::select! {
                r = session => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            if synced {
                backoff = Duration::from_millis(500); // it worked until now: retry soon
            }
            self.status.watching.store(false, Ordering::Relaxed);
            if let Err(e) = ended {
                self.status.failures.fetch_add(1, Ordering::Relaxed);
                let _ = self.status.behind_since.compare_exchange(0, now(), Ordering::Relaxed, Ordering::Relaxed);
                tracing::warn!(remote = %self.url, error = %e, retry_in_ms = backoff.as_millis() as u64, "follow: remote unreachable or failing; serving the last good commit");
                if let Ok(mut last) = self.status.last_error.lock() {
                    *last = Some(e.to_string());
                }
                self.update_notes();
            }
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One connection: sync, then wait for changes (watch) or poll, until something fails.
    async fn session(
        &self,
        first: &mut Option<tokio::sync::oneshot::Sender<()>>,
        synced: &mut bool,
    ) -> Result<(), ClientError> {
        let conn = match &self.reach {
            Reach::Ssh(options) => Remote::Ssh(Connection::connect(&self.url, options).await?),
            Reach::Http(options) => Remote::Http(HttpConnection::connect(&self.url, options.clone()).await?),
        };
        self.sync(&conn).await?;
        *synced = true;
        if let Some(tx) = first.take() {
            let _ = tx.send(());
        }
        let mut watch = match &conn {
            Remote::Ssh(ssh) => match RefWatch::start(ssh).await {
                Ok(w) => Some(w),
                Err(ClientError::Remote(_)) => None,
                Err(e) => return Err(e),
            },
            Remote::Http(_) => {
                tracing::info!(remote = %self.url, interval_secs = self.settings.poll_interval_secs, "follow: an HTTPS remote cannot notify; polling");
                None
            }
        };
        if let Some(w) = watch.as_mut() {
            match w.next().await {
                Ok(list) => {
                    tracing::info!(remote = %self.url, "follow: the remote notifies us of changes");
                    self.status.watching.store(true, Ordering::Relaxed);
                    if self.moved(&list) {
                        self.sync(&conn).await?;
                    }
                }
                Err(ClientError::Remote(why)) => {
                    tracing::info!(remote = %self.url, %why, interval_secs = self.settings.poll_interval_secs, "follow: the remote cannot notify; polling");
                    watch = None;
                }
                Err(e) => return Err(e),
            }
        }
        match watch {
            Some(mut w) => loop {
                match w.next().await {
                    Ok(list) => {
                        if self.moved(&list) {
                            self.sync(&conn).await?;
                        }
                    }
                    Err(ClientError::WatchEnded) => {
                        // A restart of the remote or its session time limit: not a failure.
                        tracing::info!(remote = %self.url, "follow: the remote ended the watch; reconnecting");
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                }
            },
            None => loop {
                tokio::time::sleep(Duration::from_secs(self.settings.poll_interval_secs)).await;
                self.sync(&conn).await?;
            },
        }
    }

    /// Whether a followed branch in `list` differs from what we last saw.
    fn moved(&self, list: &[(bstr::BString, ObjectId)]) -> bool {
        let Ok(seen) = self.seen.lock() else { return true };
        self.settings.branches.iter().any(|b| {
            let name = format!("refs/heads/{b}");
            let remote = list.iter().find(|(n, _)| *n == name.as_str()).map(|(_, id)| *id);
            remote != seen.get(b).copied()
        })
    }

    /// Fetch the followed branches, vetted; publish what moved.
    async fn sync(&self, conn: &Remote) -> Result<(), ClientError> {
        let specs = self
            .settings
            .branches
            .iter()
            .map(|b| RefSpec::parse(&format!("+refs/heads/{b}:refs/heads/{b}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut request = FetchRequest::new(specs);
        request.prune = true;
        // The last refused value of each branch is not fetched again (it would be refused again).
        request.skip =
            self.status.refusals.lock().map(|r| r.values().map(|(commit, _)| *commit).collect()).unwrap_or_default();
        let governance = self.governance.clone();
        let trust = self.settings.trust;
        let trusted = self.settings.trust_from.as_deref().and_then(|id| ObjectId::from_hex(id.as_bytes()).ok());
        request.vet = Some(Box::new(move |view: &gix::Repository, change: &RefChange| {
            let update = ref_update(change);
            let mut why = governance.vet_fetched(view, &update).err().unwrap_or_default();
            if trust == Trust::Signatures && why.is_empty() {
                why = governance.vet_signatures(view, &update, trusted).err().unwrap_or_default();
            }
            if why.is_empty() {
                Ok(())
            } else {
                Err(why.join("; "))
            }
        }));
        let started = std::time::Instant::now();
        let outcome = fetch::fetch(conn, self.repo.clone(), request, Limits::default()).await?;
        self.status.last_success.store(now(), Ordering::Relaxed);
        self.status.behind_since.store(0, Ordering::Relaxed);
        if let Ok(mut last) = self.status.last_error.lock() {
            *last = None;
        }
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
            for r in &outcome.remote_refs {
                if let Some(b) = r.name.strip_prefix(b"refs/heads/") {
                    seen.insert(String::from_utf8_lossy(b).into_owned(), r.id);
                }
            }
        }
        for (name, why) in &outcome.rejected {
            let branch = hooks::branch_name(name);
            let Some(commit) = outcome.remote_refs.iter().find(|r| r.name == *name).map(|r| r.id) else { continue };
            tracing::warn!(remote = %self.url, %branch, %commit, reason = %why, "follow: fetched commit refused; the last good commit keeps serving");
            self.status.refused.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut r) = self.status.refusals.lock() {
                r.insert(branch, (commit, why.clone()));
            }
        }
        if !outcome.changes.is_empty() {
            let updates: Vec<RefUpdate> = outcome.changes.iter().map(ref_update).collect();
            for u in &updates {
                if let Ok(mut r) = self.status.refusals.lock() {
                    r.remove(&hooks::branch_name(&u.name));
                }
            }
            let governance = self.governance.clone();
            let repo = self.repo.clone();
            let messages = tokio::task::spawn_blocking(move || {
                let principal = Principal { id: "follow".into(), key_fingerprint: String::new() };
                let local = repo.local();
                governance.post_receive(&PostReceiveContext {
                    principal: &principal,
                    repository: repo.name(),
                    updates: &updates,
                    repo: &local,
                })
            })
            .await
            .map_err(|e| ClientError::Ssh(format!("publishing failed: {e}")))?;
            for m in messages {
                tracing::info!(remote = %self.url, "follow: {m}");
            }
            tracing::info!(remote = %self.url, objects = outcome.objects, ms = started.elapsed().as_millis() as u64, "follow: fetched and published");
        }
        self.update_notes();
        Ok(())
    }

    fn update_notes(&self) {
        for site in &self.sites {
            site.set_status_note(self.status.note(&self.settings.url, site.branch()));
        }
    }
}

/// A fetched ref change as the hooks see ref updates.
fn ref_update(change: &RefChange) -> RefUpdate {
    let null = ObjectId::null(gix::hash::Kind::Sha1);
    let kind = match (change.old, change.new) {
        (None, _) => UpdateKind::Create,
        (_, None) => UpdateKind::Delete,
        _ if change.forced => UpdateKind::NonFastForward,
        _ => UpdateKind::FastForward,
    };
    RefUpdate { name: change.name.clone(), old: change.old.unwrap_or(null), new: change.new.unwrap_or(null), kind }
}
