//! A command-line front end to the Git client, for benchmarks and for trying the client by hand:
//!
//! ```sh
//! git-client clone URL DIR   --key KEY (--known-hosts FILE | --fingerprint SHA256:…) [--v0]
//! git-client clone https://… DIR [--token-file FILE] [--ca-file PEM] [--v0]
//! git-client fetch URL DIR   …   # +refs/heads/*:refs/heads/*, +refs/tags/*:refs/tags/*
//! git-client push  URL DIR BRANCH …
//! ```
//!
//! It prints one line of what it did; errors go to stderr with exit status 1.

use std::path::PathBuf;
use std::sync::Arc;

use githost::client::{
    self, fetch, push, Connection, FetchRequest, HostKeyPolicy, HttpConnection, HttpOptions, PushCommand, PushRequest,
    RefSpec, Remote, RemoteUrl, SshOptions, Token,
};

fn usage() -> ! {
    eprintln!(
        "usage: git-client clone|fetch URL DIR | push URL DIR BRANCH  \
         (--key KEY (--known-hosts FILE | --fingerprint FP) | [--token-file FILE] [--ca-file PEM]) [--v0]"
    );
    std::process::exit(2)
}

/// How to reach the remote, from the flags.
enum Reach {
    Ssh(SshOptions),
    Http(HttpOptions),
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut take = |flag: &str| -> Option<String> {
        let i = args.iter().position(|a| a == flag)?;
        let value = args.get(i + 1).cloned();
        args.drain(i..(i + 2).min(args.len()));
        value
    };
    let key = take("--key");
    let host_key = match (take("--known-hosts"), take("--fingerprint")) {
        (Some(path), None) => Some(HostKeyPolicy::KnownHosts(PathBuf::from(path))),
        (None, Some(fp)) => Some(HostKeyPolicy::Fingerprint(fp)),
        (None, None) => None,
        _ => usage(),
    };
    let token_file = take("--token-file");
    let ca_file = take("--ca-file").map(PathBuf::from);
    let v0 = match args.iter().position(|a| a == "--v0") {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let reach = match (key, host_key) {
        (Some(key), Some(host_key)) => {
            let mut options = SshOptions::new(key, host_key);
            options.protocol_v2 = !v0;
            Reach::Ssh(options)
        }
        (None, None) => {
            let token = token_file.map(|f| Token::from_file(&PathBuf::from(f))).transpose().unwrap_or_else(|e| {
                eprintln!("error: {e}");
                std::process::exit(1)
            });
            Reach::Http(HttpOptions { token, ca_file, protocol_v2: !v0, ..HttpOptions::default() })
        }
        _ => usage(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    if let Err(e) = runtime.block_on(run(args, reach)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Vec<String>, reach: Reach) -> Result<(), client::ClientError> {
    let (command, url, dir) = match args.as_slice() {
        [c, u, d, ..] => (c.as_str(), u.as_str(), PathBuf::from(d)),
        _ => usage(),
    };
    let url = RemoteUrl::parse(url)?;
    let conn = match reach {
        Reach::Ssh(options) => Remote::Ssh(Connection::connect(&url, &options).await?),
        Reach::Http(options) => Remote::Http(HttpConnection::connect(&url, options).await?),
    };
    let limits = githost::Limits::default();
    match command {
        "clone" => {
            let (_, out) = client::clone(&conn, "clone", &dir, limits).await?;
            println!("cloned {} refs, {} objects, {} bytes", out.changes.len(), out.objects, out.bytes);
        }
        "fetch" => {
            let repo = Arc::new(githost::Repository::open_or_init("fetch", &dir)?);
            let specs =
                vec![RefSpec::parse("+refs/heads/*:refs/heads/*")?, RefSpec::parse("+refs/tags/*:refs/tags/*")?];
            let out = fetch::fetch(&conn, repo, FetchRequest::new(specs), limits).await?;
            println!("fetched {} ref updates, {} objects, {} bytes", out.changes.len(), out.objects, out.bytes);
        }
        "push" => {
            let branch = args.get(3).cloned().unwrap_or_else(|| usage());
            let repo = Arc::new(githost::Repository::open_or_init("push", &dir)?);
            let name = format!("refs/heads/{branch}");
            let tip = githost::refs::resolve(&repo.local(), name.as_bytes().into())?
                .ok_or_else(|| client::ClientError::Protocol(format!("no local branch {branch}")))?;
            let mut request = PushRequest::new(vec![PushCommand::update(name, tip)]);
            request.messages = Some(Box::new(|m| eprint!("remote: {m}")));
            let out = push::push(&conn, repo, request).await?;
            println!("pushed {} objects: {:?}", out.objects, out.refs);
            if !out.all_ok() {
                std::process::exit(1);
            }
        }
        _ => usage(),
    }
    conn.close().await;
    Ok(())
}
