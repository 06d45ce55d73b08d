#!/usr/bin/env python3
"""Write a large generated site as files, for scripts/bench-scale.sh: PAGES pages of ~4 KB of
Markdown in sections of 100 (1,000 sections at 100,000 pages), 5 tags each out of 200, a date,
a fenced code block. The content is valid for WhisperCMS (SITE/site.toml) and for Hugo
(SITE-hugo/, whose hugo.toml reads the same content/ through `contentDir`, with plain layouts
that list, paginate and show the same things). Deterministic.

usage: gen_scale.py SITE PAGES"""
import os
import random
import sys

site, pages = sys.argv[1], int(sys.argv[2])
hugo = site.rstrip("/") + "-hugo"
rng = random.Random(100_000)
WORDS = ("git push site page theme index content publish server commit branch editor markdown review "
         "draft section tag feed search layout render cache snapshot history release mirror follow").split()
sections = max(1, pages // 100)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


write(f"{site}/site.toml",
      'title = "Scale"\nbase_url = "http://127.0.0.1"\npaginate_by = 10\ntaxonomies = ["tags"]\n')
write(f"{site}/content/_index.md", '+++\ntitle = "Home"\n+++\nA generated site.\n')
for s in range(sections):
    write(f"{site}/content/s{s}/_index.md", f'+++\ntitle = "Section {s}"\nsort_by = "date"\n+++\nSection {s}.\n')
for p in range(pages):
    s = p % sections
    tags = ", ".join(f'"tag-{t}"' for t in rng.sample(range(200), 5))
    paragraphs = "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(100)) for _ in range(5))
    code = (f"```rust\nfn page_{p}(site: &Site) -> Result<String, Error> {{\n"
            f"    let title = site.title(\"Page {p}\");\n    Ok(format!(\"{{title}}: {{}}\", {p} * 2))\n}}\n```\n")
    write(f"{site}/content/s{s}/page-{p}.md",
          f'+++\ntitle = "Page {p}"\ndate = 2024-{1 + p % 12:02d}-{1 + p % 28:02d}\ntags = [{tags}]\n+++\n'
          f"# Page {p}\n\n{paragraphs}\n\n## Code\n\n{code}\n{paragraphs[:600]}\n")

write(f"{hugo}/hugo.toml", f'''baseURL = "http://127.0.0.1/"
title = "Scale"
contentDir = "{os.path.abspath(site)}/content"
disableKinds = ["RSS"]
[pagination]
pagerSize = 10
[taxonomies]
tag = "tags"
''')
base = '''<!doctype html><html><head><meta charset="utf-8"><title>{{ .Title }}</title></head>
<body><header><a href="/">{{ site.Title }}</a></header><main>{{ block "main" . }}{{ end }}</main></body></html>
'''
listing = '''{{ define "main" }}<h1>{{ .Title }}</h1>{{ .Content }}
{{ $pager := .Paginate .Pages }}<ul>{{ range $pager.Pages }}<li><a href="{{ .RelPermalink }}">{{ .Title }}</a> {{ .Date.Format "2006-01-02" }}</li>{{ end }}</ul>
{{ if $pager.HasNext }}<a href="{{ $pager.Next.URL }}">next</a>{{ end }}{{ end }}
'''
single = '''{{ define "main" }}<article><h1>{{ .Title }}</h1><time>{{ .Date.Format "2006-01-02" }}</time>
<ul>{{ range .Params.tags }}<li><a href="/tags/{{ . | urlize }}/">{{ . }}</a></li>{{ end }}</ul>
{{ .Content }}</article>{{ end }}
'''
write(f"{hugo}/layouts/_default/baseof.html", base)
write(f"{hugo}/layouts/_default/list.html", listing)
write(f"{hugo}/layouts/_default/single.html", single)
write(f"{hugo}/layouts/index.html", listing)
