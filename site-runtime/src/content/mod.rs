//! The content model: front matter, Markdown, and documents (pages and sections) with URLs.

pub mod code_block;
pub mod document;
pub mod front_matter;
pub mod language;
pub mod markdown;
pub mod shortcodes;

pub use document::{is_document, Document, Kind};
