"""Every relative link in the project's Markdown files resolves to a file or directory of the tree."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def markdown_files():
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / p for p in out.stdout.split()]


def test_every_markdown_link_resolves():
    files = markdown_files()
    assert files, "no Markdown files found"
    broken = []
    for md in files:
        for target in LINK.findall(md.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor in the same file
            path = (md.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append("%s: %s" % (md.relative_to(ROOT), target))
    assert not broken, "\n".join(broken)
