"""Writes one benchmark's section into docs/performance.md.

A section is delimited by `<!-- NAME:start -->` and `<!-- NAME:end -->`; it replaces the
section of that name when the document has one, and is appended otherwise, so each benchmark
rewrites only its own figures.
"""
import os
import re
import sys


def write_section(doc, name, section):
    if not section.endswith("\n"):
        section += "\n"
    text = open(doc).read() if os.path.exists(doc) else "# Performance\n"
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc)
    print(f"wrote {doc}", file=sys.stderr)
