//! Fuzz targets for everything the server parses from outside: one function per kind of input,
//! taking the fuzzer's bytes, running the server's own parser on them as the server does, and
//! panicking when a property fails — not only "no panic", but what the parse promises (a path
//! accepted never escapes the site, a pack accepted is one `git index-pack --strict` accepts,
//! what push checks find is what the site serves, a packet line read and written back reads the
//! same).
//!
//! The same functions run twice: under libFuzzer (`fuzz_targets/`, `scripts/fuzz.sh`), and in
//! `tests/corpora.rs`, which replays every input kept in `seeds/<target>/` (made by the real
//! tools), `corpus/<target>/` (what fuzzing found worth keeping) and `regressions/<target>/` (inputs that once
//! broke a property) as an ordinary test of the workspace.

mod content;
mod edge;
mod git;
mod governance;
pub mod repo;

pub use content::{front_matter, markdown, plugin_toml, site_toml, theme_toml};
pub use edge::{csp, edge_request, preview_token};
pub use git::{
    pkt_line, pushed_pack, receive_pack, receive_pack_answer, ref_name, ssh_command, upload_pack_answer,
    upload_pack_v0, upload_pack_v2,
};
pub use governance::{cedar_policies, users_toml};

/// A fuzz target: the fuzzer's bytes in, a panic when a property fails.
pub type Target = fn(&[u8]);

/// Every target by the name of its binary and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("pkt_line", pkt_line),
    ("ssh_command", ssh_command),
    ("receive_pack", receive_pack),
    ("upload_pack_v0", upload_pack_v0),
    ("upload_pack_v2", upload_pack_v2),
    ("pushed_pack", pushed_pack),
    ("ref_name", ref_name),
    ("front_matter", front_matter),
    ("site_toml", site_toml),
    ("plugin_toml", plugin_toml),
    ("theme_toml", theme_toml),
    ("users_toml", users_toml),
    ("cedar_policies", cedar_policies),
    ("markdown", markdown),
    ("edge_request", edge_request),
    ("csp", csp),
    ("preview_token", preview_token),
];

/// The fuzzer's bytes as text: the parsers of text files take what `from_utf8_lossy` would give
/// them, as the server reads a blob (invalid UTF-8 is refused before any of them runs).
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
