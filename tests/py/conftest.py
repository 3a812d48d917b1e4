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


# Test tiers. `system`: needs emulators, guests, remote hosts, a LAVA server, Wine, many builds or long
# benchmark runs (make check runs them; the tools they need are installed by tools/install-deps.sh check).
# Everything else is the quick tier (make check-quick): no installs, no root, no network, minutes at most.
SYSTEM_MODULES = {"test_lava", "test_ssh", "test_windows", "test_targets_e2e", "test_privileged_probes",
                  "test_perf_fork_tlb", "test_perf_resume", "test_perf_sanity", "test_refalloc_programs",
                  "test_builds", "test_fault_catalogue", "test_fuzz"}


def pytest_configure(config):
    config.addinivalue_line("markers", "system: needs emulators, guests, hosts, services or long runs "
                                       "(make check); the rest is make check-quick")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rpartition(".")[2] in SYSTEM_MODULES:
            item.add_marker(pytest.mark.system)
