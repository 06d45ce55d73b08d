//! `whispercms-server`: the binary. It parses the command line and `settings.toml`, wires the
//! library crates together and runs them until SIGTERM/Ctrl-C. No behaviour lives here.

mod settings;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use githost::{AuthorizedKeys, GitHost, Repository};

use crate::settings::Settings;

#[derive(Parser)]
#[command(name = "whispercms-server", version, about = "A Git-native CMS server: push your site over SSH, it is live.")]
struct Cli {
    /// The settings file (see the README for every key and its default).
    #[arg(long, global = true, default_value = "/etc/whispercms/settings.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve according to the settings file (the default).
    Serve,
    /// Start a demo: data in ./whispercms-demo, generated keys, SSH on 127.0.0.1:2222.
    Demo {
        /// Where the demo keeps its repository and keys.
        #[arg(long, default_value = "whispercms-demo")]
        data_dir: PathBuf,
        /// SSH address (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:2222")]
        ssh_listen: SocketAddr,
        /// Extra keys allowed to connect (OpenSSH authorized_keys format).
        #[arg(long)]
        authorized_keys: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHISPERCMS_LOG").unwrap_or_else(|_| "info,russh=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let settings = Settings::load(&cli.config)?;
            runtime.block_on(run(settings, None))
        }
        Command::Demo { data_dir, ssh_listen, authorized_keys } => {
            let defaults = Settings::default();
            let ssh = settings::SshSettings { listen: ssh_listen, authorized_keys, ..defaults.ssh.clone() };
            let settings = Settings { data_dir, ssh, ..defaults };
            runtime.block_on(run(settings, Some(Demo)))
        }
    }
}

/// Marker: generate and authorize a demo user key, print how to use it.
struct Demo;

async fn run(settings: Settings, demo: Option<Demo>) -> anyhow::Result<()> {
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

    let repo = Repository::open_or_init("site", data_dir.join("repos/site.git"))?;
    let mut host = GitHost::new(Arc::new(keys), Arc::new(githost::AllowAll), settings.limits.to_limits());
    host.add_repository(Arc::new(repo));

    let listener = tokio::net::TcpListener::bind(settings.ssh.listen)
        .await
        .with_context(|| format!("listening on {}", settings.ssh.listen))?;
    let addr = listener.local_addr()?;
    println!("ssh listening on {addr}");
    if demo.is_some() {
        print_demo_help(data_dir, &demo_key_path, addr, &host_key)?;
    }
    use std::io::Write as _;
    std::io::stdout().flush()?;

    githost::serve(Arc::new(host), listener, host_key, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn print_demo_help(
    data_dir: &Path,
    key: &Path,
    addr: SocketAddr,
    host_key: &githost::keys::PrivateKey,
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
        "\nWhisperCMS demo is running. Clone the site, commit, and push:\n\n  \
         GIT_SSH_COMMAND='{ssh}' git clone ssh://git@{addr}/site.git\n\n\
         (then, inside the clone: git add … && git commit && git push)\n\
         Stop with Ctrl-C. Data lives in {}.\n",
        abs(data_dir).display()
    );
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
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
