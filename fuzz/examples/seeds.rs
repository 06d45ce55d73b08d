//! Makes the seed corpus of every fuzz target (`fuzz/seeds/<target>/seed-*`) with the real
//! tools: `git` clones, fetches and pushes captured on the wire against the fixed repository
//! served by our own upload-pack and receive-pack (this program, run by `git` as
//! `--upload-pack`/`--receive-pack` through wrapper scripts that `tee` what the client sends: a
//! client's requests depend on what the server advertises), packs from `git pack-objects`,
//! the exec lines `git` sends over SSH, the starter site's and the Hugo and Zola fixtures' files,
//! a key from `ssh-keygen`, and request heads as browsers and curl send them.
//!
//! `cargo run -p whispercms-fuzz --example seeds`; run again after changing [`HISTORY`]
//! (`whispercms_fuzz::repo::HISTORY`): the captures name its object ids.

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

/// The seeds, by target and file name.
#[derive(Default)]
struct Seeds(BTreeMap<(&'static str, String), Vec<u8>>);

impl Seeds {
    fn add(&mut self, target: &'static str, name: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.0.insert((target, name.into()), data.into());
    }

    fn write(&self, root: &Path) -> Result {
        for ((target, name), data) in &self.0 {
            let dir = root.join(target);
            fs::create_dir_all(&dir)?;
            fs::write(dir.join(format!("seed-{name}")), data)?;
        }
        Ok(())
    }
}

fn run(command: &mut Command) -> Result<Vec<u8>> {
    let output = command.output()?;
    if !output.status.success() {
        return Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(output.stdout)
}

fn git(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.org")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.org")
        .env("GIT_AUTHOR_DATE", "1700001000 +0000")
        .env("GIT_COMMITTER_DATE", "1700001000 +0000");
    command
}

fn script(path: &Path, body: &str) -> Result {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, format!("#!/bin/sh\n{body}\n"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// A copy of the fixed repository to capture one conversation against.
fn copy_of_base(work: &Path, name: &str) -> Result<PathBuf> {
    let dir = work.join(name);
    whispercms_fuzz::repo::create(&dir);
    for (key, value) in [("uploadpack.allowFilter", "true"), ("receive.advertisePushOptions", "true")] {
        run(git(work).arg("--git-dir").arg(&dir).args(["config", key, value]))?;
    }
    Ok(dir)
}

/// Clones and fetches as `git` sends them (protocol `version`), captured at upload-pack's input;
/// what upload-pack answered goes to the packet-line seeds.
fn fetches(work: &Path, version: u8, seeds: &mut Seeds) -> Result {
    let target = if version == 2 { "upload_pack_v2" } else { "upload_pack_v0" };
    let base = copy_of_base(work, &format!("fetch-base-v{version}"))?;
    let url = format!("file://{}", base.display());
    let upload = work.join("upload.sh");
    let capture = |name: &str, seeds: &mut Seeds, args: &[&str], dir: &Path| -> Result {
        let input = work.join("capture.in");
        let output = work.join("capture.out");
        let _ = fs::remove_file(&input);
        let mut command = git(dir);
        command
            .env("CAPTURE_IN", &input)
            .env("CAPTURE_OUT", &output)
            .arg("-c")
            .arg(format!("protocol.version={version}"))
            .args(args);
        run(&mut command)?;
        seeds.add(target, name, fs::read(&input)?);
        seeds.add("pkt_line", format!("{target}-{name}-answer"), fs::read(&output)?);
        Ok(())
    };
    let up = format!("--upload-pack={}", upload.display());
    let clone = |dir: &str, extra: &[&str], name: &str, seeds: &mut Seeds| -> Result {
        let mut args = vec!["clone", "--quiet", "--bare", &up];
        args.extend_from_slice(extra);
        let dest = work.join(format!("{dir}-v{version}"));
        let dest_arg = dest.display().to_string();
        args.extend_from_slice(&[&url, &dest_arg]);
        capture(name, seeds, &args, work)
    };
    clone("clone", &[], "clone", seeds)?;
    clone("clone-depth", &["--depth=1"], "clone-depth-1", seeds)?;
    clone("clone-filter", &["--filter=blob:none"], "clone-filter-blob-none", seeds)?;
    clone("clone-branch", &["--single-branch", "--branch=admin", "--no-tags"], "clone-single-branch", seeds)?;
    // A fetch with something in common: a clone of the history one commit back (main~1 alone)
    // fetches the rest.
    let old = copy_of_base(work, &format!("old-v{version}"))?;
    run(git(work).arg("--git-dir").arg(&old).args(["update-ref", "refs/heads/main", "refs/heads/main~1"]))?;
    run(git(work).arg("--git-dir").arg(&old).args(["update-ref", "-d", "refs/heads/admin"]))?;
    run(git(work).arg("--git-dir").arg(&old).args(["update-ref", "-d", "refs/tags/v1"]))?;
    let behind = work.join(format!("behind-v{version}"));
    run(git(work).args(["clone", "--quiet", "--bare"]).arg(format!("file://{}", old.display())).arg(&behind))?;
    capture("fetch-haves", seeds, &["fetch", "--quiet", &up, &url, "+refs/heads/*:refs/heads/*", "--tags"], &behind)?;
    let shallow = work.join(format!("clone-depth-v{version}"));
    capture("fetch-deepen", seeds, &["fetch", "--quiet", &up, "--deepen=1", &url], &shallow)?;
    capture("ls-remote", seeds, &["ls-remote", &up, &url], work)?;
    capture("ls-remote-tags", seeds, &["ls-remote", "--tags", &up, &url, "refs/tags/v*"], work)?;
    Ok(())
}

/// Pushes as `git` sends them, captured at receive-pack's input (each against a fresh copy of
/// the fixed repository); the packs they carry and others from `git pack-objects`.
fn pushes(work: &Path, seeds: &mut Seeds) -> Result {
    let base = copy_of_base(work, "push-source.git")?;
    let checkout = work.join("checkout");
    run(git(work).args(["clone", "--quiet"]).arg(format!("file://{}", base.display())).arg(&checkout))?;
    fs::create_dir_all(checkout.join("content/blog"))?;
    fs::write(checkout.join("content/blog/third.md"), "+++\ntitle = \"Third\"\n+++\nMore [text](@/blog/hello.md).\n")?;
    fs::write(checkout.join("content/blog/hello.md"), "+++\ntitle = \"Hello again\"\n+++\nChanged.\n")?;
    run(git(&checkout).args(["add", "-A"]))?;
    run(git(&checkout).args(["commit", "--quiet", "-m", "Third"]))?;
    run(git(&checkout).args(["tag", "-a", "-m", "Second release", "v2"]))?;

    let receive = work.join("receive.sh");
    let input = work.join("capture.in");
    let push = |name: &str, args: &[&str], seeds: &mut Seeds| -> Result {
        let target = copy_of_base(work, &format!("push-{name}.git"))?;
        let _ = fs::remove_file(&input);
        let mut command = git(&checkout);
        command
            .env("CAPTURE_IN", &input)
            .args(["push", "--quiet"])
            .arg(format!("--receive-pack={}", receive.display()))
            .args(args.iter().take_while(|a| a.starts_with('-')))
            .arg(format!("file://{}", target.display()))
            .args(args.iter().skip_while(|a| a.starts_with('-')));
        run(&mut command)?;
        let captured = fs::read(&input)?;
        if let Some(at) = captured.windows(4).position(|w| w == b"PACK") {
            seeds.add("pushed_pack", format!("push-{name}"), captured[at..].to_vec());
        }
        seeds.add("pkt_line", format!("push-{name}"), captured.clone());
        for (version, prefix) in [("v0", 0u8), ("v1", 1)] {
            let mut data = vec![prefix];
            data.extend_from_slice(&captured);
            seeds.add("receive_pack", format!("{name}-{version}"), data);
        }
        Ok(())
    };
    push("fast-forward", &["main"], seeds)?;
    push("branch-and-tag", &["HEAD:refs/heads/preview/x", "v2"], seeds)?;
    push("delete", &[":refs/heads/admin"], seeds)?;
    push("rewind", &["--force", "HEAD~2:refs/heads/main"], seeds)?;
    push("options", &["--push-option=ci.skip", "--push-option=note=hi", "main"], seeds)?;
    push("atomic", &["--atomic", "main", "HEAD:refs/heads/feature"], seeds)?;

    let packs = |name: &str, revs: &str, extra: &[&str], seeds: &mut Seeds| -> Result {
        let mut command = git(&checkout);
        command.args(["pack-objects", "--quiet", "--revs", "--stdout"]).args(extra);
        let mut child = command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn()?;
        std::io::Write::write_all(child.stdin.as_mut().ok_or("stdin")?, revs.as_bytes())?;
        drop(child.stdin.take());
        let output = child.wait_with_output()?;
        if !output.status.success() {
            return Err(format!("git pack-objects {name} failed").into());
        }
        seeds.add("pushed_pack", name.to_string(), output.stdout);
        Ok(())
    };
    packs("everything", "", &["--all"], seeds)?;
    packs("everything-ref-delta", "", &["--all", "--no-delta-base-offset"], seeds)?;
    packs("thin", "main\n^origin/main\n", &["--thin"], seeds)?;
    packs("new-only", "main\n^origin/main\n", &[], seeds)?;
    Ok(())
}

/// The exec lines `git` sends over SSH, from a stand-in `ssh` that writes its last argument.
fn exec_lines(work: &Path, seeds: &mut Seeds) -> Result {
    let ssh = work.join("ssh.sh");
    let line = work.join("exec-line");
    // `-G` is git asking which ssh this is: answer as OpenSSH does, so git passes ports and
    // protocol versions as it does to the real one.
    script(
        &ssh,
        &format!(
            "[ \"$1\" = -G ] && exit 0\nfor a; do last=\"$a\"; done; printf '%s' \"$last\" > {}; exit 1",
            line.display()
        ),
    )?;
    for (name, args) in [
        ("upload-ssh-url", vec!["ls-remote", "ssh://git@example.org:2222/site.git"]),
        ("upload-scp", vec!["ls-remote", "git@example.org:site"]),
        ("upload-home", vec!["ls-remote", "ssh://git@example.org/~/site.git"]),
        ("upload-quote", vec!["ls-remote", "ssh://git@example.org/it's.git"]),
        ("receive", vec!["push", "ssh://git@example.org/site.git", "main"]),
    ] {
        let _ = fs::remove_file(&line);
        let _ = git(&work.join("checkout")).env("GIT_SSH_COMMAND", &ssh).args(&args).output()?;
        seeds.add("ssh_command", name, fs::read(&line).map_err(|e| format!("git {args:?} sent no exec line: {e}"))?);
    }
    seeds.add("ssh_command", "watch", "whispercms-watch-refs '/site.git'");
    seeds.add("ssh_command", "git-space", "git upload-pack '~/site.git'");
    Ok(())
}

/// Every file under `dir` (recursively) whose name ends with `suffix`.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A seed's name from a file's path under the repository.
fn name_of(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('/', "_")
}

fn site_files(root: &Path, seeds: &mut Seeds) -> Result {
    let sites = ["site-runtime/starter", "tests/fixtures/hugo-site", "tests/fixtures/zola-site"];
    for site in sites {
        for file in files(&root.join(site), ".md") {
            let text = fs::read(&file)?;
            seeds.add("markdown", name_of(root, &file), text.clone());
            seeds.add("front_matter", name_of(root, &file), text);
        }
        for file in files(&root.join(site), "site.toml") {
            seeds.add("site_toml", name_of(root, &file), fs::read(&file)?);
        }
    }
    for file in files(&root.join("site-runtime/starter/plugins"), "plugin.toml") {
        // The target's plugin lives in `plugins/fuzz/`: its name must be `fuzz` to be accepted.
        let text = fs::read_to_string(&file)?;
        let renamed: Vec<String> = text
            .lines()
            .map(|l| if l.starts_with("name = ") { "name = \"fuzz\"".to_string() } else { l.to_string() })
            .collect();
        seeds.add("plugin_toml", name_of(root, &file), renamed.join("\n") + "\n");
    }
    for dir in ["site-runtime/themes", "tests/fixtures/zola-site/themes"] {
        for file in files(&root.join(dir), "theme.toml") {
            seeds.add("theme_toml", name_of(root, &file), fs::read(&file)?);
        }
    }
    seeds.add(
        "theme_toml",
        "csp",
        "name = \"cdn\"\n[content_security_policy]\nscript-src = [\"https://cdn.example.com\", \"'sha256-abc='\"]\n\
         img-src = [\"https:\"]\n",
    );
    for file in
        files(&root.join("policies"), ".cedar").into_iter().chain(files(&root.join("site-runtime/starter"), ".cedar"))
    {
        seeds.add("cedar_policies", name_of(root, &file), fs::read(&file)?);
    }
    seeds.add(
        "cedar_policies",
        "translator",
        "@id(\"translators\")\npermit (principal in WhisperCMS::Role::\"translator\", action == WhisperCMS::Action::\"change\", \
         resource)\nwhen { resource.area == \"content\" && context.branch == \"admin\" };\n",
    );
    Ok(())
}

fn users(work: &Path, seeds: &mut Seeds) -> Result {
    let key = work.join("id_ed25519");
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "ada@laptop", "-f"]).arg(&key))?;
    let public = fs::read_to_string(key.with_extension("pub"))?;
    let users = format!(
        "[[user]]\nid = \"ada\"\nname = \"Ada Lovelace\"\nkeys = [\"{}\"]\nroles = [\"admin\"]\n\n\
         [[user]]\nid = \"bob\"\nroles = [\"editor\", \"reader\"]\n\
         age = \"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"\n",
        public.trim()
    );
    seeds.add("users_toml", "two-users", users);
    Ok(())
}

fn edge(seeds: &mut Seeds) {
    let heads = [
        ("curl", "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*"),
        (
            "chromium",
            "GET /blog/hello-world/?utm=1 HTTP/1.1\r\nHost: localhost:8080\r\nConnection: keep-alive\r\n\
             Upgrade-Insecure-Requests: 1\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0\r\n\
             Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8\r\nSec-Fetch-Mode: navigate\r\n\
             Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\nCookie: whispercms_preview=1",
        ),
        ("escaped", "GET /tags/caf%C3%A9/page/2/ HTTP/1.1\r\nHost: a"),
        (
            "post",
            "POST /contact HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 9",
        ),
        ("search", "GET /search?q=git+push HTTP/1.1\r\nHost: a"),
    ];
    for (name, head) in heads {
        seeds.add("edge_request", name, head);
    }
    seeds.add("csp", "script", "script-src\nhttps://cdn.example.com\n'sha256-abc='\n'self'");
    seeds.add("csp", "frame", "frame-src\nhttps://www.youtube-nocookie.com");
    seeds.add("csp", "img", "img-src\nhttps:\ndata:");
    let keys = ingress::PreviewKeys::new(&[7; 32]);
    let token = keys.sign("ada", 1_700_000_600);
    seeds.add("preview_token", "token", token.clone());
    seeds.add("preview_token", "expired", keys.sign("bob", 1_600_000_000));
    seeds.add("preview_token", "query", format!("a=1&preview={token}&b=2"));
    seeds.add("preview_token", "cookie", format!("theme=dark; whispercms_preview={token}"));
}

/// `seeds --serve upload-pack|receive-pack PATH`: our service on stdin and stdout, for `git`.
fn serve(service: &str, path: &str) -> Result {
    use githost::protocol::ProtocolVersion;
    let version = ProtocolVersion::from_env(&std::env::var("GIT_PROTOCOL").unwrap_or_default());
    let repo = githost::Repository::open_or_init("site", path)?;
    let (input, output) = (std::io::stdin().lock(), std::io::stdout());
    match service {
        "upload-pack" => {
            githost::upload_pack::UploadPack { repo: &repo, version, budget: None }.serve(input, output)?
        }
        "receive-pack" => {
            let principal = githost::Principal { id: "seeds".into(), key_fingerprint: "SHA256:seeds".into() };
            let limits = githost::Limits::default();
            let hooks = githost::AllowAll;
            githost::receive_pack::ReceivePack {
                repo: &repo,
                hooks: &hooks,
                principal: &principal,
                limits: &limits,
                version,
            }
            .serve(input, output)?
        }
        other => return Err(format!("no service {other}").into()),
    }
    Ok(())
}

fn main() -> Result {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, service, path] = args.as_slice() {
        if flag == "--serve" {
            return serve(service, path);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("the repository root")?.to_path_buf();
    let work = tempfile_dir()?;
    let me = std::env::current_exe()?.display().to_string();
    script(
        &work.join("upload.sh"),
        &format!("tee \"$CAPTURE_IN\" | {me} --serve upload-pack \"$@\" | tee \"$CAPTURE_OUT\""),
    )?;
    script(&work.join("receive.sh"), &format!("tee \"$CAPTURE_IN\" | {me} --serve receive-pack \"$@\""))?;
    let mut seeds = Seeds::default();
    fetches(&work, 0, &mut seeds)?;
    fetches(&work, 2, &mut seeds)?;
    pushes(&work, &mut seeds)?;
    exec_lines(&work, &mut seeds)?;
    site_files(&root, &mut seeds)?;
    users(&work, &mut seeds)?;
    edge(&mut seeds);
    for name in ["refs/heads/main", "refs/heads/preview/x", "refs/tags/v1.0", "refs/heads/a/b/c", "refs/notes/commits"]
    {
        seeds.add("ref_name", name.replace('/', "_"), name);
    }
    for (name, text) in whispercms_fuzz::repo::HISTORY.split("data <<END\n").skip(1).enumerate() {
        let blob = text.split("\nEND\n").next().unwrap_or_default();
        seeds.add("markdown", format!("history-{name}"), blob);
        seeds.add("front_matter", format!("history-{name}"), blob);
    }
    seeds.write(&root.join("fuzz/seeds"))?;
    fs::remove_dir_all(&work)?;
    eprintln!("{} seeds written", seeds.0.len());
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("whispercms-fuzz-seeds-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}
