//! `whispercms-server secrets …`: the operator's and admin's side of the site's `secrets/`,
//! on a checkout (commit and push as usual). Like `sops`, with WhisperCMS's rule for who a
//! file is encrypted to (`secrets::recipients`, shared with the desktop app).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use secrets::{Document, Identity, Keyring};

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Print the age recipient of this server's identity (what `secrets/` must be encrypted to).
    Recipient {
        /// The identity file (default: `[secrets] identity` of the settings).
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Print one value of a secrets file (KEY is dot-separated: `contact.token`).
    Get {
        file: PathBuf,
        key: String,
        #[arg(long)]
        identity: Option<PathBuf>,
    },
    /// Set one value from standard input (one trailing newline dropped); makes the file if needed.
    Set {
        file: PathBuf,
        key: String,
        #[arg(long)]
        identity: Option<PathBuf>,
        /// Also encrypt to this age recipient (repeatable).
        #[arg(long)]
        recipient: Vec<String>,
    },
    /// Decrypt into a private temporary file, run $EDITOR on it, encrypt what was saved.
    Edit {
        file: PathBuf,
        #[arg(long)]
        identity: Option<PathBuf>,
        #[arg(long)]
        recipient: Vec<String>,
    },
    /// Encrypt files anew with a new data key, to the current recipients.
    Rotate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        identity: Option<PathBuf>,
        #[arg(long)]
        recipient: Vec<String>,
    },
}

impl SecretsCommand {
    fn identity_flag(&self) -> Option<&Path> {
        match self {
            SecretsCommand::Recipient { identity }
            | SecretsCommand::Get { identity, .. }
            | SecretsCommand::Set { identity, .. }
            | SecretsCommand::Edit { identity, .. }
            | SecretsCommand::Rotate { identity, .. } => identity.as_deref(),
        }
    }
}

/// Run one command. `default_identity` is the settings' identity path. Call before any thread
/// is started: the keyring is installed here.
pub fn run(command: SecretsCommand, default_identity: impl FnOnce() -> anyhow::Result<PathBuf>) -> anyhow::Result<()> {
    let path = match command.identity_flag() {
        Some(p) => p.to_path_buf(),
        None => default_identity()?,
    };
    let identity = Identity::load(&path).with_context(|| {
        format!("no usable age identity at {} (give --identity, or start the server once to make it)", path.display())
    })?;
    if let SecretsCommand::Recipient { .. } = command {
        println!("{}", identity.recipient());
        return Ok(());
    }
    let keyring = Keyring::install(vec![identity])?;
    match command {
        SecretsCommand::Recipient { .. } => unreachable!("answered above"),
        SecretsCommand::Get { file, key, .. } => {
            let doc = read(&file)?.with_context(|| format!("{} does not exist", file.display()))?;
            let tree = doc.decrypt(keyring).with_context(|| file.display().to_string())?;
            let parts: Vec<&str> = key.split('.').collect();
            let value = tree.value(&parts).with_context(|| format!("{}: no value {key}", file.display()))?;
            let mut out = std::io::stdout().lock();
            out.write_all(value.expose().as_bytes())?;
            if out.is_terminal() {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        SecretsCommand::Set { file, key, recipient, .. } => {
            let mut value = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut value).context("reading the value from standard input")?;
            let value = value.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&value);
            let checkout = Checkout::of(&file, &recipient)?;
            let people = hooks::users::secrets_people(&checkout.users);
            let recipients = secrets::file::set(&file, &key, value, &checkout.secrets, &recipient, keyring, &people)
                .with_context(|| file.display().to_string())?;
            eprintln!("{}: {key} set; encrypted to {} recipient(s)", file.display(), recipients.len());
            Ok(())
        }
        SecretsCommand::Edit { file, recipient, .. } => edit(&file, &recipient, keyring),
        SecretsCommand::Rotate { files, recipient, .. } => {
            for file in files {
                let doc = read(&file)?.with_context(|| format!("{} does not exist", file.display()))?;
                let plain = doc.plaintext(keyring).with_context(|| file.display().to_string())?;
                let recipients = recipients_for(&file, Some(&doc), &recipient, keyring)?;
                let rotated = Document::encrypt(doc.format(), &plain, &recipients)?;
                secrets::file::write(&file, &rotated)?;
                eprintln!("{}: new data key, encrypted to {}", file.display(), recipients.join(", "));
            }
            Ok(())
        }
    }
}

fn read(file: &Path) -> anyhow::Result<Option<Document>> {
    secrets::file::read(file).with_context(|| file.display().to_string())
}

/// The checkout a secrets file belongs to: its `secrets/` folder and its users.
struct Checkout {
    secrets: PathBuf,
    users: Vec<hooks::users::User>,
}

impl Checkout {
    /// Found from the file: the folder holding the `secrets` folder it is in. `asked`
    /// recipients are checked here, before anything is read.
    fn of(file: &Path, asked: &[String]) -> anyhow::Result<Checkout> {
        for r in asked {
            secrets::identity::parse_recipient(r)?;
        }
        let absolute = std::path::absolute(file)?;
        let secrets_dir = absolute.ancestors().skip(1).find(|d| d.file_name().is_some_and(|n| n == secrets::DIR));
        let Some(dir) = secrets_dir else {
            return Ok(Checkout {
                secrets: absolute.parent().unwrap_or(Path::new(".")).to_path_buf(),
                users: Vec::new(),
            });
        };
        let users_file = dir.parent().unwrap_or(dir).join(hooks::users::PATH);
        let users = match std::fs::read_to_string(&users_file) {
            Ok(text) => hooks::users::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", users_file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e).with_context(|| users_file.display().to_string()),
        };
        Ok(Checkout { secrets: dir.to_path_buf(), users })
    }
}

/// Who `file` is encrypted to (see `secrets::recipients`).
fn recipients_for(
    file: &Path,
    old: Option<&Document>,
    asked: &[String],
    keyring: &'static Keyring,
) -> anyhow::Result<Vec<String>> {
    let checkout = Checkout::of(file, asked)?;
    let people = hooks::users::secrets_people(&checkout.users);
    Ok(secrets::file::recipients_for(old, &checkout.secrets, asked, keyring, &people)?)
}

/// `edit`: the plain text in a private folder (in memory when /dev/shm exists), `$EDITOR`,
/// then encrypt; on a mistake, the editor again (on a terminal) — nothing typed is lost.
fn edit(file: &Path, flags: &[String], keyring: &'static Keyring) -> anyhow::Result<()> {
    secrets::file::format_of(file).with_context(|| file.display().to_string())?;
    let old = read(file)?;
    let plain = match &old {
        Some(doc) => doc.plaintext(keyring).with_context(|| file.display().to_string())?,
        None => zeroize::Zeroizing::new(String::new()),
    };
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
    let dir = tempfile::Builder::new().prefix("whispercms-secret-").tempdir_in(base)?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "secret.yaml".into());
    let tmp = dir.path().join(name);
    let wipe = |path: &Path| {
        if let Ok(meta) = std::fs::metadata(path) {
            let _ = std::fs::write(path, vec![0u8; meta.len() as usize]);
        }
        let _ = std::fs::remove_file(path);
    };
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&tmp)?.write_all(plain.as_bytes())?;
    }
    let editor = std::env::var("VISUAL").or_else(|_| std::env::var("EDITOR")).unwrap_or_else(|_| "vi".into());
    let result = loop {
        // The editor is started through the shell (EDITOR may hold arguments), without our keys.
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(&tmp)
            .env_remove(Keyring::ENV)
            .status()
            .with_context(|| format!("starting the editor {editor:?}"))?;
        if !status.success() {
            break Err(anyhow::anyhow!("the editor exited with {status}; nothing changed"));
        }
        let edited = zeroize::Zeroizing::new(std::fs::read_to_string(&tmp)?);
        if *edited == *plain {
            eprintln!("{}: no change", file.display());
            break Ok(());
        }
        let written = recipients_for(file, old.as_ref(), flags, keyring).and_then(|r| {
            secrets::file::save(file, old.as_ref(), &edited, &r, keyring)?;
            Ok(r)
        });
        match written {
            Ok(r) => {
                eprintln!("{}: saved, encrypted to {} recipient(s)", file.display(), r.len());
                break Ok(());
            }
            Err(e) if std::io::stdin().is_terminal() => {
                eprintln!("{}: {e:#}\nPress Enter to edit again, Ctrl-C to give up.", file.display());
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
            }
            Err(e) => break Err(e),
        }
    };
    wipe(&tmp);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets::Format;

    /// Runs every case in one test: the process has one keyring.
    #[test]
    fn recipients_follow_the_admins_edits_never_lose_input_and_rotate_rekeys() {
        let me = Identity::generate();
        let keyring = Keyring::install(vec![me.clone()]).unwrap();
        let (server, alice, bob) = (Identity::generate(), Identity::generate(), Identity::generate());
        let dir = tempfile::tempdir().unwrap();
        let users = |bob_role: &str| {
            format!(
                "[[user]]\nid = \"alice\"\nroles = [\"admin\"]\nage = \"{}\"\n\
                 [[user]]\nid = \"bob\"\nroles = [\"{bob_role}\"]\nage = \"{}\"\n",
                alice.recipient(),
                bob.recipient()
            )
        };
        std::fs::create_dir_all(dir.path().join("access")).unwrap();
        std::fs::write(dir.path().join("access/users.toml"), users("admin")).unwrap();
        // A neighbour encrypted to the server (and to bob, a user).
        let neighbour = Document::encrypt(Format::Yaml, "a: b\n", &[server.recipient(), bob.recipient()]).unwrap();
        std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/other.yaml"), neighbour.text()).unwrap();

        let file = dir.path().join("secrets/mail.yaml");
        let mut want = vec![server.recipient(), alice.recipient(), bob.recipient(), me.recipient()];
        want.sort();
        assert_eq!(recipients_for(&file, None, &[], keyring).unwrap(), want, "a new file");
        // Bob stops being an admin: he is dropped from the next version.
        std::fs::write(dir.path().join("access/users.toml"), users("editor")).unwrap();
        let doc = Document::encrypt(Format::Yaml, "password: x\n", &want).unwrap();
        let now = recipients_for(&file, Some(&doc), &[], keyring).unwrap();
        assert!(!now.contains(&bob.recipient()) && now.contains(&server.recipient()), "{now:?}");
        assert!(recipients_for(&file, Some(&doc), &["age1nope".into()], keyring).is_err());
        assert_eq!(Checkout::of(&file, &[]).unwrap().secrets, std::path::absolute(dir.path().join("secrets")).unwrap());

        // `edit` with an editor that writes something invalid, off a terminal: an error, and
        // the file is as it was; then a good edit is saved, re-keyed without bob.
        std::fs::write(&file, doc.text()).unwrap();
        std::env::set_var("VISUAL", "printf 'password: [unclosed' >");
        assert!(edit(&file, &[], keyring).is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), doc.text());
        std::env::set_var("VISUAL", "sed -i s/x/y/");
        edit(&file, &[], keyring).unwrap();
        let saved = read(&file).unwrap().unwrap();
        assert_eq!(saved.decrypt(keyring).unwrap().value(&["password"]).unwrap().expose(), "y");
        assert!(!saved.recipients().contains(&bob.recipient()));
        std::env::remove_var("VISUAL");
        // `rotate`: a new data key (every ciphertext changes), the same value.
        let identity = dir.path().join("me.key");
        std::fs::write(&identity, me.file_text()).unwrap();
        let before = std::fs::read_to_string(&file).unwrap();
        let rotate = SecretsCommand::Rotate { files: vec![file.clone()], identity: Some(identity), recipient: vec![] };
        run(rotate, || unreachable!("--identity was given")).unwrap();
        let after = read(&file).unwrap().unwrap();
        let value_line = |t: &str| t.lines().find(|l| l.starts_with("password:")).unwrap().to_string();
        assert_ne!(value_line(&before), value_line(after.text()));
        assert_eq!(after.decrypt(keyring).unwrap().value(&["password"]).unwrap().expose(), "y");
        let leftovers: Vec<_> = std::fs::read_dir("/dev/shm")
            .map(|d| {
                d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("whispercms-secret-")).collect()
            })
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "temporary plain text left behind: {leftovers:?}");
    }
}
