"""The HTML report opens in a real browser (headless Chromium) with its figures and matrix."""
import glob
import os
import re
import shutil
import subprocess

import pytest

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=10000"]


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "chromium is needed (apt-get install chromium; tools/install-deps.sh check lists it)"
    return exe


@pytest.fixture(scope="module")
def compared(repo_root, fixtures_dir, tmp_path_factory):
    runs = sorted(glob.glob(os.path.join(fixtures_dir, "runs", "*")))
    out = tmp_path_factory.mktemp("cmp")
    res = subprocess.run([os.path.join(repo_root, "runners", "pagelab"), "compare"] + runs + ["--out", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out / "report.html")
    return runs, out


def dump_dom(html, tmp_path):
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    res = subprocess.run([chromium()] + CHROMIUM_FLAGS + ["--user-data-dir=%s" % profile, "--dump-dom",
                                                          "file://%s" % html],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def test_report_renders_with_every_figure_decoded(compared, tmp_path):
    _, out = compared
    dom = dump_dom(out / "report.html", tmp_path)
    body = re.search(r"<body([^>]*)>", dom).group(1)
    loaded = int(re.search(r'data-figures-loaded="(\d+)"', body).group(1))
    total = int(re.search(r'data-figures="(\d+)"', body).group(1))
    assert total >= 4 and loaded == total
    assert 'id="fig-behaviour_matrix"' in dom and 'id="fig-madvise_cost"' in dom


def test_report_shows_the_matrix_for_every_run(compared, tmp_path):
    runs, out = compared
    dom = dump_dom(out / "report.html", tmp_path)
    assert 'id="matrix"' in dom
    for r in runs:
        assert os.path.basename(r) in dom
    assert re.search(r"<td class=\"pass\">pass", dom)


def test_report_is_self_contained(compared):
    _, out = compared
    html = (out / "report.html").read_text()
    # Figures are data: URIs; nothing is fetched from elsewhere.
    assert not re.search(r"""(src|href)=['"](https?:|//)""", html)
    assert html.count("data:image/png;base64,") >= 4
