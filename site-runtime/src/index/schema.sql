-- The site index: a cache derived from one commit of the site repository (see `meta.commit`).
-- Deleting the file loses nothing; it is rebuilt from Git.
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Pages and sections (kind = 'page' | 'section').
CREATE TABLE IF NOT EXISTS documents (
    id            INTEGER PRIMARY KEY,
    path          TEXT NOT NULL UNIQUE,
    blob          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    url           TEXT NOT NULL,
    -- The URL's last component (sort_by = "slug").
    slug          TEXT NOT NULL,
    section       TEXT NOT NULL,
    title         TEXT NOT NULL,
    description   TEXT,
    date          INTEGER,
    updated       INTEGER,
    -- Visible from (publish_date, else date) and until (expiry_date).
    publish       INTEGER,
    expiry        INTEGER,
    draft         INTEGER NOT NULL,
    render        INTEGER NOT NULL,
    transparent   INTEGER NOT NULL,
    insert_anchor_links TEXT,
    redirect_to   TEXT,
    weight        INTEGER,
    template      TEXT,
    page_template TEXT,
    sort_by       TEXT,
    paginate_by   INTEGER,
    word_count    INTEGER NOT NULL,
    -- The language, and what translations of one document share (its default-language path).
    lang          TEXT NOT NULL,
    translation_key TEXT NOT NULL,
    -- The large columns last: a row's first bytes stay on its B-tree page and the rest goes to
    -- overflow pages, so every column a listing filters or sorts on must come before these
    -- (with `lang` after them, listing 100,000 pages read every page's HTML: seconds).
    summary_html  TEXT,
    content_html  TEXT NOT NULL,
    toc           TEXT NOT NULL,
    extra         TEXT NOT NULL,
    -- Shortcode calls (JSON), by the number of their placeholder in the HTML.
    calls         TEXT
);
CREATE INDEX IF NOT EXISTS documents_translations ON documents(translation_key);
-- A document by URL, with what decides whether it is visible.
CREATE INDEX IF NOT EXISTS documents_url ON documents(url, draft, render, publish, expiry, updated, date);
-- The sitemap index: per file of 50,000 row ids (`read::SITEMAP_BUCKET`), its documents newest
-- change first, with what decides whether they are visible.
CREATE INDEX IF NOT EXISTS documents_sitemap
    ON documents(id / 50000, coalesce(updated, date), draft, render, publish, expiry);
CREATE INDEX IF NOT EXISTS documents_section ON documents(section, kind, date);
-- The home page and feeds: dated pages of a language, newest first (then by path), with what
-- decides visibility, so a listing page is a walk of this index that stops at its end.
CREATE INDEX IF NOT EXISTS documents_listing ON documents(kind, lang, date DESC, path, draft, render, publish, expiry);
-- Every uncached render asks when the next scheduled page appears (`next_publication`): without
-- this index that is a scan of every document. On `publish` alone: with `draft` first, SQLite (no
-- statistics) prefers it to `documents_url` for page lookups and scans every published page.
CREATE INDEX IF NOT EXISTS documents_scheduled ON documents(publish);
CREATE INDEX IF NOT EXISTS documents_expiring ON documents(expiry);
-- What documents refer to (kind: link → a content path, shortcode → a name, template → a name),
-- so a push that removes one finds who used it without reading every document.
CREATE TABLE IF NOT EXISTS refs (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    line        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refs_by_target ON refs(kind, target);
CREATE INDEX IF NOT EXISTS refs_by_document ON refs(document_id);
CREATE TABLE IF NOT EXISTS terms (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    taxonomy    TEXT NOT NULL,
    term        TEXT NOT NULL,
    slug        TEXT NOT NULL,
    -- Copied from the document, what a term's listing filters and sorts on: its language, its
    -- date and title, and when it is visible (`documents.publish`, `documents.expiry`). `listed`
    -- is 1 on the one row per page and slug that lists it: a counted page (not a section, not a
    -- draft, rendered), under the smallest spelling it uses for that slug. A tag page is then one
    -- range of `terms_listing`, already in order (joining a term's 2,500 rows to their documents
    -- and sorting them took 20-30 ms at 100,000 pages).
    lang        TEXT NOT NULL,
    listed      INTEGER NOT NULL,
    date        INTEGER,
    title       TEXT NOT NULL,
    publish     INTEGER,
    expiry      INTEGER
);
-- Covering, in the listing's order (newest first, undated last): a term's page of listing walks
-- `limit + offset` entries of it and reads no document but those it shows.
CREATE INDEX IF NOT EXISTS terms_listing
    ON terms(taxonomy, lang, slug, listed, date IS NULL, date DESC, title, document_id, publish, expiry);
CREATE INDEX IF NOT EXISTS terms_by_document ON terms(document_id);
-- How many pages carry each term, kept by every update: pages (not sections) that are not drafts
-- and are rendered, one count per page and term slug under the spelling that page uses (the
-- smallest, when it spells one slug twice). A taxonomy's term list reads these few rows instead
-- of counting every page (a second at 100,000 pages); pages scheduled for later or expired are
-- few and subtracted when read.
CREATE TABLE IF NOT EXISTS term_counts (
    taxonomy TEXT NOT NULL,
    lang     TEXT NOT NULL,
    slug     TEXT NOT NULL,
    term     TEXT NOT NULL,
    pages    INTEGER NOT NULL,
    PRIMARY KEY (taxonomy, lang, slug, term)
) WITHOUT ROWID;
-- Counted pages (as above) per language, dated or not, kept alike: the home page's total.
CREATE TABLE IF NOT EXISTS page_counts (
    lang  TEXT NOT NULL,
    dated INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    PRIMARY KEY (lang, dated)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS aliases (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    alias       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS aliases_by_alias ON aliases(alias);
CREATE INDEX IF NOT EXISTS aliases_by_document ON aliases(document_id);
-- Files served as they are: content/ assets (page bundles) and static/.
CREATE TABLE IF NOT EXISTS assets (
    path         TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    blob         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_url ON assets(url);
-- Files that could not be indexed, with the reason (shown to operators, refused at push).
CREATE TABLE IF NOT EXISTS problems (
    path    TEXT PRIMARY KEY,
    message TEXT NOT NULL
);
-- Search candidates' language and visibility, read without the documents' rows (`read::search`).
CREATE INDEX IF NOT EXISTS documents_visibility ON documents(id, lang, draft, render, publish, expiry);
-- Words stemmed (Porter: "publishing" finds "published"), accents folded as unicode61 does.
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(title, summary, body, tokenize = 'porter unicode61');
