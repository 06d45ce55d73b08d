//! Resized images: what a theme's `resize_image(path, width, height, op)` (Zola's function) and
//! the built-in `figure` shortcode's `srcset` ask for, made from the image's Git blob and kept as
//! derived data under the index's directory (`images/`), named by the blob and the request so
//! that the same request is made once and a missing file is made again on the next render.
//!
//! Inputs are bounded: images of more than [`MAX_PIXELS`] or [`MAX_INPUT_BYTES`] are refused at
//! push ([`check`], a decompression bomb never reaches the decoder here), and decoding runs with
//! the same limits.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gix::ObjectId;
use serde::Serialize;

use crate::source;

/// At most this many pixels in an image the site keeps (a 50-megapixel photo is fine; a
/// 100,000 × 100,000 PNG of a few kilobytes is a decompression bomb).
pub const MAX_PIXELS: u64 = 50_000_000;
/// At most this many bytes in an image resized here.
pub const MAX_INPUT_BYTES: usize = 40 * 1024 * 1024;
/// The largest side a resized image may have.
pub const MAX_SIDE: u32 = 4096;
/// Where resized images are served.
pub const URL_PREFIX: &str = "/processed_images/";

/// The repository paths a template's image path may name: a repository path as it is; a URL
/// path (`/img/a.jpg`) in `static/` or beside a page in `content/`; otherwise relative to
/// `content/`, then `static/` (Zola's rule).
pub fn candidates(path: &str) -> Vec<String> {
    if path.starts_with("content/") || path.starts_with("static/") {
        return vec![path.to_string()];
    }
    let rel = path.trim_start_matches('/');
    if path.starts_with('/') {
        vec![format!("static/{rel}"), format!("content/{rel}")]
    } else {
        vec![format!("content/{rel}"), format!("static/{rel}")]
    }
}

/// How a resize fits the image into width × height (Zola's operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Exactly width × height, stretched.
    Scale,
    /// Width given, height keeps the ratio.
    FitWidth,
    /// Height given, width keeps the ratio.
    FitHeight,
    /// Within width × height, ratio kept (never enlarged).
    Fit,
    /// Width × height, ratio kept, cropped to fill.
    Fill,
}

impl Op {
    /// Parse Zola's name of an operation.
    pub fn parse(name: &str) -> Result<Op, String> {
        Ok(match name {
            "scale" => Op::Scale,
            "fit_width" => Op::FitWidth,
            "fit_height" => Op::FitHeight,
            "fit" => Op::Fit,
            "fill" => Op::Fill,
            other => return Err(format!("op must be scale, fit_width, fit_height, fit or fill, not {other:?}")),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Op::Scale => "scale",
            Op::FitWidth => "fit_width",
            Op::FitHeight => "fit_height",
            Op::Fit => "fit",
            Op::Fill => "fill",
        }
    }
}

/// What a resize gives templates (Zola's fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resized {
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub orig_width: u32,
    pub orig_height: u32,
}

/// A resize request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub op: Op,
    /// `jpg`, `png`, `webp`, or `auto` (the source's: JPEG stays JPEG, anything else PNG).
    pub format: String,
    /// JPEG quality, 1–100.
    pub quality: u8,
}

/// Resized images kept in a directory.
#[derive(Debug)]
pub struct ImageStore {
    dir: PathBuf,
    /// Names this process made or found, with what `resize` answered.
    known: Mutex<std::collections::HashMap<String, Resized>>,
}

impl ImageStore {
    /// A store in `dir` (created when the first image is made).
    pub fn new(dir: PathBuf) -> ImageStore {
        ImageStore { dir, known: Mutex::default() }
    }

    /// Resize the image at `path` (a repository path) of `commit` as `request` asks.
    pub fn resize(
        &self,
        repo: &gix::Repository,
        commit: ObjectId,
        path: &str,
        request: &Request,
    ) -> Result<Resized, String> {
        let blob = source::blob_at(repo, commit, path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{path}: no such file"))?;
        let ext = output_extension(path, &request.format)?;
        let name = format!(
            "{blob}-{}x{}-{}-q{}.{ext}",
            request.width.unwrap_or(0),
            request.height.unwrap_or(0),
            request.op.name(),
            request.quality
        );
        if let Some(done) = self.known.lock().ok().and_then(|k| k.get(&name).cloned()) {
            if self.dir.join(&name).exists() {
                return Ok(done);
            }
        }
        let bytes = source::read_blob(repo, blob).map_err(|e| e.to_string())?;
        let resized = self.make(&bytes, &name, ext, request)?;
        if let Ok(mut known) = self.known.lock() {
            known.insert(name, resized.clone());
        }
        Ok(resized)
    }

    fn make(&self, bytes: &[u8], name: &str, ext: &str, request: &Request) -> Result<Resized, String> {
        let image = decode(bytes)?;
        let (ow, oh) = (image.width(), image.height());
        let (w, h) = target_size(ow, oh, request)?;
        let url = format!("{URL_PREFIX}{name}");
        let file = self.dir.join(name);
        if !file.exists() {
            let filter = image::imageops::FilterType::Lanczos3;
            let out = match request.op {
                Op::Scale => image.resize_exact(w, h, filter),
                Op::Fill => image.resize_to_fill(w, h, filter),
                _ => image.resize_exact(w, h, filter),
            };
            let mut encoded = Vec::new();
            match ext {
                "jpg" => {
                    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, request.quality);
                    out.to_rgb8().write_with_encoder(encoder).map_err(|e| e.to_string())?;
                }
                "webp" => {
                    out.write_to(&mut Cursor::new(&mut encoded), image::ImageFormat::WebP).map_err(|e| e.to_string())?
                }
                _ => {
                    out.write_to(&mut Cursor::new(&mut encoded), image::ImageFormat::Png).map_err(|e| e.to_string())?
                }
            }
            write_atomically(&self.dir, &file, &encoded).map_err(|e| format!("writing {}: {e}", file.display()))?;
        }
        Ok(Resized { url, width: w, height: h, orig_width: ow, orig_height: oh })
    }

    /// The file of a resized image's URL name, if this store has it (a missing one is made
    /// again by the next render that asks for it).
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        if !valid_name(name) {
            return None;
        }
        let path = self.dir.join(name);
        path.exists().then_some(path)
    }
}

/// `<40 hex>-<w>x<h>-<op>-q<n>.<ext>`: nothing else is looked up on disk.
fn valid_name(name: &str) -> bool {
    name.len() < 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
        && name.matches('.').count() == 1
}

fn output_extension(path: &str, format: &str) -> Result<&'static str, String> {
    let source = path.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
    Ok(match format {
        "auto" if matches!(source.as_str(), "jpg" | "jpeg") => "jpg",
        "auto" => "png",
        "jpg" | "jpeg" => "jpg",
        "png" => "png",
        "webp" => "webp",
        other => return Err(format!("format must be auto, jpg, png or webp, not {other:?}")),
    })
}

/// The size of the result of `request` on an image of `ow` × `oh`.
fn target_size(ow: u32, oh: u32, request: &Request) -> Result<(u32, u32), String> {
    let need = |v: Option<u32>, what: &str| {
        v.filter(|n| *n > 0).ok_or_else(|| format!("{} needs a {what}", request.op.name()))
    };
    let ratio = |a: u32, b: u32, c: u32| ((a as u64 * c as u64) / b.max(1) as u64).max(1) as u32;
    let (w, h) = match request.op {
        Op::Scale | Op::Fill => (need(request.width, "width")?, need(request.height, "height")?),
        Op::FitWidth => {
            let w = need(request.width, "width")?.min(ow);
            (w, ratio(oh, ow, w))
        }
        Op::FitHeight => {
            let h = need(request.height, "height")?.min(oh);
            (ratio(ow, oh, h), h)
        }
        Op::Fit => {
            let (mw, mh) = (need(request.width, "width")?, need(request.height, "height")?);
            if ow <= mw && oh <= mh {
                (ow, oh)
            } else if ow as u64 * mh as u64 > oh as u64 * mw as u64 {
                (mw, ratio(oh, ow, mw))
            } else {
                (ratio(ow, oh, mh), mh)
            }
        }
    };
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!("{w}×{h} is larger than {MAX_SIDE} pixels on a side"));
    }
    Ok((w, h))
}

fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(65_535);
    limits.max_image_height = Some(65_535);
    limits.max_alloc = Some(MAX_PIXELS * 4 + 64 * 1024 * 1024);
    limits
}

fn decode(bytes: &[u8]) -> Result<image::DynamicImage, String> {
    check(bytes)?;
    let mut reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    reader.limits(limits());
    reader.decode().map_err(|e| format!("cannot decode the image: {e}"))
}

/// Whether `bytes` is an image the site may keep: its header readable, at most [`MAX_PIXELS`]
/// pixels; its width and height. For push validation (no pixel is decoded).
pub fn check(bytes: &[u8]) -> Result<(u32, u32), String> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(format!(
            "{} MB is more than the {} MB an image may have",
            bytes.len() >> 20,
            MAX_INPUT_BYTES >> 20
        ));
    }
    // The header alone: no limits needed to read it, and the pixel count is judged below.
    let reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string())?;
    let (w, h) = reader.into_dimensions().map_err(|e| format!("not a readable image: {e}"))?;
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(format!(
            "{w}×{h} pixels is more than the {} megapixels an image may have (a decompression bomb?)",
            MAX_PIXELS / 1_000_000
        ));
    }
    Ok((w, h))
}

/// Whether a path names an image format [`check`] reads.
pub fn is_image(path: &str) -> bool {
    let ext = path.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
    matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "webp" | "gif")
}

fn write_atomically(dir: &Path, file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp =
        dir.join(format!(".tmp-{}-{}", std::process::id(), file.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 30]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    fn request(w: Option<u32>, h: Option<u32>, op: Op) -> Request {
        Request { width: w, height: h, op, format: "auto".into(), quality: 75 }
    }

    #[test]
    fn sizes_follow_zolas_operations() {
        assert_eq!(target_size(1000, 500, &request(Some(400), None, Op::FitWidth)).unwrap(), (400, 200));
        assert_eq!(target_size(1000, 500, &request(None, Some(100), Op::FitHeight)).unwrap(), (200, 100));
        assert_eq!(target_size(1000, 500, &request(Some(300), Some(300), Op::Fit)).unwrap(), (300, 150));
        assert_eq!(target_size(100, 50, &request(Some(300), Some(300), Op::Fit)).unwrap(), (100, 50));
        assert_eq!(target_size(1000, 500, &request(Some(300), Some(300), Op::Fill)).unwrap(), (300, 300));
        // Never enlarged by fit_width.
        assert_eq!(target_size(200, 100, &request(Some(800), None, Op::FitWidth)).unwrap(), (200, 100));
        assert!(target_size(10, 10, &request(None, None, Op::Fill)).is_err());
        assert!(target_size(10, 10, &request(Some(9000), Some(10), Op::Scale)).is_err());
        assert!(Op::parse("crop").is_err());
    }

    #[test]
    fn makes_the_file_once_and_serves_only_valid_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::new(dir.path().join("images"));
        let made = store
            .make(&png(40, 20), "abc-20x0-fit_width-q75.png", "png", &request(Some(20), None, Op::FitWidth))
            .unwrap();
        assert_eq!((made.width, made.height, made.orig_width), (20, 10, 40));
        assert_eq!(made.url, "/processed_images/abc-20x0-fit_width-q75.png");
        let file = store.file("abc-20x0-fit_width-q75.png").unwrap();
        assert_eq!(image::image_dimensions(file).unwrap(), (20, 10));
        for bad in ["../x.png", ".tmp", "a/b.png", "x.png.png", ""] {
            assert!(store.file(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn bombs_and_garbage_are_refused_before_decoding() {
        // A valid PNG header claiming 100,000 × 100,000 pixels over a one-pixel body.
        let bomb = include_bytes!("../../tests/fixtures/bomb.png");
        let err = check(bomb).unwrap_err();
        assert!(err.contains("decompression bomb"), "{err}");
        // The same header with its checksum wrong.
        let mut broken = png(1, 1);
        broken[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(check(&broken).unwrap_err().contains("not a readable image"));
        assert!(check(b"not an image at all").is_err());
        assert_eq!(check(&png(3, 2)).unwrap(), (3, 2));
        assert!(decode(bomb).is_err());
    }
}
