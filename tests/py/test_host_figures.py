"""Figures from the committed fixture runs: each type exists, PDF fonts are embedded, PNGs are the
expected size and not blank."""
import glob
import os
import subprocess

import matplotlib.image as mpimg
import numpy as np
import pytest

from pagelab_host import model

PNG_DPI = 200


@pytest.fixture(scope="module")
def plotted(repo_root, fixtures_dir, tmp_path_factory):
    runs = sorted(glob.glob(os.path.join(fixtures_dir, "runs", "*")))
    assert len(runs) >= 2
    out = tmp_path_factory.mktemp("fig")
    res = subprocess.run([os.path.join(repo_root, "runners", "pagelab"), "plot"] + runs +
                         ["--out", str(out), "--format", "pdf", "--format", "png", "--format", "svg"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
    # A layout that collapses (labels or legend wider than the figure) warns: it would look broken.
    assert "Warning" not in res.stderr, res.stderr
    return runs, out


def expected_figures(runs):
    """The figure types the fixture data allows, from what the runs hold."""
    benches = [model.benchmarks(model.load_run(r)) for r in runs]
    every = [b for per in benches for b in per.values() if b.times and not b.skipped]
    names = {"behaviour_matrix"}
    if any(b.area == "madvise" and b.per_page_times() for b in every):
        names.add("madvise_cost")
    for area in {b.area for b in every}:
        ops = {b.op for b in every if b.area == area}
        # tlb's argument counts threads or pages: not drawn against a size.
        if area not in ("fork", "pattern", "harness", "tlb") and any(
                len({b.arg for b in every if b.area == area and b.op == op and b.arg}) >= 2 for op in ops):
            names.add("size_" + area)
    if any(b.area == "fork" and b.arg for b in every):
        names.add("fork_latency")
    if any(b.area == "pattern" for b in every):
        names.add("pattern_init")
    if any(b.per_page_times() and set(b.counters) & {"page-faults", "minor-faults"} for b in every):
        names.add("counters_per_page")
    return names


def test_the_fixtures_cover_the_main_figure_types(plotted):
    runs, _ = plotted
    want = expected_figures(runs)
    assert {"behaviour_matrix", "madvise_cost", "fork_latency", "counters_per_page", "pattern_init"} <= want
    assert any(n.startswith("size_") for n in want)


def test_every_figure_type_is_written_in_each_format(plotted):
    runs, figs = plotted
    for name in expected_figures(runs):
        for fmt in ("pdf", "png", "svg"):
            path = figs / ("%s.%s" % (name, fmt))
            assert path.exists() and path.stat().st_size > 1000, path


def test_pdf_fonts_are_embedded_truetype(plotted):
    runs, figs = plotted
    for name in expected_figures(runs):
        res = subprocess.run(["pdffonts", str(figs / (name + ".pdf"))], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        rows = res.stdout.splitlines()[2:]
        assert rows, "no fonts in %s" % name
        for row in rows:
            assert "TrueType" in row and "Type 3" not in row, row
            assert row.split()[-5] == "yes", "font not embedded: %s" % row


def test_png_has_the_figure_size_and_is_not_blank(plotted):
    from PIL import Image  # matplotlib depends on pillow
    runs, figs = plotted
    for name in expected_figures(runs):
        path = figs / (name + ".png")
        with Image.open(path) as im:
            w, h = im.size
        assert w in (700, 1400), (name, w)  # one column (3.5 in) or two (7 in) at 200 dpi
        assert 200 <= h <= 3000, (name, h)
        px = mpimg.imread(str(path))[..., :3]
        ink = np.mean(np.any(px < 0.9, axis=-1))
        assert 0.02 < ink < 0.9, (name, ink)


def test_svg_keeps_text_as_text(plotted):
    runs, figs = plotted
    svg = (figs / "madvise_cost.svg").read_text()
    assert "<text" in svg and "cost per page (ns)" in svg


def test_size_figures_only_for_size_arguments(tmp_path):
    """tlb (thread and page counts) gets no size figure; refalloc is drawn per batch against block size."""
    import json
    from pagelab_host import analysis
    from plots import figures
    run = tmp_path / "run"
    run.mkdir()
    entries = [("tlb/munmap_threads/%d" % n, 1000.0 * n, {"pages": 1}) for n in (1, 2, 4)]
    entries += [("refalloc/none/%d" % n, 1e6, {"items_per_second": 1e6, "ops": 16}) for n in (64, 65536)]
    (run / "perf.json").write_text(json.dumps({"context": {"page_size": 4096}, "benchmarks": [
        {"name": k, "run_type": "iteration", "iterations": 5, "real_time": t, "cpu_time": t, "time_unit": "ns",
         **extra} for k, t, extra in entries]}))
    figs = figures.cost_vs_size(analysis.Data([model.load_run(str(run))]), str(tmp_path / "out"), ("svg",))
    assert [f.name for f in figs] == ["size_refalloc"]
    assert "time per batch against block size" in figs[0].caption
