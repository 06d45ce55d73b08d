//! `whispercms-server`: the binary. It parses the command line and `settings.toml`, wires the
//! library crates together and runs them until SIGTERM/Ctrl-C. No behaviour lives here but the
//! follow loop (`follow.rs`), which connects the Git client, the hooks and the sites.

mod backup;
mod follow;
mod handshake_log;
mod init;
mod log_format;
mod secrets_cli;
mod settings;
mod storage_check;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use githost::{AuthorizedKeys, GitHost, Repository};
use site_runtime::Site;

use crate::settings::Settings;

/// Counts what plugin calls allocate so the sandbox can stop one that grows without bound.
/// mimalloc underneath: with glibc's allocator the edge's worker threads contended on arena
/// locks (futex wake-ups in every response); mimalloc cut the edge's CPU per request by a fifth.
#[global_allocator]
static ALLOCATOR: site_runtime::extensions::memory::CountingAllocator<mimalloc::MiMalloc> =
    site_runtime::extensions::memory::CountingAllocator(mimalloc::MiMalloc);

#[derive(Parser)]
#[command(name = "whispercms-server", version, about = "A Git-native CMS server: push your site over SSH, it is live.")]
struct Cli {
    /// The settings file (see the README for every key and its default); default
    /// /etc/whispercms/settings.toml. With `demo`, only read when given.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve according to the settings file (the default).
    Serve,
    /// Rebuild a branch's index from scratch (the index is a cache of Git; this is always safe)
    /// and report how long it took.
    Reindex {
        /// The data directory (default: `data_dir` of the settings file).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The branch to index.
        #[arg(long, default_value = "main")]
        branch: String,
    },
    /// Set up a new server: a commented settings file (every key at its default), the host key,
    /// the preview secret and the secrets identity (0600), and the site repository with its
    /// first administrator. Asks for what is missing on a terminal; never overwrites.
    Init {
        /// The first administrator's public SSH key file (OpenSSH `.pub`; `-` reads it from stdin).
        #[arg(long)]
        admin_key: Option<PathBuf>,
        /// Their user id in access/users.toml.
        #[arg(long, default_value = "admin")]
        admin_id: String,
        /// The site's domain (its base URL becomes https://DOMAIN; the clone line uses it).
        #[arg(long)]
        domain: Option<String>,
        /// Where repositories, keys and indexes will live.
        #[arg(long, default_value = "/var/lib/whispercms")]
        data_dir: PathBuf,
        /// Start from the starter site (the default).
        #[arg(long, conflicts_with = "empty")]
        starter: bool,
        /// Start from a site with only its configuration and the administrator.
        #[arg(long)]
        empty: bool,
        /// SSH address (22 is usually the system's own sshd).
        #[arg(long, default_value = "0.0.0.0:2222")]
        ssh_listen: SocketAddr,
        /// Address of the public site.
        #[arg(long, default_value = "0.0.0.0:80")]
        http_listen: SocketAddr,
    },
    /// Write one archive of the site (a git bundle of every ref), the settings and the keys —
    /// while the server runs and takes pushes. It holds private keys: keep it as safe.
    Backup {
        /// The archive to write (a tar file, mode 0600).
        file: PathBuf,
        /// The data directory (default: `data_dir` of the settings file).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Restore an archive made by `backup` into an empty data directory, and its settings (with
    /// `data_dir` set to the new place) to the `--config` path. Never overwrites.
    Restore {
        /// The archive.
        file: PathBuf,
        /// The data directory to restore into (empty, or not there yet).
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Test access rules before pushing them.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Start a demo: data in ./whispercms-demo, generated keys, SSH on 127.0.0.1:2222.
    Demo {
        /// Where the demo keeps its repository and keys.
        #[arg(long, default_value = "whispercms-demo")]
        data_dir: PathBuf,
        /// SSH address (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:2222")]
        ssh_listen: SocketAddr,
        /// Address of the public site (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        http_listen: SocketAddr,
        /// Also serve the `admin` branch as a preview on this address.
        #[arg(long)]
        preview_listen: Option<SocketAddr>,
        /// Extra keys allowed to connect (OpenSSH authorized_keys format).
        #[arg(long)]
        authorized_keys: Option<PathBuf>,
        /// Serve /metrics (Prometheus text) on this admin-only address.
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
        /// Start with an empty repository instead of the starter site.
        #[arg(long)]
        empty: bool,
    },
    /// The site's secrets (`secrets/` of a checkout): recipient, get, set, edit, rotate.
    Secrets {
        #[command(subcommand)]
        command: secrets_cli::SecretsCommand,
    },
    /// Print a signed, expiring link to the preview for a user (who must be allowed to read the
    /// admin branch when the link is used).
    PreviewLink {
        /// The data directory (default: `data_dir` of the settings file).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The user the link is for (an id of access/users.toml).
        #[arg(long)]
        user: String,
        /// Hours the link stays valid.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        /// The preview's public URL (default: http://<[http] preview_listen>).
        #[arg(long)]
        base: Option<String>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Answer and explain one Cedar decision under a checkout's access/users.toml and
    /// policies/*.cedar (plus the built-in defaults). Exits 0 if allowed, 1 if denied, 2 if the
    /// rules themselves have problems.
    Check {
        /// The checkout of the site.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The user (an id of access/users.toml).
        #[arg(long)]
        user: String,
        /// Roles to assume instead of the user's own (repeatable), e.g. for a user not yet listed.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// read, push, create, delete, force-push (a branch) or change (a path).
        #[arg(long, value_parser = ["read", "push", "create", "delete", "force-push", "change"])]
        action: String,
        /// The path, for `change`.
        #[arg(long)]
        path: Option<String>,
        /// The branch (for `change`: the branch the path changes on).
        #[arg(long, default_value = "main")]
        branch: String,
    },
}

/// Logging to stderr, filtered by `WHISPERCMS_LOG`. Lines are written by a thread of their own,
/// in batches: an access-log line is handed over, not written by the request's thread (a
/// `write(2)` for each line took a third of the edge's throughput). The guard flushes what is
/// left when dropped. Colours only on a terminal.
fn init_logging() -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking(stderr);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::EnvFilter::try_from_env("WHISPERCMS_LOG").unwrap_or_else(|_| "info,russh=warn".into()),
        )
        .with(handshake_log::QuietHandshakeFailures)
        .with(
            tracing_subscriber::fmt::layer()
                // systemd sets JOURNAL_STREAM when stderr is the journal, which stamps lines itself.
                .event_format(log_format::LineFormat::new(std::env::var_os("JOURNAL_STREAM").is_none()))
                .with_writer(writer)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .init();
    guard
}

fn main() -> anyhow::Result<()> {
    let log_guard = init_logging();
    let cli = Cli::parse();
    let config_path = cli.config.clone().unwrap_or_else(|| PathBuf::from("/etc/whispercms/settings.toml"));
    // Built only once the keyring is installed (it sets environment variables: no threads yet).
    let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            if !config_path.exists() {
                anyhow::bail!(
                    "no settings file at {}: set up a server with `whispercms-server init` (or give --config FILE; \
                     `whispercms-server demo` tries one out)",
                    config_path.display()
                );
            }
            let settings = Settings::load(&config_path)?;
            let keyring = server_keyring(&settings)?;
            runtime()?.block_on(run(settings, Some(config_path), None, keyring))
        }
        Command::Init { admin_key, admin_id, domain, data_dir, starter: _, empty, ssh_listen, http_listen } => {
            init::run(init::Options {
                config: config_path,
                data_dir,
                admin_key,
                admin_id,
                domain,
                empty,
                ssh_listen,
                http_listen,
            })
        }
        Command::Backup { file, data_dir } => {
            let (mut settings, config) = match config_path.exists() {
                true => (Settings::load(&config_path)?, Some(config_path.as_path())),
                false if data_dir.is_some() => (Settings::default(), None),
                false => anyhow::bail!("no settings file at {}: give --data-dir", config_path.display()),
            };
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            backup::backup(&file, &settings, config)
        }
        Command::Restore { file, data_dir } => backup::restore(&file, &data_dir, &config_path),
        Command::Secrets { command } => secrets_cli::run(command, || {
            Ok(match config_path.exists() {
                true => Settings::load(&config_path)?.secrets_identity_path(),
                false => Settings::default().secrets_identity_path(),
            })
        }),
        Command::Reindex { data_dir, branch } => {
            let data_dir = match data_dir {
                Some(d) => d,
                None => Settings::load(&config_path)?.data_dir,
            };
            reindex(&data_dir, &branch)
        }
        Command::Policy { command: PolicyCommand::Check { dir, user, roles, action, path, branch } } => {
            let code = policy_check(&dir, &user, roles, &action, path.as_deref(), &branch)?;
            drop(log_guard);
            std::process::exit(code)
        }
        Command::PreviewLink { data_dir, user, hours, base } => {
            let data_dir = match data_dir {
                Some(d) => d,
                None => Settings::load(&config_path)?.data_dir,
            };
            let base = match base {
                Some(b) => b,
                None => {
                    let settings = Settings::load(&config_path)?;
                    let addr = settings.http.preview_listen.context("no [http] preview_listen; give --base")?;
                    format!("http://{addr}")
                }
            };
            let keys = ingress::PreviewKeys::new(&preview_secret(&data_dir)?);
            let expires = jiff::Timestamp::now().as_second() + hours as i64 * 3600;
            let token = keys.sign(&user, expires);
            let token: String =
                percent_encoding::utf8_percent_encode(&token, percent_encoding::NON_ALPHANUMERIC).to_string();
            println!("{}/?{}={token}", base.trim_end_matches('/'), ingress::preview::QUERY_PARAM);
            Ok(())
        }
        Command::Demo { data_dir, ssh_listen, http_listen, preview_listen, metrics_listen, authorized_keys, empty } => {
            // A settings file given with --config supplies everything the flags do not.
            let defaults = match &cli.config {
                Some(path) => Settings::load(path)?,
                None => Settings::default(),
            };
            let ssh = settings::SshSettings { listen: ssh_listen, authorized_keys, ..defaults.ssh.clone() };
            let http = settings::HttpSettings { listen: http_listen, preview_listen, metrics_listen };
            let settings = Settings { data_dir, ssh, http, ..defaults };
            let keyring = server_keyring(&settings)?;
            // The demo's settings are its flags over the file: not read again on SIGHUP.
            runtime()?.block_on(run(settings, None, Some(Demo { starter: !empty }), keyring))
        }
    }
}

/// The server's age identity (generated, mode 0600, on first start), installed as the keyring
/// the site's `secrets/` are opened with.
fn server_keyring(settings: &Settings) -> anyhow::Result<&'static secrets::Keyring> {
    let path = settings.secrets_identity_path();
    let (identity, generated) = secrets::Identity::load_or_generate(&path)
        .with_context(|| format!("the secrets identity ([secrets] identity) {}", path.display()))?;
    if generated {
        tracing::info!(path = %path.display(), "generated this server's age identity for secrets/");
    }
    tracing::info!(recipient = %identity.recipient(), "secrets/ files must be encrypted to this server's age recipient");
    Ok(secrets::Keyring::install(vec![identity])?)
}

/// `policy check`: print the decision and its explanation; returns the exit code.
fn policy_check(
    dir: &Path,
    user: &str,
    roles: Vec<String>,
    action: &str,
    path: Option<&str>,
    branch: &str,
) -> anyhow::Result<i32> {
    use hooks::authz::Resource;
    let resource = match (action, path) {
        ("change", Some(path)) => Resource::Path { path, branch },
        (_, None) if action != "change" => Resource::Branch(branch),
        _ => {
            eprintln!("--path goes with --action change (and only with it); other actions apply to --branch");
            return Ok(2);
        }
    };
    let access = match hooks::checkout::load(dir) {
        Ok(a) => a,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            eprintln!("the access rules of {} have problems; a push of them would be refused", dir.display());
            return Ok(2);
        }
    };
    let roles = if roles.is_empty() {
        match access.roles_of(user) {
            Some(r) => r.to_vec(),
            None => {
                eprintln!(
                    "note: {user} is not in {}; deciding with no role (use --role to assume one)",
                    hooks::users::PATH
                );
                Vec::new()
            }
        }
    } else {
        roles
    };
    let verdict = access.authz.explain(user, &roles, action, resource);
    println!("{}", verdict.explanation);
    Ok(if verdict.allowed { 0 } else { 1 })
}

/// Demo mode: generate and authorize a demo user key, print how to use it, and (unless asked
/// not to) seed an empty repository with the starter site.
struct Demo {
    starter: bool,
}

/// Serve until SIGTERM/Ctrl-C. `config` is the settings file read again on SIGHUP, if any.
async fn run(
    settings: Settings,
    config: Option<PathBuf>,
    demo: Option<Demo>,
    keyring: &'static secrets::Keyring,
) -> anyhow::Result<()> {
    let data_dir = &settings.data_dir;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let host_key_path = settings.host_key_path();
    let host_key = githost::keys::load_or_generate(&host_key_path, "whispercms host key")
        .with_context(|| format!("host key {}", host_key_path.display()))?;

    let mut keys = AuthorizedKeys::default();
    for (i, line) in settings.ssh.keys.iter().enumerate() {
        keys.extend(AuthorizedKeys::parse(line, &format!("settings ssh.keys[{i}]"))?);
    }
    if let Some(path) = &settings.ssh.authorized_keys {
        keys.extend(AuthorizedKeys::from_file(path)?);
    }
    let demo_key_path = data_dir.join("keys/demo_ed25519");
    if demo.is_some() {
        let key = githost::keys::load_or_generate(&demo_key_path, "demo")?;
        keys.add(key.public_key().clone(), "demo");
    }
    if keys.is_empty() {
        tracing::warn!("no SSH keys are authorized: nobody can connect (set ssh.keys or ssh.authorized_keys)");
    }

    let git_dir = data_dir.join("repos/site.git");
    let repo = Arc::new(Repository::open_or_init("site", &git_dir)?);
    // Pushes add packs; a background thread keeps their number bounded (githost::maintenance).
    repo.start_maintenance()?;
    let following = settings.follow.clone();

    // The public addresses belong to the edge (Pingora); the Axum sites listen on loopback behind
    // it. Port 0 is resolved first, so that the demo's starter site knows its own address.
    if settings.http.preview_listen == Some(settings.http.listen) && settings.http.listen.port() != 0 {
        anyhow::bail!(
            "[http] preview_listen is listen ({}): the preview needs an address of its own",
            settings.http.listen
        );
    }
    let http_addr = concrete_address(settings.http.listen)?;
    let preview_addr = settings.http.preview_listen.map(concrete_address).transpose()?;
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the site's loopback listener")?;
    let preview = match preview_addr {
        Some(_) => Some(
            tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the preview's loopback listener")?,
        ),
        None => None,
    };
    if demo.as_ref().is_some_and(|d| d.starter) && following.is_none() {
        let site_toml = site_runtime::starter::FILES
            .iter()
            .find(|(p, _)| *p == "site.toml")
            .map(|(_, t)| t.replace("http://127.0.0.1:8080", &format!("http://{http_addr}")))
            .unwrap_or_default();
        let demo_public = githost::keys::load_or_generate(&demo_key_path, "demo")?.public_key().to_openssh()?;
        let users = format!(
            "# Who may connect, with which SSH keys, in which roles (admin, publisher, editor, reader).\n\
             [[user]]\nid = \"demo\"\nname = \"Demo administrator\"\nroles = [\"admin\"]\nkeys = [\"{demo_public}\"]\n"
        );
        let extra = [("site.toml".to_string(), site_toml), (hooks::users::PATH.to_string(), users)];
        if let Some(commit) = site_runtime::starter::seed(&git_dir, "main", &extra)? {
            tracing::info!(%commit, "seeded the demo repository with the starter site");
        }
    }

    // Keys: the bootstrap keys from the settings (and the demo key), plus the users and the
    // policies of the live site's access/users.toml and policies/, reloaded whenever main moves.
    let repo_keys = Arc::new(hooks::users::RepoKeys::new(keys.into_entries()));
    let access = Arc::new(hooks::access::LiveAccess::new(repo_keys.clone()).map_err(anyhow::Error::msg)?);
    let local = gix::open_opts(&git_dir, githost::repository::open_options())?;
    access.follow_main(&local); // what cannot be loaded is logged there

    // Extensions run with the settings' limits; their capabilities are decided by the live
    // policies, and their webhooks leave through the outbox, which opens each snapshot's
    // secrets/ with the server's keyring.
    let mut webhooks = settings.webhooks.clone();
    if demo.is_some() {
        webhooks.entry("contact".into()).or_insert(site_runtime::extensions::outbox::Target {
            url: None,
            dir: Some(data_dir.join("outbox")),
            token: None,
        });
    }
    let extension_options = site_runtime::extensions::Options {
        limits: settings.extensions,
        capabilities: access.clone(),
        outbound: site_runtime::extensions::outbox::WebhookOutbox::start(webhooks, Some(keyring)),
    };
    let open_site = |branch: &str| -> anyhow::Result<Arc<Site>> {
        let site = Arc::new(Site::open(&git_dir, branch, data_dir.join(format!("index/{branch}.sqlite")))?);
        site.set_extension_options(extension_options.clone());
        site.set_content_security_policy(&settings.ingress.content_security_policy);
        publish_at_start(&site);
        Ok(site)
    };
    let live = open_site("main")?;
    let preview_site = match &preview {
        Some(_) => Some(open_site("admin")?),
        None => None,
    };
    // Damage done to the repository's files from outside (a disk, a restore), and a data
    // directory that stops taking writes or vanishes, are shown on `/readyz`; the last good
    // snapshot keeps serving.
    {
        let sites: Vec<Arc<Site>> = std::iter::once(live.clone()).chain(preview_site.clone()).collect();
        storage_check::spawn(data_dir.to_path_buf(), git_dir.clone(), sites)?;
    }
    // The preview's address for the push's message: its host name when one is set, else its listener.
    let preview_url = match (&settings.ingress.preview_host, preview_addr) {
        (Some(host), _) => Some(format!("{}://{host}", if settings.ingress.tls.is_some() { "https" } else { "http" })),
        (None, Some(addr)) => Some(format!("http://{addr}")),
        (None, None) => None,
    };
    let publisher = hooks::Publisher { live: live.clone(), preview: preview_site.clone(), preview_url };
    let governance = Arc::new(hooks::Governance { publisher, access: access.clone(), secrets: Some(keyring) });
    let host_hooks: Arc<dyn githost::Hooks> = match &following {
        Some(f) => Arc::new(follow::FollowerHooks { inner: governance.clone(), url: f.url.clone() }),
        None => governance.clone(),
    };
    let mut host = GitHost::new(repo_keys, host_hooks, settings.limits.to_limits());
    host.add_repository(repo.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let follower = match following {
        Some(f) => {
            let sites: Vec<Arc<Site>> = std::iter::once(live.clone()).chain(preview_site.clone()).collect();
            let follower = Arc::new(follow::Follower::new(f.clone(), repo.clone(), governance.clone(), sites)?);
            let (first_tx, first_rx) = tokio::sync::oneshot::channel();
            tokio::spawn(follower.clone().run(stop_rx.clone(), first_tx));
            // Serve what the remote has if it answers soon; otherwise what we had (it may be down).
            match tokio::time::timeout(std::time::Duration::from_secs(30), first_rx).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(remote = %f.url, "follow: the remote did not answer in 30 s; serving what we have")
                }
            }
            println!("following {}", f.url);
            Some(follower)
        }
        None => None,
    };

    // The edge: every public request is validated, rate limited, routed and logged there.
    let edge_config = ingress::Config { listen: http_addr, preview_listen: preview_addr, ..settings.ingress.clone() };
    let preview_keys = Arc::new(ingress::PreviewKeys::new(&preview_secret(data_dir)?));
    let metrics = Arc::new(ingress::Metrics::default());
    let http_upstream = http.local_addr()?;
    let live_upstream = ingress::Upstream { router: site_runtime::http::router(live.clone()), address: http_upstream };
    let preview_upstream = match (&preview, &preview_site) {
        (Some(listener), Some(site)) => Some(ingress::Upstream {
            router: site_runtime::http::router(site.clone()),
            address: listener.local_addr()?,
        }),
        _ => None,
    };
    let edge = ingress::Edge::new(
        edge_config,
        live_upstream,
        preview_upstream,
        preview_keys,
        Arc::new(PreviewByPolicy(access.clone())),
        metrics.clone(),
    );
    let edge = ingress::Ingress::start(edge)?;
    wait_until_listening(http_addr).await?;
    if let Some(p) = preview_addr {
        wait_until_listening(p).await?;
    }

    let listener = tokio::net::TcpListener::bind(settings.ssh.listen)
        .await
        .with_context(|| format!("listening on {}", settings.ssh.listen))?;
    let addr = listener.local_addr()?;
    println!("ssh listening on {addr}");
    println!("http listening on {http_addr}");
    println!("site upstream (loopback, behind the edge) on {}", http_upstream);
    if let Some(p) = preview_addr {
        println!("preview listening on {p}");
    }
    let metrics_listener = match settings.http.metrics_listen {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await.with_context(|| format!("listening on {a}"))?),
        None => None,
    };
    if let Some(m) = &metrics_listener {
        println!("metrics listening on {}", m.local_addr()?);
    }
    if demo.is_some() {
        let recipient = keyring.primary().map(secrets::Identity::recipient).unwrap_or_default();
        print_demo_help(data_dir, &demo_key_path, addr, http_addr, &host_key, &recipient)?;
    }
    use std::io::Write as _;
    std::io::stdout().flush()?;

    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(serve_http(http, live.clone(), stopped(stop_rx.clone())));
    let sites: Vec<Arc<Site>> = std::iter::once(live.clone()).chain(preview_site.clone()).collect();
    if let (Some(listener), Some(site)) = (preview, preview_site) {
        tasks.spawn(serve_http(listener, site, stopped(stop_rx.clone())));
    }
    if let Some(listener) = metrics_listener {
        let follow_status = follower.as_ref().map(|f| f.status.clone());
        tasks.spawn(serve_metrics(listener, metrics, sites, follow_status, stopped(stop_rx.clone())));
    }
    let ssh = githost::serve(Arc::new(host), listener, host_key, stopped(stop_rx.clone()));
    tasks.spawn(async move { ssh.await.map_err(anyhow::Error::from) });
    let reloading = tokio::spawn(reload_on_sighup(config, settings.clone(), edge.certificate()));
    shutdown_signal().await;
    reloading.abort();
    // The edge first: it stops accepting and lets in-flight requests finish against the sites.
    tokio::task::spawn_blocking(move || edge.stop()).await?;
    let _ = stop_tx.send(true);
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// `addr`, with port 0 replaced by a port free now (Pingora binds by address string and cannot
/// report the port it got), once it is known to be free: Pingora retries a taken address for 30 s
/// and then ends the edge's thread, which left a server that took pushes and served no page
/// (and the check that the edge listens found the other process).
fn concrete_address(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let probe = std::net::TcpListener::bind(addr)
        .with_context(|| format!("listening on {addr} (is another server running there?)"))?;
    Ok(probe.local_addr()?)
}

/// Wait (briefly) until the edge accepts connections on `addr`.
async fn wait_until_listening(addr: SocketAddr) -> anyhow::Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    anyhow::bail!("the edge did not start listening on {addr}")
}

/// The secret preview links are signed with: `<data_dir>/keys/preview_secret`, 32 random bytes
/// made on first use (mode 0600).
fn preview_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("keys/preview_secret");
    if let Ok(secret) = std::fs::read(&path) {
        if secret.len() >= 32 {
            return Ok(secret);
        }
    }
    std::fs::create_dir_all(data_dir.join("keys"))?;
    let secret: [u8; 32] = rand::random();
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&secret)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(secret.to_vec())
}

/// Preview links are honoured while their user may read the `admin` branch (Cedar, live rules).
struct PreviewByPolicy(Arc<hooks::access::LiveAccess>);

impl ingress::PreviewGate for PreviewByPolicy {
    fn allows(&self, user: &str) -> Result<(), String> {
        let roles = self.0.keys.roles_of(user);
        self.0.authz().check(user, &roles, "read", hooks::authz::Resource::Branch("admin"))
    }
}

/// `/metrics` on the admin listener: the edge's counters and each site's snapshot.
async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: Arc<ingress::Metrics>,
    sites: Vec<Arc<Site>>,
    follow: Option<Arc<follow::FollowStatus>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let render = move || {
        let mut text = metrics.render();
        if let Some(f) = &follow {
            text.push_str(&f.render());
        }
        text.push_str(&format!(
            "# HELP whispercms_tls_handshake_failures_total Client TLS handshakes that failed (scanners, \
             untrusted certificate, plain HTTP on the TLS port).\n# TYPE whispercms_tls_handshake_failures_total \
             counter\nwhispercms_tls_handshake_failures_total {}\n",
            handshake_log::FAILURES.load(std::sync::atomic::Ordering::Relaxed)
        ));
        text.push_str(
            "# HELP whispercms_snapshot_info The commit each branch serves.
# TYPE whispercms_snapshot_info gauge
",
        );
        let mut published = String::from(
            "# HELP whispercms_last_publish_timestamp_seconds When each branch was last published.
\
             # TYPE whispercms_last_publish_timestamp_seconds gauge
",
        );
        for site in &sites {
            if let Some(s) = site.snapshot() {
                text.push_str(&format!(
                    "whispercms_snapshot_info{{branch=\"{}\",commit=\"{}\"}} 1
",
                    site.branch(),
                    s.commit
                ));
                published.push_str(&format!(
                    "whispercms_last_publish_timestamp_seconds{{branch=\"{}\"}} {}
",
                    site.branch(),
                    s.published_at
                ));
            }
        }
        text.push_str(&published);
        text
    };
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], render()) }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(stop).await?;
    Ok(())
}

fn reindex(data_dir: &Path, branch: &str) -> anyhow::Result<()> {
    let index_path = data_dir.join(format!("index/{branch}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", index_path.display()));
    }
    let site = Site::open(&data_dir.join("repos/site.git"), branch, index_path)?;
    let mut progress = |p: site_runtime::index::Progress| {
        if p.done.is_multiple_of(5000) || p.done == p.total {
            tracing::info!(done = p.done, total = p.total, "parsing");
        }
    };
    let Some(published) = site.refresh(&mut progress)? else {
        anyhow::bail!("branch {branch} does not exist");
    };
    let docs = published.stats.documents.max(1);
    println!(
        "indexed {} documents and {} files of {} in {} ms ({:.3} ms/document)",
        published.stats.documents,
        published.stats.assets,
        published.commit,
        published.millis,
        published.millis as f64 / docs as f64
    );
    for (path, message) in site.problems()? {
        println!("not indexed: {path}: {message}");
    }
    Ok(())
}

/// Publish what the branch points at now (a no-op when the index is current); a failure leaves
/// the site unpublished (or serving nothing new), is logged and shown on `/readyz`, and the
/// server still starts and tries again in the background.
fn publish_at_start(site: &Arc<Site>) {
    let mut last_report = std::time::Instant::now();
    let mut progress = |p: site_runtime::index::Progress| {
        if last_report.elapsed().as_secs() >= 2 || p.done == p.total {
            tracing::info!(branch = site.branch(), done = p.done, total = p.total, "indexing");
            last_report = std::time::Instant::now();
        }
    };
    match site.refresh_or_retry(&mut progress) {
        Ok(Some(p)) => tracing::info!(branch = site.branch(), commit = %p.commit, ms = p.millis as u64, "site ready"),
        Ok(None) => tracing::info!(branch = site.branch(), "nothing to publish yet"),
        Err(e) => tracing::error!(branch = site.branch(), error = %e, "could not publish at start"),
    }
}

async fn serve_http(
    listener: tokio::net::TcpListener,
    site: Arc<Site>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, site_runtime::http::router(site)).with_graceful_shutdown(stop).await?;
    Ok(())
}

fn print_demo_help(
    data_dir: &Path,
    key: &Path,
    addr: SocketAddr,
    http_addr: SocketAddr,
    host_key: &githost::keys::PrivateKey,
    recipient: &str,
) -> anyhow::Result<()> {
    let known_hosts = data_dir.join("keys/known_hosts");
    let host_line = format!("[{}]:{} {}\n", addr.ip(), addr.port(), host_key.public_key().to_openssh()?);
    std::fs::write(&known_hosts, host_line)?;
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let ssh = format!(
        "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
        abs(key).display(),
        abs(&known_hosts).display()
    );
    println!(
        "\nWhisperCMS demo is running. The site: http://{http_addr}/\n\nClone it, commit, and push:\n\n  \
         GIT_SSH_COMMAND='{ssh}' git clone ssh://git@{addr}/site.git\n\n\
         (then, inside the clone: git add … && git commit && git push)\n\
         The contact form (http://{http_addr}/contact/) delivers to {}/outbox/.\n\
         Secrets (secrets/ in the site) are encrypted to this server's age recipient\n  {recipient}\n\
         e.g. inside the clone: whispercms-server secrets set --identity {}/keys/age.key secrets/webhooks.yaml contact.url\n\
         Stop with Ctrl-C. Data lives in {}.\n",
        abs(data_dir).display(),
        abs(data_dir).display(),
        abs(data_dir).display()
    );
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
/// SIGHUP (`systemctl reload`, a certbot deploy hook): read the TLS certificate and key again —
/// new connections get the new ones, open ones finish with theirs — and read the settings file
/// again, naming what changed in it: those settings take effect at the next start.
async fn reload_on_sighup(
    config: Option<PathBuf>,
    running: Settings,
    certificate: Option<Arc<ingress::certificate::Certificate>>,
) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reloading is off");
        return;
    };
    while hangups.recv().await.is_some() {
        if let Some(path) = &config {
            match Settings::load(path) {
                Ok(new) => {
                    let changed = running.needs_restart(&new);
                    if changed.is_empty() {
                        tracing::info!(path = %path.display(), "settings read again: unchanged");
                    } else {
                        tracing::warn!(
                            path = %path.display(),
                            changed = %changed.join(", "),
                            "settings changed that take effect only at the next start"
                        );
                    }
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), "settings not read again; the running ones stay"),
            }
        }
        if let Some(certificate) = &certificate {
            let (cert, key) = certificate.paths();
            match certificate.reload() {
                Ok(()) => tracing::info!(cert = %cert.display(), key = %key.display(), "reloaded the TLS certificate"),
                Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the one in use stays"),
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
