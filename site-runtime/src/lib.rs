//! The site runtime of WhisperCMS: from any commit of a site repository, an SQLite index of its
//! content and the public site rendered through the active theme, straight from Git objects.
//!
//! Pipeline, as the modules are named: [`config`] (`site.toml`) → [`content`] (front matter,
//! Markdown, documents) → [`source`] (reading and diffing Git trees) → [`index`] (SQLite, full and
//! incremental).
//!
//! This crate knows nothing of SSH or the pack protocol.

pub mod config;
pub mod content;
mod error;
pub mod index;
pub mod source;
pub mod theme;

pub use config::SiteConfig;
pub use error::{Error, Result};
