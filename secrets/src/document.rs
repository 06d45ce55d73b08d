//! One ROPS document (`secrets/<name>.{yaml,yml,json,toml}`).
//!
//! [`Document::parse`] checks what can be checked without a key — the file is a ROPS document
//! of this format, every value is encrypted (no partial encryption: a value in clear is an
//! error with its line), the metadata is whole — and reads the recipients. [`Document::decrypt`]
//! opens it with the installed [`Keyring`] and verifies its MAC; [`Document::encrypt`] makes one
//! from plain text; [`Document::update`] re-encrypts an edited document keeping its data key and
//! the ciphertext of unchanged values (small diffs, as `sops` does) when the recipients stay.

use rops::cryptography::cipher::AES256GCM;
use rops::cryptography::hasher::SHA512;
use rops::file::builder::RopsFileBuilder;
use rops::file::format::{FileFormat, JsonFileFormat, RopsFileFormatMap, TomlFileFormat, YamlFileFormat};
use rops::file::state::{DecryptedFile, EncryptedFile};
use rops::file::RopsFile;
use rops::integration::AgeIntegration;

use crate::identity::{parse_recipient, Keyring};
use crate::value::SecretTree;
use crate::{Error, Result};

type Encrypted<F> = RopsFile<EncryptedFile<AES256GCM, SHA512>, F>;
type Decrypted<F> = RopsFile<DecryptedFile<SHA512>, F>;

/// Documents larger than this are refused (secrets are small; this bounds parsing).
pub const MAX_BYTES: usize = 256 * 1024;

/// Metadata keys that make a document partly plain text.
const PARTIAL: &[&str] = &[
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
    "mac_only_encrypted",
];

/// The file format, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Toml,
}

impl Format {
    /// `a.yaml`/`a.yml`, `a.json`, `a.toml`; `None` for anything else.
    pub fn of_path(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1;
        match ext {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }
}

/// An encrypted document: its text and what was read from it.
#[derive(Debug, Clone)]
pub struct Document {
    format: Format,
    text: String,
    recipients: Vec<String>,
}

impl Document {
    /// Check `text` as an encrypted document of `format` (see the module doc).
    pub fn parse(format: Format, text: &str) -> Result<Document> {
        if text.len() > MAX_BYTES {
            return Err(Error::invalid(format!("larger than {} KiB", MAX_BYTES / 1024)));
        }
        let recipients = match format {
            Format::Yaml => inspect::<YamlFileFormat>(text)?,
            Format::Json => inspect::<JsonFileFormat>(text)?,
            Format::Toml => inspect::<TomlFileFormat>(text)?,
        };
        Ok(Document { format, text: text.to_string(), recipients })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// The encrypted text, as it goes into the repository.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The age recipients its data key is encrypted to.
    pub fn recipients(&self) -> &[String] {
        &self.recipients
    }

    /// Decrypt with the installed keyring, MAC verified.
    pub fn decrypt(&self, keyring: &'static Keyring) -> Result<SecretTree> {
        let json = self.decrypted_json(keyring)?;
        Ok(SecretTree::from_json(json))
    }

    /// The decrypted document as text of its own format (for an editor). The caller keeps it
    /// private and drops it soon.
    pub fn plaintext(&self, keyring: &'static Keyring) -> Result<zeroize::Zeroizing<String>> {
        let value = self.decrypted_json(keyring)?;
        let text = match self.format {
            Format::Yaml => YamlFileFormat::serialize_to_string(&value).map_err(|e| Error::Crypto(e.to_string()))?,
            Format::Json => JsonFileFormat::serialize_to_string(&value).map_err(|e| Error::Crypto(e.to_string()))?,
            Format::Toml => TomlFileFormat::serialize_to_string(&value).map_err(|e| Error::Crypto(e.to_string()))?,
        };
        Ok(zeroize::Zeroizing::new(text))
    }

    /// An error unless one of `keyring`'s identities is a recipient.
    fn check_for_us(&self, keyring: &'static Keyring) -> Result<()> {
        let ours = keyring.recipients();
        match self.recipients.iter().any(|r| ours.contains(r)) {
            true => Ok(()),
            false => Err(Error::NotForUs { recipients: ours.join(", "), found: self.recipients.join(", ") }),
        }
    }

    fn decrypted_json(&self, keyring: &'static Keyring) -> Result<serde_json::Value> {
        self.check_for_us(keyring)?;
        match self.format {
            Format::Yaml => decrypt::<YamlFileFormat>(&self.text),
            Format::Json => decrypt::<JsonFileFormat>(&self.text),
            Format::Toml => decrypt::<TomlFileFormat>(&self.text),
        }
    }

    /// Encrypt plain `text` of `format` to `recipients`, with a new data key.
    pub fn encrypt(format: Format, text: &str, recipients: &[String]) -> Result<Document> {
        let keys = recipient_keys(recipients)?;
        let encrypted = match format {
            Format::Yaml => encrypt::<YamlFileFormat>(text, keys)?,
            Format::Json => encrypt::<JsonFileFormat>(text, keys)?,
            Format::Toml => encrypt::<TomlFileFormat>(text, keys)?,
        };
        Document::parse(format, &encrypted)
    }

    /// This document with plain `text` as its new content, encrypted to `recipients`: the data
    /// key and the ciphertext of unchanged values are kept when the recipients are the same
    /// set; otherwise everything is encrypted anew (a removed recipient must not keep a key
    /// that opens the next version).
    pub fn update(&self, keyring: &'static Keyring, text: &str, recipients: &[String]) -> Result<Document> {
        let mut same: Vec<&String> = recipients.iter().collect();
        let mut old: Vec<&String> = self.recipients.iter().collect();
        same.sort();
        same.dedup();
        old.sort();
        if same != old {
            return Document::encrypt(self.format, text, recipients);
        }
        self.check_for_us(keyring)?; // then decrypted, MAC verified, by `update` itself
        let updated = match self.format {
            Format::Yaml => update::<YamlFileFormat>(&self.text, text)?,
            Format::Json => update::<JsonFileFormat>(&self.text, text)?,
            Format::Toml => update::<TomlFileFormat>(&self.text, text)?,
        };
        Document::parse(self.format, &updated)
    }
}

/// Plain `text` of `format` with `key` (dot-separated; maps made as needed) set to `value`.
/// For `secrets set`; comments of the plain text are not kept (ROPS keeps none either).
pub fn set_value(format: Format, text: &str, key: &str, value: &str) -> Result<zeroize::Zeroizing<String>> {
    fn go<F: FileFormat>(text: &str, key: &str, value: &str) -> Result<String> {
        let mut root: serde_json::Value = match text.trim() {
            "" | "{}" => serde_json::Value::Object(Default::default()),
            _ => F::deserialize_from_str(text).map_err(|e| Error::invalid(e.to_string()))?,
        };
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) || key == "sops" || key.starts_with("sops.") {
            return Err(Error::invalid(format!("{key:?} is not a key (a.b.c, not `sops`)")));
        }
        let mut node = &mut root;
        for part in &parts[..parts.len() - 1] {
            let map = node.as_object_mut().ok_or_else(|| Error::invalid(format!("{key}: {part} is inside a value")))?;
            node = map.entry(part.to_string()).or_insert_with(|| serde_json::Value::Object(Default::default()));
        }
        let map = node.as_object_mut().ok_or_else(|| Error::invalid(format!("{key}: the parent is a value")))?;
        map.insert(parts[parts.len() - 1].to_string(), serde_json::Value::String(value.to_string()));
        F::serialize_to_string(&root).map_err(|e| Error::invalid(e.to_string()))
    }
    let out = match format {
        Format::Yaml => go::<YamlFileFormat>(text, key, value)?,
        Format::Json => go::<JsonFileFormat>(text, key, value)?,
        Format::Toml => go::<TomlFileFormat>(text, key, value)?,
    };
    Ok(zeroize::Zeroizing::new(out))
}

fn recipient_keys(recipients: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    if recipients.is_empty() {
        return Err(Error::Key("no recipients: nobody could ever decrypt it".into()));
    }
    recipients.iter().map(|r| parse_recipient(r)).collect()
}

/// The 1-based line of the first line that names `key` as a key, for messages.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches("- ");
            let rest = l.strip_prefix(key).or_else(|| l.strip_prefix(&format!("\"{key}\"")));
            rest.is_some_and(|r| r.trim_start().starts_with(':') || r.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// What can be known without a key: structure, every value encrypted, recipients.
fn inspect<F: FileFormat>(text: &str) -> Result<Vec<String>> {
    let value: serde_json::Value = F::deserialize_from_str(text).map_err(|e| Error::invalid(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(Error::invalid("not a map of keys to values"));
    };
    let Some(meta) = map.get("sops") else {
        return Err(Error::invalid(
            "not encrypted: no `sops` metadata (encrypt it with `whispercms-server secrets set`, `edit` or `sops`)",
        ));
    };
    if let Some(key) = PARTIAL.iter().find(|k| meta.get(**k).is_some()) {
        return Err(Error::Invalid {
            line: line_of(text, key),
            message: format!("sops.{key}: partial encryption is not allowed here; every value must be encrypted"),
        });
    }
    for (key, value) in map.iter().filter(|(k, _)| k.as_str() != "sops") {
        plaintext_check(text, key, key, value)?;
    }
    if meta.get("age").and_then(|a| a.as_array()).is_none_or(|a| a.is_empty()) {
        return Err(Error::invalid("sops.age: no age recipients (only age is supported)"));
    }
    let parsed: Encrypted<F> = text.parse().map_err(|e: rops::file::RopsFileFromStrError| {
        let rops::file::RopsFileFromStrError::Deserialize(inner) = e;
        Error::invalid(format!("not a valid ROPS document: {inner:#}"))
    })?;
    Ok(parsed.metadata().intregation.age.keys().map(|k| k.to_string()).collect())
}

/// Every value under `value` must be an `ENC[AES256_GCM,…]` string.
fn plaintext_check(text: &str, path: &str, key: &str, value: &serde_json::Value) -> Result<()> {
    match value {
        serde_json::Value::Object(map) => {
            map.iter().try_for_each(|(k, v)| plaintext_check(text, &format!("{path}.{k}"), k, v))
        }
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| plaintext_check(text, path, key, v)),
        serde_json::Value::String(s) if s.starts_with("ENC[AES256_GCM,") && s.ends_with(']') => Ok(()),
        _ => Err(Error::Invalid {
            line: line_of(text, key),
            message: format!("{path}: the value is not encrypted; no secret may be stored in clear"),
        }),
    }
}

fn decrypt<F: FileFormat>(text: &str) -> Result<serde_json::Value> {
    let parsed: Encrypted<F> = text.parse().map_err(|_| Error::invalid("not a valid ROPS document"))?;
    let decrypted: Decrypted<F> = parsed.decrypt::<F>().map_err(decrypt_error)?;
    serde_json::to_value(decrypted.into_inner_map()).map_err(|e| Error::Crypto(e.to_string()))
}

/// rops's errors, without what must not be printed (its MAC message shows the computed MAC,
/// a hash of every value).
fn decrypt_error(e: impl std::error::Error) -> Error {
    let text = e.to_string();
    if text.starts_with("invalid MAC") {
        Error::Mac
    } else if text.starts_with("unable to decrypt map value") {
        Error::Crypto("a value does not decrypt: it was changed by hand, or the file is damaged".into())
    } else if text.starts_with("unable to decrypt file metadata") {
        Error::Crypto("the data key does not decrypt with this server's identity".into())
    } else {
        Error::Crypto(format!("cannot decrypt: {text}"))
    }
}

fn encrypt<F: FileFormat>(text: &str, keys: Vec<age::x25519::Recipient>) -> Result<String> {
    let builder = RopsFileBuilder::<F>::new(text).map_err(|e| Error::invalid(e.to_string()))?;
    let encrypted: Encrypted<F> = builder
        .add_integration_keys::<AgeIntegration>(keys)
        .encrypt::<AES256GCM, SHA512>()
        .map_err(|e| Error::Crypto(format!("cannot encrypt: {e}")))?;
    F::serialize_to_string(&encrypted).map_err(|e| Error::Crypto(e.to_string()))
}

fn update<F: FileFormat>(old: &str, text: &str) -> Result<String> {
    let parsed: Encrypted<F> = old.parse().map_err(|_| Error::invalid("not a valid ROPS document"))?;
    let (decrypted, saved) = parsed.decrypt_and_save_parameters::<F>().map_err(decrypt_error)?;
    let map: F::Map = F::deserialize_from_str(text).map_err(|e| Error::invalid(e.to_string()))?;
    let decrypted: Decrypted<F> =
        decrypted.set_map(RopsFileFormatMap::from_inner_map(map)).map_err(|e| Error::invalid(e.to_string()))?;
    let encrypted: Encrypted<F> =
        decrypted.encrypt_with_saved_parameters(saved).map_err(|e| Error::Crypto(format!("cannot encrypt: {e}")))?;
    F::serialize_to_string(&encrypted).map_err(|e| Error::Crypto(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::identity::Identity;
    use std::sync::OnceLock;

    /// The identities of this test process: [0] the server, [1] alice. [2] is never installed.
    pub(crate) fn keys() -> &'static (Vec<Identity>, &'static Keyring) {
        static KEYS: OnceLock<(Vec<Identity>, &'static Keyring)> = OnceLock::new();
        KEYS.get_or_init(|| {
            let ids = vec![Identity::generate(), Identity::generate(), Identity::generate()];
            let ring = Keyring::install(ids[..2].to_vec()).unwrap();
            (ids, ring)
        })
    }

    const PLAIN: &str = "contact:\n  url: https://hooks.example.org/T1/B2/xyz\n  token: s3cret-token\nport: 587\n";

    fn server() -> String {
        keys().0[0].recipient()
    }

    #[test]
    fn encrypts_decrypts_and_verifies() {
        let (_, ring) = keys();
        let doc = Document::encrypt(Format::Yaml, PLAIN, &[server()]).unwrap();
        assert!(!doc.text().contains("s3cret-token"), "{}", doc.text());
        assert_eq!(doc.recipients(), &[server()]);
        let tree = doc.decrypt(ring).unwrap();
        assert_eq!(tree.value(&["contact", "token"]).unwrap().expose(), "s3cret-token");
        assert_eq!(tree.value(&["port"]).unwrap().expose(), "587");
        // The text parses back as the same document.
        let again = Document::parse(Format::Yaml, doc.text()).unwrap();
        assert_eq!(again.decrypt(ring).unwrap(), tree);
    }

    #[test]
    fn every_format() {
        let (_, ring) = keys();
        for (format, text) in [
            (Format::Json, r#"{"smtp": {"password": "pw", "port": 25}, "on": true}"#),
            (Format::Toml, "[smtp]\npassword = \"pw\"\nport = 25\n"),
            (Format::Yaml, "smtp:\n  password: pw\n"),
        ] {
            let doc = Document::encrypt(format, text, &[server()]).unwrap();
            let tree = Document::parse(format, doc.text()).unwrap().decrypt(ring).unwrap();
            assert_eq!(tree.value(&["smtp", "password"]).unwrap().expose(), "pw", "{format:?}");
        }
    }

    #[test]
    fn a_changed_value_or_mac_is_refused() {
        let (_, ring) = keys();
        let doc = Document::encrypt(Format::Yaml, PLAIN, &[server()]).unwrap();
        // Swap the two encrypted values: each is bound to its key path.
        let lines: Vec<&str> = doc.text().lines().collect();
        let url = lines.iter().position(|l| l.trim_start().starts_with("url:")).unwrap();
        let token = lines.iter().position(|l| l.trim_start().starts_with("token:")).unwrap();
        let value = |i: usize| lines[i].split_once(": ").unwrap().1.to_string();
        let swapped: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| match i {
                i if i == url => format!("  url: {}", value(token)),
                i if i == token => format!("  token: {}", value(url)),
                _ => l.to_string(),
            })
            .collect();
        let err = Document::parse(Format::Yaml, &swapped.join("\n")).unwrap().decrypt(ring).unwrap_err();
        assert!(err.to_string().contains("does not decrypt"), "{err}");
        // A value removed: the MAC no longer matches.
        let removed: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| *i != url).map(|(_, l)| *l).collect();
        let err = Document::parse(Format::Yaml, &removed.join("\n")).unwrap().decrypt(ring).unwrap_err();
        assert!(matches!(err, Error::Mac), "{err}");
        assert!(!err.to_string().contains("computed"));
    }

    #[test]
    fn another_recipient_is_not_for_us() {
        let (ids, ring) = keys();
        let doc = Document::encrypt(Format::Yaml, PLAIN, &[ids[2].recipient()]).unwrap();
        let err = doc.decrypt(ring).unwrap_err();
        assert!(matches!(err, Error::NotForUs { .. }), "{err}");
        assert!(err.to_string().contains(&ids[2].recipient()));
    }

    #[test]
    fn plaintext_and_hostile_documents_are_refused_with_lines() {
        let doc = Document::encrypt(Format::Yaml, PLAIN, &[server()]).unwrap();
        let leaked = doc.text().replacen("  token: ENC[", "  token: s3cret\n  other: ENC[", 1);
        let err = Document::parse(Format::Yaml, &leaked).unwrap_err();
        assert!(err.to_string().contains("contact.token: the value is not encrypted"), "{err}");
        assert!(matches!(err, Error::Invalid { line: Some(_), .. }), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        for (format, text, expect) in [
            (Format::Yaml, PLAIN, "no `sops` metadata"),
            (Format::Yaml, "- a\n- b\n", "not a map"),
            (Format::Yaml, "a: &x [*x]\n", ""),
            (Format::Yaml, "a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", ""),
            (Format::Json, "{\"a\": 1, \"sops\": {}}", "the value is not encrypted"),
            (Format::Json, "{\"sops\": {\"age\": []}}", "no age recipients"),
            (Format::Json, "nonsense", ""),
            (Format::Toml, "a = \"ENC[AES256_GCM,data:x]\"\n[sops]\nage = [{recipient = \"x\", enc = \"y\"}]\n", "not a valid ROPS document"),
            (Format::Yaml, "a: ENC[AES256_GCM,data:x]\nsops:\n  encrypted_regex: ^a$\n  age: [{recipient: x}]\n", "partial encryption"),
        ] {
            let err = Document::parse(format, text).unwrap_err().to_string();
            assert!(err.contains(expect), "{text:?}: {err}");
        }
        assert!(Document::parse(Format::Yaml, &"a: b\n".repeat(60_000)).unwrap_err().to_string().contains("larger"));
    }

    #[test]
    fn updates_keep_unchanged_ciphertext_and_rekey_on_recipient_change() {
        let (ids, ring) = keys();
        let doc = Document::encrypt(Format::Yaml, PLAIN, &[server()]).unwrap();
        let url_line =
            |d: &Document| d.text().lines().find(|l| l.trim_start().starts_with("url:")).unwrap().to_string();
        let edited = PLAIN.replace("s3cret-token", "new-token");
        let same = doc.update(ring, &edited, &[server()]).unwrap();
        assert_eq!(url_line(&same), url_line(&doc), "an unchanged value keeps its ciphertext");
        assert_eq!(same.decrypt(ring).unwrap().value(&["contact", "token"]).unwrap().expose(), "new-token");
        let more = [server(), ids[1].recipient()];
        let rekeyed = doc.update(ring, &edited, &more).unwrap();
        assert_ne!(url_line(&rekeyed), url_line(&doc));
        assert_eq!(rekeyed.recipients().len(), 2);
        assert_eq!(rekeyed.decrypt(ring).unwrap().value(&["contact", "token"]).unwrap().expose(), "new-token");
        let plain = rekeyed.plaintext(ring).unwrap();
        assert!(plain.contains("new-token"));
        assert!(Document::encrypt(Format::Yaml, PLAIN, &[]).is_err());
    }

    #[test]
    fn values_are_set_by_path() {
        let text = set_value(Format::Yaml, "", "contact.url", "https://x/").unwrap();
        let text = set_value(Format::Yaml, &text, "contact.token", "t").unwrap();
        assert!(text.contains("contact:") && text.contains("token: t"), "{}", *text);
        assert!(set_value(Format::Yaml, &text, "contact.url.deeper", "x").is_err());
        assert!(set_value(Format::Yaml, &text, "sops.mac", "x").is_err());
        assert!(set_value(Format::Toml, "", "a..b", "x").is_err());
        let toml = set_value(Format::Toml, "", "smtp.password", "pw").unwrap();
        assert!(toml.contains("[smtp]"), "{}", *toml);
    }
}
