//! The CMS's side of a push: [`validate`] before anything is stored (pre-receive), [`publish`]
//! after the refs moved (post-receive). [`Governance`] plugs both into the Git host.
//!
//! Authorization with Cedar policies joins here next (see the open issue); until then every
//! authenticated key may push.

pub mod publish;
pub mod users;
pub mod validate;

use githost::{Hooks, PostReceiveContext, PreReceive, PushContext, UpdateKind};

pub use publish::Publisher;

/// The hooks the server runs on every push.
pub struct Governance {
    /// Publishes `main` and `admin`.
    pub publisher: Publisher,
}

/// Branches that hold a site and are validated: the live site, the preview and working
/// branches. Other refs (tags, other branches) are stored as they are.
pub fn is_site_branch(name: &[u8]) -> bool {
    name == b"refs/heads/main" || name == b"refs/heads/admin" || name.starts_with(b"refs/heads/preview/")
}

impl Hooks for Governance {
    fn pre_receive(&self, push: &PushContext<'_>) -> PreReceive {
        let mut verdict = PreReceive::accept();
        for update in push.updates {
            if update.kind == UpdateKind::Delete || !is_site_branch(&update.name) {
                continue;
            }
            let old = (!update.old.is_null()).then_some(update.old);
            match validate::validate(push.repo, old, update.new) {
                Ok(problems) if problems.is_empty() => {}
                Ok(problems) => {
                    verdict.messages.push(format!(
                        "{}: {} problem(s), nothing was stored:",
                        update.name,
                        problems.len()
                    ));
                    for p in &problems {
                        verdict.messages.push(format!("  {p}"));
                    }
                    let first = &problems[0];
                    let reason = if problems.len() == 1 {
                        first.to_string()
                    } else {
                        format!("{first} (and {} more, see above)", problems.len() - 1)
                    };
                    verdict.refused.push((update.name.clone(), reason));
                }
                Err(e) => verdict.refused.push((update.name.clone(), format!("could not validate: {e}"))),
            }
        }
        verdict
    }

    fn post_receive(&self, push: &PostReceiveContext<'_>) -> Vec<String> {
        self.publisher.post_receive(push)
    }
}
