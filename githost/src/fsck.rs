//! The object checks a pushed or fetched pack must pass: git's `fsck` rules as
//! `git index-pack --strict` (and so `receive.fsckObjects`) applies them.
//!
//! Each function reads one object's bytes the way git's `fsck.c` does, byte by byte, and either
//! refuses it with git's message id (`badTimezone`, `hasDotgit`, …) or hands back the objects it
//! links to, with the kind each must have, for the quarantine's connectivity check. What git only
//! reports as information (`badFilemode`, a tag without tagger, a tag name that is no ref name) is
//! accepted, so a real history git accepts is never refused; where matching git exactly would
//! take far more code than the case is worth (a `.gitmodules` that does not parse, a tagger line
//! git lets through when an extra header follows it), the rule here is the stricter one.
//!
//! These are parsers of hostile input: no indexing that can panic, no recursion, no allocation
//! proportional to anything but the object itself.

use std::collections::HashSet;

use gix::ObjectId;

/// Why an object is refused: git's message id and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id}: {detail}")]
pub struct Invalid {
    /// git's fsck message id, e.g. `badTimezone`.
    pub id: &'static str,
    /// What was wrong, in words.
    pub detail: String,
}

fn invalid<T>(id: &'static str, detail: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid { id, detail: detail.into() })
}

/// The kind an object linked from another must have (gix's object kinds).
pub use gix::objs::Kind;

/// A blob whose content git checks because of the name a tree gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    /// Named `.gitmodules` (in any of the spellings a case-insensitive or NTFS file system
    /// would open as that file): checked by [`gitmodules`].
    Gitmodules,
    /// Named `.gitattributes` (likewise): checked by [`gitattributes`].
    Gitattributes,
}

/// The ids of a commit's tree and parents, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitLinks {
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
}

/// Check a commit; its tree and parents.
pub fn commit(data: &[u8]) -> Result<CommitLinks, Invalid> {
    verify_headers(data)?;
    let mut lines = Lines(data);
    let tree = match lines.header(b"tree ") {
        Some(hex) => {
            parse_hex(hex).ok_or_else(|| Invalid { id: "badTreeSha1", detail: "invalid 'tree' line".into() })?
        }
        None => return invalid("missingTree", "no 'tree' line first"),
    };
    let mut parents = Vec::new();
    while let Some(hex) = lines.header(b"parent ") {
        parents.push(
            parse_hex(hex).ok_or_else(|| Invalid { id: "badParentSha1", detail: "invalid 'parent' line".into() })?,
        );
    }
    let mut authors = 0;
    while let Some(ident) = lines.header(b"author ") {
        check_ident(ident)?;
        authors += 1;
    }
    match authors {
        0 => return invalid("missingAuthor", "no 'author' line after tree and parents"),
        1 => {}
        _ => return invalid("multipleAuthors", "more than one 'author' line"),
    }
    match lines.header(b"committer ") {
        Some(ident) => check_ident(ident)?,
        None => return invalid("missingCommitter", "no 'committer' line after 'author'"),
    }
    if data.contains(&0) {
        return invalid("nulInCommit", "NUL byte in the commit");
    }
    Ok(CommitLinks { tree, parents })
}

/// Check an annotated tag; the object it points at and the kind it says that object is.
pub fn tag(data: &[u8]) -> Result<(ObjectId, Kind), Invalid> {
    // git's parser wants this much before it reads a line (an object line and the shortest rest).
    if data.len() < 64 {
        return invalid("badTag", "too short to be a tag");
    }
    verify_headers(data)?;
    let mut lines = Lines(data);
    let target = match lines.header(b"object ") {
        Some(hex) => {
            parse_hex(hex).ok_or_else(|| Invalid { id: "badObjectSha1", detail: "invalid 'object' line".into() })?
        }
        None => return invalid("missingObject", "no 'object' line first"),
    };
    let kind = match lines.header(b"type ") {
        Some(name) => Kind::from_bytes(name).map_err(|_| Invalid {
            id: "badType",
            detail: format!("unknown type {:?}", String::from_utf8_lossy(name)),
        })?,
        None => return invalid("missingTypeEntry", "no 'type' line after 'object'"),
    };
    if lines.header(b"tag ").is_none() {
        return invalid("missingTagEntry", "no 'tag' line after 'type'");
    }
    // A tag without a tagger is only information to git (old tags have none).
    if let Some(ident) = lines.header(b"tagger ") {
        check_ident(ident)?;
    }
    Ok((target, kind))
}

/// One entry of a tree, as the connectivity check needs it. Submodules (gitlinks, and any mode
/// git reads as one) are not reported: their commits live in other repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLink {
    pub id: ObjectId,
    pub kind: Kind,
    pub special: Option<Special>,
}

/// Longest entry name git accepts (`fsck.largePathname`'s default).
const MAX_NAME: usize = 4096;

/// Check a tree; each entry that must exist is appended to `links` (in order).
pub fn tree(data: &[u8], links: &mut Vec<TreeLink>) -> Result<(), Invalid> {
    let mut rest = data;
    // Previous entry: name and whether it is a directory.
    let mut previous: Option<(&[u8], bool)> = None;
    // Names of the entries that are not directories, once a directory could collide with one.
    let mut files: HashSet<&[u8]> = HashSet::new();
    while !rest.is_empty() {
        let (mode_text, name, id, after) = tree_entry(rest)?;
        rest = after;
        if mode_text.first() == Some(&b'0') {
            return invalid("zeroPaddedFilemode", format!("zero-padded mode of {}", lossy(name)));
        }
        // git reads the mode into 16 bits.
        let mode = mode_text.iter().fold(0u32, |m, d| m.wrapping_mul(8).wrapping_add(u32::from(d - b'0'))) & 0xffff;
        let is_dir = mode & 0o170000 == 0o040000;
        if id.is_null() {
            return invalid("nullSha1", format!("entry {} points to the null id", lossy(name)));
        }
        if name.contains(&b'/') {
            return invalid("fullPathname", format!("entry {} contains '/'", lossy(name)));
        }
        if name == b"." {
            return invalid("hasDot", "entry '.'");
        }
        if name == b".." {
            return invalid("hasDotdot", "entry '..'");
        }
        if is_dotgit(name) {
            return invalid("hasDotgit", format!("entry {} is .git on some file system", lossy(name)));
        }
        if name.len() > MAX_NAME {
            return invalid("largePathname", format!("an entry name of {} bytes", name.len()));
        }
        if let Some((before, before_dir)) = previous {
            check_order(before, before_dir, name, is_dir)?;
        }
        if is_dir {
            if files.contains(name) {
                return invalid("duplicateEntries", format!("{} is both a file and a directory", lossy(name)));
            }
        } else {
            files.insert(name);
        }
        previous = Some((name, is_dir));

        let mut special = special_name(name);
        let kind = match mode & 0o170000 {
            0o100000 => Kind::Blob,
            0o120000 => {
                if special == Some(Special::Gitmodules) {
                    return invalid("gitmodulesSymlink", ".gitmodules is a symbolic link");
                }
                // git reads no attributes through a link, so it checks none.
                special = None;
                Kind::Blob
            }
            0o040000 => Kind::Tree,
            _ => {
                // A gitlink (or a mode git takes for one): not followed. git refuses a
                // `.gitattributes` there (it cannot be read) and reads a `.gitmodules` if the
                // object happens to exist; refusing both is simpler and loses nothing real.
                if special.is_some() {
                    return invalid("gitmodulesBlob", format!("{} is a submodule", lossy(name)));
                }
                continue;
            }
        };
        if kind == Kind::Tree && special.is_some() {
            let id = if special == Some(Special::Gitmodules) { "gitmodulesBlob" } else { "gitattributesBlob" };
            return invalid(id, format!("{} is a directory", lossy(name)));
        }
        links.push(TreeLink { id, kind, special });
    }
    Ok(())
}

/// One tree entry: mode digits, name, id, and what follows.
#[allow(clippy::type_complexity)]
fn tree_entry(data: &[u8]) -> Result<(&[u8], &[u8], ObjectId, &[u8]), Invalid> {
    let bad = |detail: &str| invalid("badTree", detail.to_string());
    let Some(space) = data.iter().position(|&b| b == b' ') else { return bad("an entry without a mode") };
    let mode = &data[..space];
    if mode.is_empty() || !mode.iter().all(|b| (b'0'..=b'7').contains(b)) {
        return bad("malformed mode");
    }
    let rest = &data[space + 1..];
    let Some(nul) = rest.iter().position(|&b| b == 0) else { return bad("an entry name without its end") };
    let name = &rest[..nul];
    if name.is_empty() {
        return bad("empty filename in tree entry");
    }
    let Some(raw) = rest.get(nul + 1..nul + 21) else { return bad("truncated tree entry") };
    let id = gix::hash::oid::try_from_bytes(raw)
        .map_err(|_| Invalid { id: "badTree", detail: "truncated tree entry".into() })?
        .to_owned();
    Ok((mode, name, id, &rest[nul + 21..]))
}

/// git's tree order: names compared bytewise, a directory's as if it ended in `/`; two entries
/// of the same name (file or directory) are duplicates.
fn check_order(before: &[u8], before_dir: bool, name: &[u8], is_dir: bool) -> Result<(), Invalid> {
    let common = before.len().min(name.len());
    match before[..common].cmp(&name[..common]) {
        std::cmp::Ordering::Less => return Ok(()),
        std::cmp::Ordering::Greater => {
            return invalid("treeNotSorted", format!("{} comes after {}", lossy(name), lossy(before)))
        }
        std::cmp::Ordering::Equal => {}
    }
    let next = |n: &[u8], dir: bool| n.get(common).copied().unwrap_or(if dir { b'/' } else { 0 });
    if before.len() == name.len() {
        return invalid("duplicateEntries", format!("{} twice", lossy(name)));
    }
    if next(before, before_dir) < next(name, is_dir) {
        Ok(())
    } else {
        invalid("treeNotSorted", format!("{} comes after {}", lossy(name), lossy(before)))
    }
}

/// Whether a name would be `.git` on some file system: HFS+ (which ignores some code points and
/// case) or NTFS (case, trailing dots and spaces, alternate streams, the `GIT~1` short name),
/// itself or after any backslash.
fn is_dotgit(name: &[u8]) -> bool {
    is_hfs_dot(name, b"git") || is_ntfs_dotgit(name) || backslash_parts(name).any(is_ntfs_dotgit)
}

/// What follows each `\` in a name (NTFS reads `a\.git` as a path).
fn backslash_parts(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    name.iter().enumerate().filter(|(_, &b)| b == b'\\').map(move |(i, _)| &name[i + 1..])
}

fn special_name(name: &[u8]) -> Option<Special> {
    let gitmodules = |n: &[u8]| is_ntfs_dot_generic(n, b"gitmodules", b"gi7eba");
    let gitattributes = |n: &[u8]| is_ntfs_dot_generic(n, b"gitattributes", b"gi7d29");
    if is_hfs_dot(name, b"gitmodules") || gitmodules(name) || backslash_parts(name).any(gitmodules) {
        Some(Special::Gitmodules)
    } else if is_hfs_dot(name, b"gitattributes") || gitattributes(name) || backslash_parts(name).any(gitattributes) {
        Some(Special::Gitattributes)
    } else {
        None
    }
}

/// HFS+: `.` + `needle` (ASCII, any case) once the code points HFS+ ignores are skipped, then
/// the end or `/`. Text that is not UTF-8 ends the name, as in git.
fn is_hfs_dot(name: &[u8], needle: &[u8]) -> bool {
    let mut chars = HfsChars(name);
    if chars.next() != Some('.') {
        return false;
    }
    for &want in needle {
        match chars.next() {
            Some(c) if c.is_ascii() && c.to_ascii_lowercase() as u8 == want => {}
            _ => return false,
        }
    }
    matches!(chars.next(), None | Some('/'))
}

/// The characters of a name as HFS+ compares them: decoded UTF-8 without the ignorable code
/// points; `None` at the end or at bytes that are not UTF-8.
struct HfsChars<'a>(&'a [u8]);

impl Iterator for HfsChars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        loop {
            let first = *self.0.first()?;
            let width = match first {
                0x00..=0x7f => 1,
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => return None,
            };
            let c = self.0.get(..width).and_then(|b| std::str::from_utf8(b).ok()).and_then(|s| s.chars().next())?;
            self.0 = &self.0[width..];
            let ignorable =
                matches!(c, '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}');
            if !ignorable {
                return Some(c);
            }
        }
    }
}

/// NTFS: `.git` or `git~1` (any case), then dots and spaces, then the end, `\`, `/` or `:`.
fn is_ntfs_dotgit(name: &[u8]) -> bool {
    let rest = if let Some(rest) = strip_prefix_ignore_case(name, b".git") {
        rest
    } else if let Some(rest) = strip_prefix_ignore_case(name, b"git~1") {
        rest
    } else {
        return false;
    };
    for &b in rest {
        match b {
            b'\\' | b'/' | b':' => return true,
            b'.' | b' ' => {}
            _ => return false,
        }
    }
    true
}

/// NTFS spellings of `.` + `name`: itself (any case) with trailing dots and spaces or an
/// alternate stream, its short names `name[..6]~1`…`~4`, and the hashed short names
/// `<shortname>~N` git computes for it (`short` is that prefix).
fn is_ntfs_dot_generic(name: &[u8], long: &[u8], short: &[u8]) -> bool {
    let only_spaces_and_dots = |rest: &[u8]| {
        for &b in rest {
            match b {
                b':' => return true,
                b' ' | b'.' => {}
                _ => return false,
            }
        }
        true
    };
    if let Some(rest) = name.strip_prefix(b".").and_then(|n| strip_prefix_ignore_case(n, long)) {
        return only_spaces_and_dots(rest);
    }
    if let Some([b'~', b'1'..=b'4', rest @ ..]) = strip_prefix_ignore_case(name, &long[..6]) {
        return only_spaces_and_dots(rest);
    }
    // The fall-back short name: up to 6 characters of `short`, `~`, a digit 1-9, more digits, in
    // 8 characters.
    let mut i = 0;
    let mut saw_tilde = false;
    while i < 8 {
        let Some(&b) = name.get(i) else { return false };
        if saw_tilde {
            if !b.is_ascii_digit() {
                return false;
            }
        } else if b == b'~' {
            i += 1;
            if !matches!(name.get(i), Some(b'1'..=b'9')) {
                return false;
            }
            saw_tilde = true;
        } else if i >= 6 || b & 0x80 != 0 || Some(&b.to_ascii_lowercase()) != short.get(i) {
            return false;
        }
        i += 1;
    }
    only_spaces_and_dots(name.get(8..).unwrap_or_default())
}

fn strip_prefix_ignore_case<'a>(name: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &name[prefix.len()..])
}

/// Check a blob a tree names `.gitmodules`: every `submodule.<name>` has a name without `..`
/// components, and no `url`, `path` or `update` a `git submodule` command would run as an
/// option or a command.
pub fn gitmodules(data: &[u8]) -> Result<(), Invalid> {
    let file = gix::config::File::from_bytes_no_includes(data, gix::config::file::Metadata::api(), Default::default())
        .or_else(|e| invalid("gitmodulesParse", format!(".gitmodules does not parse: {e}")))?;
    let Some(sections) = file.sections_by_name("submodule") else { return Ok(()) };
    for section in sections {
        let Some(name) = section.header().subsection_name() else { continue };
        if !submodule_name_ok(name) {
            return invalid("gitmodulesName", format!("submodule name {:?}", lossy(name)));
        }
        let body = section.body();
        for key in body.value_names().collect::<Vec<_>>() {
            for value in body.values(&key) {
                let value = value.as_slice();
                match key.to_ascii_lowercase().as_str() {
                    "url" if !submodule_url_ok(value) => {
                        return invalid("gitmodulesUrl", format!("submodule url {:?}", lossy(value)))
                    }
                    "path" if value.starts_with(b"-") => {
                        return invalid("gitmodulesPath", format!("submodule path {:?}", lossy(value)))
                    }
                    "update" if value.starts_with(b"!") => {
                        return invalid("gitmodulesUpdate", format!("submodule update {:?}", lossy(value)))
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Not empty, and no `..` between separators (`/` or `\`).
fn submodule_name_ok(name: &[u8]) -> bool {
    !name.is_empty() && !name.split(|&b| b == b'/' || b == b'\\').any(|part| part == b"..")
}

/// git's `check_submodule_url`, made stricter where matching it would mean its URL normalizer:
/// an address for curl must parse as a URL with a host.
fn submodule_url_ok(url: &[u8]) -> bool {
    if url.starts_with(b"-") {
        return false;
    }
    let decoded = percent_decode(url);
    if decoded.contains(&b'\n') {
        return false;
    }
    if url.starts_with(b"./") || url.starts_with(b"../") || url.starts_with(b"git://") {
        // `../` steps may not lead to `:` or `/` (a path or a host a relative URL escapes to).
        let mut rest = url;
        let mut up = false;
        loop {
            if let Some(r) = rest.strip_prefix(b"./") {
                rest = r;
            } else if let Some(r) = rest.strip_prefix(b"../") {
                rest = r;
                up = true;
            } else {
                break;
            }
        }
        return !(up && matches!(rest.first(), Some(b':' | b'/')));
    }
    // An address for curl, with its helper prefix (`https::…`) or its scheme.
    let helpers = [&b"http::"[..], b"https::", b"ftp::", b"ftps::"];
    let stripped = helpers.iter().find_map(|p| url.strip_prefix(*p));
    let schemes = [&b"http://"[..], b"https://", b"ftp://", b"ftps://"];
    match schemes.iter().find_map(|s| stripped.unwrap_or(url).strip_prefix(*s)) {
        Some(rest) => {
            let authority = rest.split(|&b| b == b'/' || b == b'?' || b == b'#').next().unwrap_or_default();
            let host_port = authority.rsplit(|&b| b == b'@').next().unwrap_or_default();
            let (host, port) = match host_port.iter().rposition(|&b| b == b':') {
                Some(at) if !host_port.ends_with(b"]") => (&host_port[..at], Some(&host_port[at + 1..])),
                _ => (host_port, None),
            };
            let port_ok = port.is_none_or(|p| p.is_empty() || (p.iter().all(u8::is_ascii_digit) && p.len() <= 5));
            !host.is_empty() && port_ok && !decoded.iter().any(u8::is_ascii_control)
        }
        // A helper prefix before anything but a URL curl can normalize is refused.
        None => stripped.is_none(),
    }
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as it is.
fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (text[i], text.get(i + 1).copied().and_then(hex), text.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Largest `.gitattributes` git reads.
const MAX_ATTRIBUTES_BYTES: usize = 100 * 1024 * 1024;
/// Longest line of a `.gitattributes` git reads.
const MAX_ATTRIBUTES_LINE: usize = 2048;

/// Check a blob a tree names `.gitattributes`: at most 100 MiB, lines (up to a NUL byte) shorter
/// than 2,048 bytes.
pub fn gitattributes(data: &[u8]) -> Result<(), Invalid> {
    if data.len() > MAX_ATTRIBUTES_BYTES {
        return invalid("gitattributesLarge", format!(".gitattributes of {} bytes", data.len()));
    }
    let text = data.split(|&b| b == 0).next().unwrap_or_default();
    if text.split(|&b| b == b'\n').any(|line| line.len() >= MAX_ATTRIBUTES_LINE) {
        return invalid(
            "gitattributesLineLength",
            format!(".gitattributes has a line of {MAX_ATTRIBUTES_LINE} bytes or more"),
        );
    }
    Ok(())
}

/// The header of a commit or tag ends with an empty line, or the object ends with a newline;
/// it holds no NUL byte.
fn verify_headers(data: &[u8]) -> Result<(), Invalid> {
    let header_end = data.windows(2).position(|w| w == b"\n\n").unwrap_or(data.len());
    if data[..header_end].contains(&0) {
        return invalid("nulInHeader", "NUL byte in the header");
    }
    if header_end == data.len() && !data.is_empty() && data.last() != Some(&b'\n') {
        return invalid("unterminatedHeader", "the header does not end");
    }
    Ok(())
}

/// Header lines, consumed from the front.
struct Lines<'a>(&'a [u8]);

impl<'a> Lines<'a> {
    /// The rest of the next line (without its newline) if it starts with `key`; consumed only
    /// then. A last line without a newline is no header line.
    fn header(&mut self, key: &[u8]) -> Option<&'a [u8]> {
        let rest = self.0.strip_prefix(key)?;
        let end = rest.iter().position(|&b| b == b'\n')?;
        self.0 = &rest[end + 1..];
        Some(&rest[..end])
    }
}

/// 40 hex digits (either case, as git reads them) and nothing else.
fn parse_hex(hex: &[u8]) -> Option<ObjectId> {
    if hex.len() != 40 {
        return None;
    }
    let mut raw = [0u8; 20];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        raw[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(ObjectId::Sha1(raw))
}

/// git's identity grammar: `name <email> date tz`, as `fsck_ident` reads it.
fn check_ident(ident: &[u8]) -> Result<(), Invalid> {
    if ident.first() == Some(&b'<') {
        return invalid("missingNameBeforeEmail", "no name before the email");
    }
    let Some(open) = ident.iter().position(|&b| b == b'<' || b == b'>') else {
        return invalid("missingEmail", "no email");
    };
    if ident[open] == b'>' {
        return invalid("badName", "'>' in the name");
    }
    if open == 0 || ident[open - 1] != b' ' {
        return invalid("missingSpaceBeforeEmail", "no space before the email");
    }
    let after_open = &ident[open + 1..];
    let Some(close) = after_open.iter().position(|&b| b == b'<' || b == b'>') else {
        return invalid("badEmail", "the email does not end");
    };
    if after_open[close] != b'>' {
        return invalid("badEmail", "'<' in the email");
    }
    let rest = &after_open[close + 1..];
    let Some(rest) = rest.strip_prefix(b" ") else {
        return invalid("missingSpaceBeforeDate", "no space before the date");
    };
    let rest = &rest[rest.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(rest.len())..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return invalid("badDate", "no date");
    }
    if rest[0] == b'0' && rest.get(1) != Some(&b' ') {
        return invalid("zeroPaddedDate", "zero-padded date");
    }
    let overflow = rest[..digits]
        .iter()
        .try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
        .is_none_or(|n| n >= 1 << 63);
    if overflow {
        return invalid("badDateOverflow", "the date overflows");
    }
    let Some(tz) = rest[digits..].strip_prefix(b" ") else {
        return invalid("badDate", "no space after the date");
    };
    match tz {
        [b'+' | b'-', a, b, c, d] if [a, b, c, d].iter().all(|x| x.is_ascii_digit()) => Ok(()),
        _ => invalid("badTimezone", "the time zone is not +hhmm or -hhmm"),
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests;
