"""The one style every pagelab figure uses."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pagelab.mplstyle")
# Okabe-Ito, in the order of the style's colour cycle.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", ":", "-."]
COLUMN_IN = 3.5
DOUBLE_IN = 7.0
PNG_DPI = 200
# Outcome colours for the behaviour heat map (colour-blind-safe, with text labels too).
STATUS_COLOURS = {
    "pass": "#009E73", "xfail": "#56B4E9", "skip": "#BBBBBB", "fail": "#D55E00",
    "error": "#CC79A7", "timeout": "#E69F00", "absent": "#FFFFFF", "differs": "#F0E442",
    "observed": "#DDDDDD",
}


def use():
    plt.style.use(STYLE_FILE)


def colour(i):
    return PALETTE[i % len(PALETTE)]


def marker(i):
    return MARKERS[i % len(MARKERS)]


def size_label(n):
    """4096 -> '4K', 2097152 -> '2M'."""
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return "%d%s" % (n // div, unit)
    return str(n)


def save(fig, out_dir, name, formats):
    """Write fig as each format; returns {format: path}."""
    from pagelab_host.fsutil import atomic_write_bytes
    import io
    files = {}
    for fmt in formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=PNG_DPI if fmt == "png" else None,
                    metadata={"Creator": "pagelab"} if fmt in ("pdf", "png", "svg") else None)
        path = os.path.join(out_dir, "%s.%s" % (name, fmt))
        atomic_write_bytes(path, buf.getvalue())
        files[fmt] = path
    plt.close(fig)
    return files
