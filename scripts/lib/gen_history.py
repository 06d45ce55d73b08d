#!/usr/bin/env python3
"""A realistic project history as a `git fast-import` stream on stdout.

Years of ordinary work on ~160 source files: small edits to existing files (so a gc'd pack
has long delta chains), short topic branches merged back with merge commits, a release tag
(annotated) every few commits, and a handful of maintenance branches. Deterministic: the same
arguments give the same history, so runs compare like with like.

usage: gen_history.py [COMMITS] [TAGS]   (defaults 2400 and 280: ~14,000 objects, ~290 refs)
"""
import random
import sys

commits = int(sys.argv[1]) if len(sys.argv) > 1 else 2400
tags = int(sys.argv[2]) if len(sys.argv) > 2 else 280
rng = random.Random(16)
out = sys.stdout
t0 = 1_400_000_000
WORDS = ("parse render index cache page section theme plugin route token limit queue retry "
         "buffer stream header value error config build merge branch commit tree blob").split()

dirs = [f"src/{d}" for d in ("core", "http", "git", "store", "render", "cli", "auth", "util")] + \
       ["docs", "tests", "scripts", "examples"]
files = {}
for d in dirs:
    for i in range(rng.randint(10, 16)):
        name = f"{d}/{rng.choice(WORDS)}_{i}.{'md' if d == 'docs' else 'rs'}"
        files[name] = [f"// {name}"] + [f"fn {rng.choice(WORDS)}_{k}() {{ {rng.choice(WORDS)}({k}); }}" for k in range(rng.randint(150, 900))]

def data(text):
    b = text.encode()
    out.write(f"data {len(b)}\n")
    out.write(text)
    out.write("\n")

def edit():
    if rng.random() < 0.15:
        # A new file: projects grow.
        d = rng.choice(dirs)
        name = f"{d}/{rng.choice(WORDS)}_{len(files)}.{'md' if d == 'docs' else 'rs'}"
        files[name] = [f"// {name}"] + [f"fn {rng.choice(WORDS)}_{rng.randint(0, 99999)}() {{ {rng.choice(WORDS)}({k}); }}" for k in range(rng.randint(100, 400))]
        return name
    name = rng.choice(list(files))
    lines = files[name]
    for _ in range(rng.randint(1, 12)):
        at = rng.randrange(1, len(lines) + 1)
        if rng.random() < 0.3 and len(lines) > 20:
            del lines[at - 1]
        else:
            lines.insert(at, f"    let {rng.choice(WORDS)}_{rng.randint(0, 99999)} = {rng.choice(WORDS)}({rng.randint(0, 99999)});")
    return name

mark = 0
def commit(branch, message, parents, changed, when):
    global mark
    mark += 1
    out.write(f"commit refs/heads/{branch}\nmark :{mark}\n")
    who = rng.choice(["Ada <ada@example.org>", "Lin <lin@example.org>", "Sam <sam@example.org>", "Kai <kai@example.org>"])
    out.write(f"author {who} {when} +0000\ncommitter {who} {when} +0000\n")
    data(message)
    if parents:
        out.write(f"from :{parents[0]}\n")
        for p in parents[1:]:
            out.write(f"merge :{p}\n")
    for name in sorted(set(changed)):
        out.write(f"M 100644 inline {name}\n")
        data("\n".join(files[name]) + "\n")
    return mark

when = t0
main = commit("main", "initial import", [], list(files), when)
tag_every = max(1, commits // max(1, tags))
made_tags = 0
n = 1
while n < commits:
    when += rng.randint(600, 86_400)
    if n % 25 == 0 and n + 3 < commits:
        # A topic branch of two commits, merged back with a merge commit.
        side = commit("topic", f"topic work {n}", [main], [edit()], when)
        side = commit("topic", f"topic work {n}, part 2", [side], [edit()], when + 60)
        main = commit("main", f"more on main {n}", [main], [edit()], when + 120)
        main = commit("main", f"Merge branch 'topic-{n}'", [main, side], [edit()], when + 180)
        n += 4
    else:
        main = commit("main", f"{rng.choice(WORDS)}: {rng.choice(WORDS)} the {rng.choice(WORDS)} ({n})", [main], [edit() for _ in range(rng.randint(1, 3))], when)
        n += 1
    if n // tag_every > made_tags and made_tags < tags:
        made_tags += 1
        out.write(f"tag v{made_tags // 100}.{made_tags // 10 % 10}.{made_tags % 10}\nfrom :{main}\n")
        out.write(f"tagger Release <release@example.org> {when + 5} +0000\n")
        data(f"Release {made_tags}\n\nThe changes since the last release, in a line or two.")
    if n % 400 == 0:
        out.write(f"reset refs/heads/maint-{n // 400}\nfrom :{main}\n\n")
out.write("reset refs/heads/topic\nfrom 0000000000000000000000000000000000000000\n\n")
