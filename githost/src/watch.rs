//! `whispercms-watch-refs '<repo>'`: how a follower learns at once that refs moved, without
//! polling.
//!
//! A follower runs this command over the same SSH endpoint as `git-upload-pack` (and is
//! authorized the same way, as a reader). The server answers with the repository's refs as
//! packet lines (`<id> <name>`, then a flush), and again each time a ref transaction of this
//! process changes them; nothing else is sent, and no timer runs on the server for a watcher:
//! an idle follower costs one parked task and the client's SSH keepalives. The channel ends when
//! the client closes it, the session's time limit is reached or the server shuts down; the
//! follower reconnects.
//!
//! A server that does not know the command (a plain Git host) refuses it, and followers fall
//! back to polling with an up-to-date check.

use std::net::SocketAddr;
use std::sync::Arc;

use russh::server::Msg;
use russh::{Channel, ChannelMsg};

use crate::pktline;
use crate::refs;
use crate::repository::Repository;

/// The command name followers run.
pub const PROGRAM: &str = "whispercms-watch-refs";

/// The refs of `repo` as the watch sends them: one `<id> <name>` packet line each, then a flush.
pub fn encode_refs(repo: &Repository) -> crate::Result<Vec<u8>> {
    let mut out = Vec::new();
    for r in refs::list(&repo.local())? {
        pktline::write_text(&mut out, format!("{} {}", r.id, r.name))?;
    }
    pktline::write_flush(&mut out)?;
    Ok(out)
}

/// Serve one watcher of `repo` (already authorized) until it leaves or `closing` turns true.
pub(crate) async fn serve(
    repo: Arc<Repository>,
    mut closing: tokio::sync::watch::Receiver<bool>,
    ch: Channel<Msg>,
    user: &str,
    peer: SocketAddr,
) {
    tracing::info!(%peer, %user, repository = repo.name(), "watching refs");
    let mut generation = repo.subscribe();
    let (mut read_half, write_half) = ch.split();
    let mut last: Option<Vec<u8>> = None;
    loop {
        generation.borrow_and_update();
        let listed = {
            let repo = repo.clone();
            tokio::task::spawn_blocking(move || encode_refs(&repo)).await
        };
        let bytes = match listed {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "listing refs for a watcher failed");
                break;
            }
            Err(_) => break,
        };
        if last.as_ref() != Some(&bytes) {
            if write_half.data(&bytes[..]).await.is_err() {
                break;
            }
            last = Some(bytes);
        }
        let client_left = loop {
            tokio::select! {
                changed = generation.changed() => break changed.is_err(),
                _ = closing.wait_for(|c| *c) => break true,
                msg = read_half.wait() => match msg {
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break true,
                    Some(_) => continue,
                },
            }
        };
        if client_left || *closing.borrow() {
            break;
        }
    }
    tracing::debug!(%peer, %user, "watcher left");
    let _ = write_half.exit_status(0).await;
    let _ = write_half.eof().await;
    let _ = write_half.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::Service;

    #[test]
    fn the_command_is_parsed_and_named_alike() {
        assert_eq!(Service::WatchRefs.program(), PROGRAM);
        let cmd = crate::command::parse(&format!("{PROGRAM} '/site.git'")).unwrap();
        assert_eq!((cmd.service, cmd.repository.as_str()), (Service::WatchRefs, "site"));
    }
}
