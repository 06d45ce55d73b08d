//! Media: pictures and other files imported beside a page (its page bundle) or into `static/`,
//! and the site's media listed with the pages that use them.
//!
//! Importing into a page that is a single file (`content/trip.md`) first turns it into a page
//! bundle (`content/trip/index.md`): the address stays the same, and the picture sits beside the
//! text that shows it, as Hugo and Zola both have it. Photos larger than [`MAX_SIDE`] pixels
//! are scaled down on import (a phone's 4,000-pixel photo is 5 MB no reader needs); everything
//! else is copied as it is.

use std::io::Cursor;

use crate::pages::{self, PageInfo};
use crate::worktree;
use crate::{Error, Result, Workspace};

/// Largest width or height kept for an imported photo; larger ones are scaled down.
pub const MAX_SIDE: u32 = 2400;

/// Largest file imported (the server's pack limits are far above; this keeps a site light).
pub const MAX_BYTES: usize = 50 * 1024 * 1024;

/// Where an imported file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Beside this page (`content/….md`), in its page bundle.
    Page(String),
    /// Into `static/media/`, for the whole site.
    Static,
}

/// An imported file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// Its path in the site.
    pub path: String,
    /// The page's path after the import (a single-file page became `…/index.md`).
    pub page: Option<String>,
    /// What to write in the page's Markdown to show it.
    pub markdown: String,
    /// Whether it was scaled down.
    pub resized: bool,
}

/// A media file of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// Its path in the site.
    pub path: String,
    /// The address the site serves it at.
    pub url: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is a picture a browser shows.
    pub image: bool,
    /// Pages whose text names it.
    pub used_by: Vec<String>,
}

/// A file name safe in a URL and on every file system: lowercase letters, digits, `-`, `_`,
/// and one extension.
fn clean_name(name: &str) -> Option<String> {
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
    let clean = |s: &str| {
        let mut out = String::new();
        for c in s.chars().flat_map(char::to_lowercase) {
            if c.is_ascii_alphanumeric() || c == '_' {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').to_string()
    };
    let (stem, ext) = (clean(stem), clean(ext));
    match (stem.is_empty(), ext.is_empty()) {
        (true, _) => None,
        (false, true) => Some(stem),
        (false, false) => Some(format!("{stem}.{ext}")),
    }
}

fn is_image(path: &str) -> bool {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "gif" | "webp" | "svg" | "avif")
}

/// `bytes` scaled down to [`MAX_SIDE`] when it is a larger photo (JPEG, PNG or WebP; turned
/// upright by its EXIF orientation), in the same format; `None` when it stays as it is.
fn scaled(bytes: &[u8]) -> Option<Vec<u8>> {
    use image::ImageDecoder as _;
    let reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().ok()?;
    let format = reader.format()?;
    if !matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png | image::ImageFormat::WebP) {
        return None;
    }
    let (w, h) = reader.into_dimensions().ok()?;
    if w.max(h) <= MAX_SIDE {
        return None;
    }
    let mut decoder = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().ok()?.into_decoder().ok()?;
    let orientation = decoder.orientation().ok();
    let mut img = image::DynamicImage::from_decoder(decoder).ok()?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let img = img.resize(MAX_SIDE, MAX_SIDE, image::imageops::FilterType::Lanczos3);
    let mut out = Cursor::new(Vec::new());
    match format {
        image::ImageFormat::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
            img.to_rgb8().write_with_encoder(encoder).ok()?;
        }
        other => img.write_to(&mut out, other).ok()?,
    }
    Some(out.into_inner())
}

/// Import `bytes`, named `name` by the person (`IMG 0042.JPG`), into `into`.
pub fn import(ws: &Workspace, name: &str, bytes: &[u8], into: &Place) -> Result<Imported> {
    let bad = |reason: String| Error::Page { path: name.to_string(), reason };
    if bytes.len() > MAX_BYTES {
        return Err(bad(format!("{} MB is more than the {} MB a file may have", bytes.len() >> 20, MAX_BYTES >> 20)));
    }
    let clean = clean_name(name).ok_or_else(|| bad("the file has no usable name".into()))?;
    if clean.ends_with(".md") {
        return Err(bad("a Markdown file is a page, not media: create a page instead".into()));
    }
    let (folder, page) = match into {
        Place::Static => ("static/media".to_string(), None),
        Place::Page(path) => {
            let page = bundle_page(ws, path)?;
            let folder = page.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
            (folder, Some(page))
        }
    };
    // A name not taken yet: `photo.jpg`, `photo-2.jpg`, …
    let (stem, ext) =
        clean.rsplit_once('.').map(|(s, e)| (s.to_string(), format!(".{e}"))).unwrap_or((clean.clone(), String::new()));
    let mut file = clean.clone();
    let mut n = 2;
    while ws.dir().join(&folder).join(&file).exists() {
        file = format!("{stem}-{n}{ext}");
        n += 1;
    }
    let path = format!("{folder}/{file}");
    let resized = scaled(bytes);
    let data = resized.as_deref().unwrap_or(bytes);
    worktree::write_file(&ws.dir().join(&path), data, gix::objs::tree::EntryKind::Blob)?;
    let alt = stem.replace(['-', '_'], " ");
    let target = match &page {
        Some(_) => file.clone(),
        None => site_runtime::index::asset_url(&path).unwrap_or_else(|| format!("/{path}")),
    };
    let markdown = if is_image(&path) { format!("![{alt}]({target})") } else { format!("[{file}]({target})") };
    Ok(Imported { path, page, markdown, resized: resized.is_some() })
}

/// The page at `path` as a page bundle: a single-file page is moved to `…/index.md` first (its
/// address does not change). Returns the bundle's page path.
fn bundle_page(ws: &Workspace, path: &str) -> Result<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == "index.md" || name == "_index.md" {
        if !ws.dir().join(path).is_file() {
            return Err(Error::Page { path: path.into(), reason: "no such page".into() });
        }
        return Ok(path.to_string());
    }
    let bundle = format!("{}/index.md", path.strip_suffix(".md").unwrap_or(path));
    let moved = pages::move_page(ws, path, &bundle)?;
    debug_assert!(!moved.alias_added, "a page keeps its address when it becomes a bundle");
    Ok(bundle)
}

/// The files under the site's folders `roots`, with their sizes, in path order (a plain walk:
/// listing needs no hashing, which `worktree::scan` would do for changed files).
fn files_under(ws: &Workspace, roots: &[&str]) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut stack: Vec<(std::path::PathBuf, String)> =
        roots.iter().map(|r| (ws.dir().join(r), r.to_string())).filter(|(p, _)| p.is_dir()).collect();
    while let Some((dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(Error::fs(&dir))? {
            let entry = entry.map_err(Error::fs(&dir))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if name.starts_with('.') {
                continue; // the app's temporaries and hidden files are no media
            }
            let meta = entry.metadata().map_err(Error::fs(entry.path()))?;
            let rel = format!("{prefix}/{name}");
            if meta.is_dir() {
                stack.push((entry.path(), rel));
            } else {
                out.push((rel, meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every media file of the site (under `static/`, and beside pages in `content/`), with the
/// pages whose text names it.
pub fn list(ws: &Workspace) -> Result<Vec<Media>> {
    let files = files_under(ws, &["static", "content"])?;
    let pages: Vec<PageInfo> = pages::list(ws)?;
    let texts: Vec<(String, String)> = pages
        .iter()
        .filter_map(|p| std::fs::read_to_string(ws.dir().join(&p.path)).ok().map(|t| (p.path.clone(), t)))
        .collect();
    let mut out = Vec::new();
    for (path, size) in &files {
        let media = path.starts_with("static/") || (path.starts_with("content/") && !path.ends_with(".md"));
        let Some(url) = media.then(|| site_runtime::index::asset_url(path)).flatten() else { continue };
        let name = path.rsplit('/').next().unwrap_or(path);
        let folder = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let used_by = texts
            .iter()
            .filter(|(page, text)| {
                text.contains(&url) || (page.rsplit_once('/').map(|(d, _)| d) == Some(folder) && text.contains(name))
            })
            .map(|(page, _)| page.clone())
            .collect();
        out.push(Media { path: path.clone(), url, size: *size, image: is_image(path), used_by });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixture::site;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 100, 50]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(clean_name("IMG 0042.JPG").as_deref(), Some("img-0042.jpg"));
        assert_eq!(clean_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_name("C:\\Users\\me\\Café au lait!.png").as_deref(), Some("caf-au-lait.png"));
        assert_eq!(clean_name("...").as_deref(), None);
        assert_eq!(clean_name("").as_deref(), None);
    }

    #[test]
    fn a_photo_goes_beside_its_page_which_becomes_a_bundle() {
        let (_tmp, ws) = site();
        let url_before =
            pages::url_of("content/about.md", &std::fs::read_to_string(ws.dir().join("content/about.md")).unwrap());
        let big = png(3000, 1500);
        let first = import(&ws, "Team Photo.PNG", &big, &Place::Page("content/about.md".into())).unwrap();
        assert_eq!(first.path, "content/about/team-photo.png");
        assert_eq!(first.page.as_deref(), Some("content/about/index.md"));
        assert_eq!(first.markdown, "![team photo](team-photo.png)");
        assert!(first.resized);
        let (w, h) = image::image_dimensions(ws.dir().join(&first.path)).unwrap();
        assert_eq!((w, h), (MAX_SIDE, MAX_SIDE / 2));
        // The page kept its address; a second import of the same name gets its own.
        let text = std::fs::read_to_string(ws.dir().join("content/about/index.md")).unwrap();
        assert_eq!(pages::url_of("content/about/index.md", &text), url_before);
        assert!(!text.contains("aliases"));
        let small = png(10, 10);
        let second = import(&ws, "team photo.png", &small, &Place::Page("content/about/index.md".into())).unwrap();
        assert_eq!(second.path, "content/about/team-photo-2.png");
        assert!(!second.resized);
        assert_eq!(std::fs::read(ws.dir().join(&second.path)).unwrap(), small, "small files are copied as they are");
        // Listed, with the page that uses it once the text names it.
        std::fs::write(ws.dir().join("content/about/index.md"), format!("{text}\n{}\n", first.markdown)).unwrap();
        let media = list(&ws).unwrap();
        let photo = media.iter().find(|m| m.path == first.path).unwrap();
        assert_eq!(photo.url, format!("{url_before}team-photo.png"));
        assert_eq!(photo.used_by, ["content/about/index.md"]);
        assert!(media.iter().find(|m| m.path == second.path).unwrap().used_by.is_empty());
        assert!(media.iter().any(|m| m.path == "static/images/whisper.svg" && m.image));
    }

    #[test]
    fn site_wide_media_and_hostile_input() {
        let (_tmp, ws) = site();
        let pdf = import(&ws, "Menu (2026).pdf", b"%PDF-1.7", &Place::Static).unwrap();
        assert_eq!(pdf.path, "static/media/menu-2026.pdf");
        assert_eq!(pdf.markdown, "[menu-2026.pdf](/media/menu-2026.pdf)");
        // Broken image bytes are kept as given (nothing to scale), never a panic.
        let broken = import(&ws, "x.jpg", b"\xff\xd8\xff garbage", &Place::Static).unwrap();
        assert!(!broken.resized);
        assert!(import(&ws, "page.md", b"+++", &Place::Static).is_err());
        assert!(import(&ws, "???", b"x", &Place::Static).is_err());
        assert!(import(&ws, "a.png", b"x", &Place::Page("content/none.md".into())).is_err());
        assert!(import(&ws, "a.png", b"x", &Place::Page("../outside.md".into())).is_err());
        assert!(import(&ws, "a.bin", &vec![0; MAX_BYTES + 1], &Place::Static).is_err());
        // The check says what the server would refuse: the broken picture, nothing else.
        let author = crate::fixture::author();
        ws.save("media", &author).unwrap();
        let problems = ws.check("main").unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "static/media/x.jpg");
        assert!(problems[0].message.starts_with("not a readable image"), "{problems:?}");
    }
}
