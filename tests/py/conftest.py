"""Shared pytest fixtures: where the repository, the build and the fixtures are."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Host-side packages (runners/pagelab_host, plots) import from here.
for p in (os.path.join(REPO, "runners"), REPO):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture(scope="session")
def repo_root():
    return REPO


@pytest.fixture(scope="session")
def build_dir():
    """The build directory (BUILD=... as for make), which holds the binaries."""
    return os.path.abspath(os.environ.get("BUILD", os.path.join(REPO, "build")))


@pytest.fixture(scope="session")
def fixtures_dir():
    return os.path.join(REPO, "tests", "fixtures")


@pytest.fixture(scope="session")
def python_exe():
    """Debian's interpreter, which sees Debian's packages."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
