#!/usr/bin/env python3
"""Write a `git fast-import` stream of a generated site: N pages in 50 sections, tags, tables,
a fenced code block on every page and a shortcode on every fourth (Zola and Hugo syntax in turn).
Usage: gen_site.py OUT PAGES. Shared by the benchmarks."""
import sys, random
out, pages = open(sys.argv[1], "w"), int(sys.argv[2])
random.seed(7)
words = "git push site page theme index content publish server commit branch editor markdown review draft".split()
def blob(path, text):
    data = text.encode()
    out.write(f"M 100644 inline {path}\ndata {len(data)}\n{text}\n")
out.write("commit refs/heads/main\ncommitter Bench <b@e> 1700000000 +0000\ndata 4\nsite\n")
blob("site.toml", 'title = "Bench"\nbase_url = "http://127.0.0.1"\npaginate_by = 10\ntaxonomies = ["tags"]\n')
blob("content/_index.md", "+++\ntitle = \"Home\"\n+++\nThe bench site.\n")
sections = 50
for s in range(sections):
    blob(f"content/s{s}/_index.md", f"+++\ntitle = \"Section {s}\"\nsort_by = \"date\"\n+++\n")
for p in range(pages):
    s = p % sections
    body = "\n\n".join(" ".join(random.choice(words) for _ in range(60)) for _ in range(6))
    tags = ", ".join(f'"{random.choice(words)}"' for _ in range(2))
    code = (f"```rust,hl_lines=2\nfn page_{p}(site: &Site) -> Result<String, Error> {{\n"
            f"    let title = site.title(\"Page {p}\");\n    // {random.choice(words)} {random.choice(words)}\n"
            f"    Ok(format!(\"{{title}}: {{}}\", {p} * 2))\n}}\n```\n")
    shortcode = ""
    if p % 8 == 0:
        shortcode = f'\n{{{{ youtube(id="vid{p}") }}}}\n'
    elif p % 8 == 4:
        shortcode = f'\n{{{{% details summary="More on {p}" %}}}}\nHidden *text* {p}.\n{{{{% /details %}}}}\n'
    text = (f"+++\ntitle = \"Page {p}\"\ndate = 2024-{1 + p % 12:02d}-{1 + p % 28:02d}\ntags = [{tags}]\n+++\n"
            f"# Page {p}\n\n{body}\n\n## Details\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n{code}{shortcode}")
    blob(f"content/s{s}/page-{p}.md", text)
