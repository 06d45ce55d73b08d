//! Every input kept for the fuzz targets, replayed as an ordinary test: the seeds made by the
//! real tools (`seeds/<target>/`), what fuzzing kept (`corpus/<target>/`, minimized) and the
//! inputs that once broke a property (`regressions/<target>/`, each fixed since). No fuzzing
//! happens here.

use std::path::Path;

/// Run `target` on every file in `dir` (none if it does not exist); the first that fails.
fn replay(dir: &Path, target: whispercms_fuzz::Target) -> Result<usize, String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    let mut files: Vec<_> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        std::panic::catch_unwind(|| target(&data)).map_err(|_| format!("{} fails its properties", file.display()))?;
    }
    Ok(files.len())
}

#[test]
fn every_kept_input_still_holds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    let mut total = 0;
    for (name, target) in whispercms_fuzz::TARGETS {
        let mut kept = 0;
        for dir in ["seeds", "corpus", "regressions"] {
            match replay(&root.join(dir).join(name), *target) {
                Ok(0) if dir == "seeds" => {
                    failures.push(format!("{name}: no seeds (run `cargo run -p whispercms-fuzz --example seeds`)"))
                }
                Ok(n) => kept += n,
                Err(failure) => failures.push(format!("{name}: {failure}")),
            }
        }
        total += kept;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{total} inputs replayed");
}

/// The protocol seeds get where the fuzzing matters: captured against the fixed repository, a
/// clone's request is answered with a pack and a push's reaches the pre-receive hook (which
/// refuses it) — not refused at the first object id the repository does not know.
#[test]
fn protocol_seeds_reach_the_pack_and_the_hook() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let read = |target: &str, name: &str| std::fs::read(corpus.join(target).join(name)).expect("a seed");
    let contains = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    for (target, version) in [
        ("upload_pack_v0", githost::protocol::ProtocolVersion::V0),
        ("upload_pack_v2", githost::protocol::ProtocolVersion::V2),
    ] {
        for seed in ["seed-clone", "seed-fetch-haves", "seed-clone-depth-1", "seed-fetch-deepen"] {
            let answer = whispercms_fuzz::upload_pack_answer(&read(target, seed), version);
            assert!(contains(&answer, b"PACK"), "{target}/{seed} is answered without a pack");
        }
    }
    for seed in ["seed-fast-forward-v0", "seed-branch-and-tag-v1", "seed-options-v0", "seed-atomic-v0"] {
        let answer = whispercms_fuzz::receive_pack_answer(&read("receive_pack", seed));
        assert!(contains(&answer, b"fuzzing: nothing is stored"), "receive_pack/{seed} does not reach the hook");
    }
}
