"""A measured misclassification rate: the conformance suite run on a catalogue
of fake systems, each deviating from Linux in one known way, with the verdicts
that must follow (DESIGN.md "Conformance": Features, Contract vs behaviour,
Verdicts).

Each deviation is one mode of the fault-injection layer tests/tools/fakevm.c
(environment variables, LD_PRELOAD into pagelab-conform), a small filter (the
channel and feature probes always run as well), and the probes whose verdict
must change, to which status and class. A verdict is judged right when the
probe ends as expected; every other probe of the run that fails, errors or
times out where the undisturbed system passed it is a misclassification too,
and so is a run whose probes escaped their isolation (one verdict per run).
The test prints one line per deviation and the accuracy over the catalogue,
and asserts that every verdict is right.

A row marked pending="<file>: <what the probe must do>" is a known
misclassification in a probe's own code (suites/): its wrong verdicts are
counted and listed, and that row's test is an expected failure until the fix
is merged and the mark removed. Its expectation stays the right verdict.

Probes the undisturbed run skips for want of a prerequisite (no hugetlb pool,
no swap, no mTHP size) cannot show a deviation here and are not judged.
"""
import fnmatch
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PAGELAB_BUILD") or os.environ.get("BUILD") or ROOT / "build")
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
CONFORM = BUILD / "pagelab-conform"
FAKEVM = BUILD / "testtools" / "libfakevm.so"

pytestmark = pytest.mark.skipif(not (CONFORM.exists() and FAKEVM.exists()),
                                reason="build/pagelab-conform or build/testtools/libfakevm.so not built (run make check)")

# Advice values (Linux's numbers: the fake layer works on the running system's calls).
MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK = 4, 8, 9, 10
MADV_WIPEONFORK, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_WRITE, MADV_COLLAPSE = 18, 20, 21, 23, 25
MADV_GUARD_INSTALL = 102

FAIL = ("fail", "not_honoured")
REFUSED = ("fail", "refused")
CRASHED = ("fail", "crashed")
UNSUPPORTED = ("skip", "unsupported")
UNOBSERVABLE = ("skip", "unobservable")
PREREQUISITE = ("skip", "prerequisite")
ENVIRONMENT = ("error", "environment")
DIFFERS = ("differs", "behaviour")
PASS = ("pass", "")
TIMEOUT = ("timeout", "")
SAME = None  # the verdict of the undisturbed run: the deviation must not change it


def thp_always():
    """Does THP back memory without MADV_HUGEPAGE here ('[always]')?"""
    try:
        return "[always]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


class Dev:
    """One deviation: its modes, its filter, and the verdicts that must follow.
    expect: (id glob, (status, class)) or (id glob, (status, class), {observation: value})."""

    def __init__(self, name, source, env, filters, expect, pending=None, timeout=None):
        self.name, self.source, self.env, self.filters = name, source, env, filters
        self.expect, self.pending, self.timeout = expect, pending, timeout


def adv(n):
    return str(n)


CATALOGUE = [
    # ---- advice not implemented, or accepted and not honoured ----
    Dev("madv_free refused like an unknown advice", "advice EINVAL", {"FAKEVM_REFUSE_ADVICE": adv(MADV_FREE)},
        ["madvise.free.*"],
        [("feature.madv_free", UNSUPPORTED), ("madvise.free.*", UNSUPPORTED)]),
    Dev("madv_cold answers ENOSYS", "advice ENOSYS", {"FAKEVM_ENOSYS_ADVICE": adv(MADV_COLD)},
        ["madvise.cold.*"],
        [("feature.madv_cold", UNSUPPORTED), ("madvise.cold.*", UNSUPPORTED)]),
    Dev("madv_pageout answers ENOSYS", "advice ENOSYS", {"FAKEVM_ENOSYS_ADVICE": adv(MADV_PAGEOUT)},
        ["madvise.pageout.*"],
        [("feature.madv_pageout", UNSUPPORTED), ("madvise.pageout.*", UNSUPPORTED)]),
    Dev("madv_dontneed accepted and ignored", "advice ignored", {"FAKEVM_IGNORE_ADVICE": adv(MADV_DONTNEED)},
        ["madvise.dontneed.*"],
        [("madvise.dontneed.contents_after/private_anon", FAIL), ("madvise.dontneed.contents_after/private_file", FAIL),
         ("madvise.dontneed.contents_after/thp", FAIL), ("madvise.dontneed.partial_range", FAIL),
         # Freeing at once is Linux's behaviour; madvise(2) promises only the contents.
         ("madvise.dontneed.rss_after/*", DIFFERS), ("madvise.dontneed.unaligned_einval", PASS)]),
    Dev("madv_free accepted and ignored (everywhere, file mappings too)", "advice ignored",
        {"FAKEVM_IGNORE_ADVICE": adv(MADV_FREE)}, ["madvise.free.contents_after*", "reclaim.free.*"],
        # Old contents are allowed after MADV_FREE, and madvise(2) says the kernel "can" free the pages:
        # ignoring the advice breaks no contract, only the behaviour allocators count on.
        [("madvise.free.contents_after*/*", PASS), ("reclaim.free.dropped_under_pressure", DIFFERS)]),
    Dev("madv_pageout accepted and ignored", "advice ignored", {"FAKEVM_IGNORE_ADVICE": adv(MADV_PAGEOUT)},
        ["madvise.pageout.*"],
        # madvise(2): the advice "might be ignored for some pages": reclaim at once is a behaviour.
        [("madvise.pageout.resident_after/*", DIFFERS), ("madvise.pageout.contents_kept/*", PASS)]),
    Dev("madv_wipeonfork accepted and ignored", "advice ignored", {"FAKEVM_IGNORE_ADVICE": adv(MADV_WIPEONFORK)},
        ["madvise.wipeonfork.*"],
        [("madvise.wipeonfork.child_sees_zero/*", FAIL), ("madvise.wipeonfork.grandchild_sees_zero", FAIL),
         ("madvise.wipeonfork.shared_or_file_einval/*", FAIL)]),
    Dev("madv_dontfork not honoured: the child sees the pages (user-mode Linux)", "advice ignored",
        {"FAKEVM_IGNORE_ADVICE": adv(MADV_DONTFORK)}, ["madvise.dontfork.*"],
        [("madvise.dontfork.child_faults/*", FAIL)]),
    Dev("madv_populate_write accepted and ignored", "advice ignored",
        {"FAKEVM_IGNORE_ADVICE": adv(MADV_POPULATE_WRITE)}, ["madvise.populate_write.*"],
        [("madvise.populate_write.*", FAIL)]),
    Dev("madv_remove accepted and ignored", "advice ignored", {"FAKEVM_IGNORE_ADVICE": adv(MADV_REMOVE)},
        ["madvise.remove.*"],
        [("madvise.remove.reads_zero/*", FAIL)]),
    Dev("madv_guard_install accepted and ignored (qemu-user)", "advice ignored",
        {"FAKEVM_IGNORE_ADVICE": adv(MADV_GUARD_INSTALL)},
        ["madvise.guard_install.access_faults/*", "pagelayer.caps.claims_honoured", "pagelayer.guard.*"],
        [("madvise.guard_install.access_faults/*", FAIL), ("pagelayer.caps.claims_honoured", FAIL),
         ("pagelayer.guard.faults_unguard_zero", PASS)]),
    Dev("every advice but MADV_DONTNEED answers 0 and does nothing (qemu-user)", "qemu-user",
        {"FAKEVM_QEMU_MADVISE": "1"},
        ["madvise.unknown_advice.*", "madvise.wipeonfork.child_sees_zero/*", "madvise.dontfork.child_faults/*",
         "madvise.free.contents_after/private_anon", "madvise.dontneed.contents_after/private_anon"],
        [("madvise.unknown_advice.einval", FAIL), ("madvise.wipeonfork.child_sees_zero/private_anon", FAIL),
         ("madvise.dontfork.child_faults/private_anon", FAIL), ("madvise.dontfork.child_faults/shared_*", FAIL),
         ("madvise.dontfork.child_faults/private_file", FAIL),
         # MADV_HUGEPAGE does nothing: where THP is 'madvise' only, no huge page is to be had.
         ("feature.kind.thp", PASS if thp_always() else PREREQUISITE),
         ("madvise.wipeonfork.child_sees_zero/thp", FAIL if thp_always() else PREREQUISITE),
         ("madvise.dontfork.child_faults/thp", FAIL if thp_always() else PREREQUISITE),
         ("madvise.dontneed.contents_after/private_anon", PASS)]),
    Dev("no transparent huge pages (user-mode Linux)", "user-mode Linux", {"FAKEVM_NO_THP": "1"},
        ["madvise.hugepage.*", "zero_page.read_fault.*"],
        [("feature.kind.thp", UNSUPPORTED), ("feature.madv_hugepage", UNSUPPORTED),
         ("feature.madv_collapse", UNSUPPORTED), ("madvise.hugepage.anon_huge", UNSUPPORTED),
         ("zero_page.read_fault.*/thp", UNSUPPORTED), ("zero_page.read_fault.maps_zero_page/private_anon", PASS)]),
    Dev("no transparent huge pages, hugetlb pools still there", "user-mode Linux", {"FAKEVM_NO_THP": "1"},
        ["mmap.anon.zero_fill/*"],
        [("feature.kind.hugetlb_pmd", SAME), ("feature.kind.hugetlb_pud", SAME)]),
    Dev("madvise at an unaligned start answers 0", "error path", {"FAKEVM_MADVISE_UNALIGNED_OK": "1"},
        ["madvise.dontneed.unaligned_einval", "madvise.free.unaligned_einval"],
        [("madvise.dontneed.unaligned_einval", FAIL), ("madvise.free.unaligned_einval", FAIL)]),
    Dev("madvise over a hole answers EFAULT, not ENOMEM", "error path",
        {"FAKEVM_ERRNO": "madvise:ENOMEM:EFAULT"}, ["madvise.enomem.*", "madvise.populate_read.hole_enomem"],
        [("madvise.enomem.range_with_hole", FAIL), ("madvise.populate_read.hole_enomem", FAIL)]),
    # ---- a flag ignored, or refused like an unknown one ----
    Dev("MAP_POPULATE ignored (qemu-user)", "flag ignored", {"FAKEVM_IGNORE_FLAG": "populate"},
        ["mmap.populate.*"], [("mmap.populate.resident/*", FAIL)]),
    Dev("MAP_FIXED_NOREPLACE taken as a hint (qemu-user)", "flag ignored", {"FAKEVM_IGNORE_FLAG": "fixed_noreplace"},
        ["mmap.fixed_noreplace.*"],
        [("feature.map_fixed_noreplace", UNSUPPORTED), ("mmap.fixed_noreplace.*", UNSUPPORTED)]),
    Dev("MAP_LOCKED ignored", "flag ignored", {"FAKEVM_IGNORE_FLAG": "locked"}, ["mmap.locked.*"],
        [("mmap.locked.resident_and_counted", FAIL)]),
    Dev("MAP_GROWSDOWN does not grow (qemu-user i686, s390x)", "flag ignored", {"FAKEVM_IGNORE_FLAG": "growsdown"},
        ["mmap.growsdown.*"], [("mmap.growsdown.grows_on_touch", FAIL)]),
    Dev("MREMAP_DONTUNMAP ignored: the source is unmapped", "flag ignored", {"FAKEVM_IGNORE_FLAG": "dontunmap"},
        ["mremap.dontunmap.*"],
        [("mremap.dontunmap.old_range/private_anon", FAIL), ("mremap.dontunmap.old_range/private_file", FAIL),
         ("mremap.dontunmap.old_range/thp", FAIL), ("mremap.dontunmap.old_range_supplied", FAIL),
         ("mremap.dontunmap.part_of_mapping", FAIL), ("mremap.dontunmap.fixed_target", FAIL),
         ("mremap.dontunmap.over_part_of_target", FAIL)]),
    Dev("MLOCK_ONFAULT / MCL_ONFAULT ignored: everything is populated", "flag ignored",
        {"FAKEVM_IGNORE_FLAG": "onfault"}, ["mlock.mlock2.*", "mlock.mlockall.*"],
        [("mlock.mlock2.onfault_locks_on_touch", FAIL), ("mlock.mlock2.onfault_over_present_page", FAIL),
         ("mlock.mlockall.current_onfault", FAIL), ("mlock.mlockall.future_onfault", FAIL)]),
    Dev("MREMAP_FIXED refused like an unknown flag", "flag unknown", {"FAKEVM_REFUSE_FLAG": "fixed"},
        ["mremap.fixed.moves_to_target", "mremap.dontunmap.old_range/private_anon"],
        # MREMAP_DONTUNMAP needs MREMAP_MAYMOVE, not MREMAP_FIXED: it is still there.
        [("feature.mremap_fixed", UNSUPPORTED), ("feature.mremap_dontunmap", PASS),
         ("feature.mremap_several_mappings", UNSUPPORTED), ("mremap.fixed.moves_to_target", UNSUPPORTED),
         ("mremap.dontunmap.old_range/private_anon", PASS)]),
    Dev("MLOCK_ONFAULT / MCL_ONFAULT refused like an unknown flag", "flag unknown", {"FAKEVM_REFUSE_FLAG": "onfault"},
        ["mlock.mlock2.onfault_*", "mlock.mlockall.*_onfault"],
        [("feature.mlock2_onfault", UNSUPPORTED), ("feature.mlockall_onfault", UNSUPPORTED),
         ("mlock.mlock2.onfault_*", UNSUPPORTED), ("mlock.mlockall.*_onfault", UNSUPPORTED)]),
    Dev("MAP_DROPPABLE refused like an unknown mapping type", "flag unknown", {"FAKEVM_REFUSE_FLAG": "droppable"},
        ["droppable.*", "mlock.droppable.*"],
        [("feature.map_droppable", UNSUPPORTED), ("droppable.*", UNSUPPORTED), ("mlock.droppable.*", UNSUPPORTED)]),
    Dev("madv_cold refused with EBUSY on shared mappings (a known advice refused)", "set-up refused",
        {"FAKEVM_BUSY_SHARED_ADVICE": adv(MADV_COLD)}, ["madvise.cold.*"],
        [("feature.madv_cold", PASS), ("madvise.cold.contents_kept/shared_*", REFUSED),
         ("madvise.cold.contents_kept/private_anon", PASS)]),
    Dev("mprotect(PROT_EXEC) of anonymous memory refused with EACCES (a W^X policy)", "set-up refused",
        {"FAKEVM_NO_ANON_EXEC": "1"}, ["mprotect.prot_exec.*", "mmap.file.prot_exec_readable"],
        [("mprotect.prot_exec.accepted", REFUSED), ("mmap.file.prot_exec_readable", PASS)]),
    # ---- an error path answering another errno ----
    Dev("mprotect of an unmapped range answers EINVAL, not ENOMEM", "error path",
        {"FAKEVM_ERRNO": "mprotect:ENOMEM:EINVAL"}, ["mprotect.enomem.*", "mprotect.hole.*"],
        [("mprotect.enomem.unmapped_address", FAIL), ("mprotect.hole.enomem", FAIL)]),
    Dev("munmap of a bad range answers success, not EINVAL", "error path", {"FAKEVM_ERRNO": "munmap:EINVAL:0"},
        ["munmap.einval.*"], [("munmap.einval.length_zero", FAIL), ("munmap.einval.past_address_space", FAIL)]),
    Dev("mremap of an unmapped source answers EINVAL, not EFAULT", "error path",
        {"FAKEVM_ERRNO": "mremap:EFAULT:EINVAL"}, ["mremap.efault.*"], [("mremap.efault.unmapped_source", FAIL)]),
    Dev("mseal over a hole answers EINVAL, not ENOMEM", "error path", {"FAKEVM_ERRNO": "mseal:ENOMEM:EINVAL"},
        ["mseal.range.unmapped_*"], [("mseal.range.unmapped_*", FAIL)]),
    Dev("MAP_SHARED_VALIDATE with an unknown flag answers EINVAL, not EOPNOTSUPP", "error path",
        {"FAKEVM_ERRNO": "mmap:EOPNOTSUPP:EINVAL"}, ["mmap.shared_validate.*"],
        [("mmap.shared_validate.unknown_flag_eopnotsupp", FAIL)]),
    Dev("MAP_FIXED_NOREPLACE over a mapping answers ENOMEM, not EEXIST", "error path",
        {"FAKEVM_ERRNO": "mmap:EEXIST:ENOMEM"}, ["mmap.fixed_noreplace.eexist_*"],
        [("feature.map_fixed_noreplace", PASS), ("mmap.fixed_noreplace.eexist_*", FAIL)]),
    Dev("mprotect over a hole answers ENOMEM and changes pages past it (qemu-user)", "qemu-user",
        {"FAKEVM_MPROTECT_HOLE_PARTIAL": "1"}, ["mprotect.hole.*"],
        [("mprotect.hole.enomem", PASS, {"errno": "ENOMEM", "page_after_hole": "changed"})]),
    Dev("unaligned mremap answers EINVAL but unmaps the source (qemu-user)", "qemu-user",
        {"FAKEVM_MREMAP_UNALIGNED_UNMAPS": "1"}, ["mremap.einval.*"], [("mremap.einval.unaligned_addr", FAIL)]),
    Dev("mremap across mappings answers EFAULT (user-mode Linux, Linux before 6.17)", "user-mode Linux",
        {"FAKEVM_MREMAP_ONE_MAPPING": "1"}, ["mremap.several_mappings.*"],
        [("feature.mremap_several_mappings", UNSUPPORTED), ("mremap.several_mappings.*", UNSUPPORTED)]),
    Dev("MREMAP_DONTUNMAP accepted, the old range unmapped anyway", "flag not honoured",
        {"FAKEVM_DONTUNMAP_DROPS": "1"}, ["mremap.dontunmap.old_range/*", "mremap.dontunmap.part_of_mapping"],
        [("mremap.dontunmap.old_range/*", FAIL), ("mremap.dontunmap.part_of_mapping", FAIL)]),
    Dev("munmap wrapping past the top of the address space ends the process, status 127 (qemu-user 7.2)", "qemu-user",
        {"FAKEVM_MUNMAP_WRAP_EXITS": "1"}, ["munmap.einval.*"],
        # A system that kills the process on a legal call cannot be told from the probe's own death.
        [("munmap.einval.past_address_space", ("error", "harness")), ("munmap.einval.length_zero", PASS)]),
    Dev("mremap across mappings answers EINVAL (valgrind)", "valgrind",
        {"FAKEVM_MREMAP_ONE_MAPPING": "1", "FAKEVM_ERRNO": "mremap:EFAULT:EINVAL"}, ["mremap.several_mappings.*"],
        [("feature.mremap_several_mappings", UNSUPPORTED), ("mremap.several_mappings.*", UNSUPPORTED)]),
    Dev("mlockall(MCL_FUTURE) does not lock later mappings (32-bit qemu-user)", "qemu-user",
        {"FAKEVM_IGNORE_FLAG": "future"}, ["mlock.mlockall.*"],
        [("mlock.mlockall.future", FAIL), ("mlock.mlockall.future_onfault", FAIL), ("mlock.mlockall.current", PASS)]),
    Dev("a forced write answers success and does not land (32-bit qemu-user)", "qemu-user",
        {"FAKEVM_FORCED_WRITE_LOST": "1"}, ["mkdirty.forced_write.*", "mlock.forced_write.*"],
        [("feature.forced_write", PASS), ("mkdirty.forced_write.*", FAIL), ("mlock.forced_write.*", FAIL)]),
    Dev("unmapped addresses count as mapped (32-bit qemu-user)", "qemu-user",
        {"FAKEVM_ERRNO": "mprotect:ENOMEM:0,munmap:ENOMEM:0"}, ["mprotect.enomem.*", "munmap.enomem.*"],
        [("mprotect.enomem.unmapped_address", FAIL), ("munmap.enomem.split_past_mapping_limit", FAIL)]),
    Dev("mmap past the address space answers EACCES (Wine's answer to a commit past the limit)", "Wine",
        {"FAKEVM_ERRNO": "mmap:ENOMEM:EACCES"}, ["mmap.fixed.*", "mmap.noreserve.*"],
        [("mmap.fixed.past_address_space", FAIL), ("mmap.noreserve.larger_than_memory", PASS)]),
    # ---- a call not implemented, or refused ----
    Dev("mremap answers ENOSYS", "call ENOSYS", {"FAKEVM_FAIL": "mremap:ENOSYS"}, ["mremap.shrink.*", "mremap.grow.*"],
        [("feature.mremap", UNSUPPORTED), ("feature.mremap_fixed", UNSUPPORTED),
         ("mremap.shrink.*", UNSUPPORTED), ("mremap.grow.*", UNSUPPORTED)]),
    Dev("mseal answers ENOSYS", "call ENOSYS", {"FAKEVM_FAIL": "mseal:ENOSYS"}, ["mseal.range.*"],
        [("feature.mseal", UNSUPPORTED), ("mseal.range.*", UNSUPPORTED)]),
    Dev("mlock, mlock2 and mlockall refused with EPERM", "set-up EPERM",
        {"FAKEVM_FAIL": "mlock:EPERM,mlock2:EPERM,mlockall:EPERM"}, ["mlock.mlock2.*"],
        [("feature.mlock", PREREQUISITE), ("feature.mlock2_onfault", PREREQUISITE),
         ("feature.mlockall_onfault", PREREQUISITE), ("mlock.mlock2.*", PREREQUISITE)]),
    Dev("fork answers ENOSYS", "call ENOSYS", {"FAKEVM_FAIL": "fork:ENOSYS"},
        ["fork_cow.parent_write.touched/*", "madvise.wipeonfork.child_sees_zero/*"],
        [("feature.fork", UNSUPPORTED), ("fork_cow.parent_write.touched/*", UNSUPPORTED),
         ("madvise.wipeonfork.child_sees_zero/*", UNSUPPORTED)]),
    Dev("fork refused with EAGAIN (a process limit)", "set-up environment", {"FAKEVM_FAIL": "fork:EAGAIN"},
        ["fork_cow.parent_write.touched/*"],
        [("feature.fork", ENVIRONMENT), ("fork_cow.parent_write.touched/*", ENVIRONMENT)]),
    Dev("userfaultfd refused with EPERM (vm.unprivileged_userfaultfd=0)", "set-up EPERM",
        {"FAKEVM_FAIL": "userfaultfd:EPERM", "FAKEVM_HIDE": "userfaultfd"}, ["uffd.*"],
        [("feature.userfaultfd", PREREQUISITE), ("uffd.*", PREREQUISITE)]),
    Dev("vmsplice answers ENOSYS", "call ENOSYS", {"FAKEVM_FAIL": "vmsplice:ENOSYS"},
        ["cow.vmsplice_before_fork.*"],
        [("feature.pin_vmsplice", UNSUPPORTED), ("cow.vmsplice_before_fork.*", UNSUPPORTED)]),
    Dev("io_uring_setup answers ENOSYS", "call ENOSYS", {"FAKEVM_FAIL": "io_uring_setup:ENOSYS"},
        ["cow.longterm_pin.sees_write_after_fork/*"],
        [("feature.pin_io_uring", UNSUPPORTED), ("cow.longterm_pin.sees_write_after_fork/*", UNSUPPORTED)]),
    Dev("process_madvise answers ENOSYS", "call ENOSYS", {"FAKEVM_FAIL": "process_madvise:ENOSYS"},
        ["guard.process_madvise.*"],
        [("feature.process_madvise", UNSUPPORTED), ("guard.process_madvise.*", UNSUPPORTED)]),
    Dev("prctl memory merging unknown (EINVAL, Linux before 6.4)", "call unknown", {"FAKEVM_FAIL": "prctl:EINVAL"},
        ["ksm.prctl.*"], [("feature.ksm_prctl", UNSUPPORTED), ("ksm.prctl.*", UNSUPPORTED)]),
    Dev("a forced write refused with EINVAL: /proc/self/mem does not write", "call missing",
        {"FAKEVM_FORCED_WRITE_EINVAL": "1"}, ["mlock.forced_write.*", "mkdirty.forced_write.*"],
        [("feature.forced_write", UNSUPPORTED), ("mlock.forced_write.*", UNSUPPORTED),
         ("mkdirty.forced_write.*", UNSUPPORTED)]),
    Dev("no /proc/self/mem: no forced writes", "call missing", {"FAKEVM_HIDE": "mem"},
        ["mlock.forced_write.*", "mkdirty.forced_write.*"],
        [("feature.forced_write", UNSUPPORTED), ("mlock.forced_write.*", UNSUPPORTED),
         ("mkdirty.forced_write.*", UNSUPPORTED)]),
    Dev("temporary files cannot be created (the environment)", "set-up environment", {"FAKEVM_NO_TMPFILES": "1"},
        ["mmap.file.tail_past_eof/*"],
        [("feature.kind.private_file", ENVIRONMENT), ("feature.kind.shared_disk", ENVIRONMENT),
         ("mmap.file.tail_past_eof/private_file", ENVIRONMENT), ("mmap.file.tail_past_eof/shared_disk", ENVIRONMENT),
         ("mmap.file.tail_past_eof/shared_file", PASS)]),
    Dev("memfd_create refused with EPERM (a sandbox)", "set-up environment", {"FAKEVM_FAIL": "memfd_create:EPERM"},
        ["mmap.populate.*"],
        [("feature.map_shared_validate", ENVIRONMENT), ("feature.memfd_seals", ENVIRONMENT),
         ("mmap.populate.resident/shared_file", PASS)]),
    # ---- channels that lie or are missing ----
    Dev("mincore says every page is resident", "channel lies", {"FAKEVM_MINCORE_LIES": "1"},
        ["madvise.dontneed.rss_after*", "madvise.populate_write.resident/*"],
        [("channel.residency.matches_touch", FAIL), ("madvise.dontneed.rss_after/*", UNOBSERVABLE),
         ("madvise.populate_write.resident/*", UNOBSERVABLE)]),
    Dev("mincore answers ENOSYS", "channel missing", {"FAKEVM_FAIL": "mincore:ENOSYS"},
        ["madvise.dontneed.rss_after*"],
        [("channel.residency.matches_touch", UNSUPPORTED), ("madvise.dontneed.rss_after/*", UNOBSERVABLE)]),
    Dev("no /proc/self/statm: RSS cannot be read", "channel missing", {"FAKEVM_HIDE": "statm"},
        ["zero_page.read_fault.rss_unchanged/*", "reusable.rss_after_reusable"],
        [("channel.rss.follows_touch", UNSUPPORTED), ("zero_page.read_fault.rss_unchanged/*", UNOBSERVABLE),
         ("reusable.rss_after_reusable", UNOBSERVABLE)]),
    Dev("/proc/self/statm never changes", "channel lies", {"FAKEVM_STATM_FROZEN": "1"},
        ["zero_page.read_fault.rss_unchanged/*", "reusable.rss_after_reusable"],
        [("channel.rss.follows_touch", FAIL), ("zero_page.read_fault.rss_unchanged/*", UNOBSERVABLE),
         ("reusable.rss_after_reusable", UNOBSERVABLE)]),
    Dev("no /proc/self/pagemap", "channel missing", {"FAKEVM_HIDE": "pagemap"},
        ["zero_page.read_fault.maps_zero_page/*", "guard.page_flags.*"],
        [("channel.page_flags.present_matches_touch", UNSUPPORTED), ("channel.zero_page.written_page_is_not", UNSUPPORTED),
         ("zero_page.read_fault.maps_zero_page/*", UNOBSERVABLE), ("guard.page_flags.every_other_page/*", UNOBSERVABLE)]),
    Dev("no /proc/self/maps or smaps", "channel missing", {"FAKEVM_HIDE": "maps,smaps"},
        ["mprotect.split_merge/*", "mremap.grow.merges_with_next"],
        [("channel.mappings.lists_a_new_mapping", UNSUPPORTED)]),
    Dev("/proc/self/maps leaves out PROT_NONE mappings (qemu-user)", "channel lies",
        {"FAKEVM_MAPS_HIDE_PROT_NONE": "1"}, ["munmap.enomem.*", "mprotect.split_merge/*"],
        [("channel.mappings.lists_a_new_mapping", FAIL)]),
    Dev("getrusage counts no page faults (Wine's PageFaultCount)", "channel lies", {"FAKEVM_RUSAGE_FROZEN": "1"}, ["mkdirty.*"],
        [("channel.fault_counts.counts_first_touches", FAIL)]),
    Dev("every fault reads SEGV_MAPERR", "channel lies", {"FAKEVM_SI_CODE": "lies"},
        ["mprotect.prot_none.*", "munmap.access_faults/*", "madvise.guard_install.access_faults/private_anon"],
        [("channel.si_code.tells_unmapped_from_refused", FAIL), ("mprotect.prot_none.faults/*", PASS),
         ("munmap.access_faults/*", PASS)]),
    Dev("faults carry no code", "channel missing", {"FAKEVM_SI_CODE": "none"}, ["mprotect.prot_none.*"],
        [("channel.si_code.tells_unmapped_from_refused", UNSUPPORTED), ("mprotect.prot_none.faults/*", PASS)]),
    Dev("the break is emulated elsewhere (valgrind)", "valgrind", {"FAKEVM_BRK_ELSEWHERE": "1"},
        ["brk.syscall.*", "brk.start.*"],
        [("channel.break_start.below_the_break", FAIL), ("brk.syscall.below_start", UNOBSERVABLE),
         ("brk.start.after_exec", UNOBSERVABLE), ("brk.syscall.grow", PASS)]),
    Dev("no /proc/self/stat: where the break started is unknown", "channel missing", {"FAKEVM_HIDE": "stat"},
        ["brk.syscall.below_start", "brk.start.*"],
        [("channel.break_start.below_the_break", UNSUPPORTED), ("brk.syscall.below_start", UNOBSERVABLE),
         ("brk.start.after_exec", UNOBSERVABLE)]),
    # ---- a lowered break keeps its pages ----
    Dev("a lowered break keeps its pages (qemu-user)", "qemu-user", {"FAKEVM_BRK_KEEPS_PAGES": "1"},
        ["brk.syscall.shrink", "brk.syscall.regrow_zero"],
        [("brk.syscall.shrink", FAIL), ("brk.syscall.regrow_zero", FAIL)]),
    # ---- a call that kills the process, a call that hangs ----
    Dev("madv_cold kills the process (SIGABRT)", "crash", {"FAKEVM_CRASH_ADVICE": adv(MADV_COLD)},
        ["madvise.cold.*"], [("feature.madv_cold", CRASHED), ("madvise.cold.*", CRASHED)]),
    Dev("mseal kills the process (SIGKILL)", "crash", {"FAKEVM_KILL_CALL": "mseal"}, ["mseal.range.twice"],
        [("feature.mseal", ("error", "environment")), ("mseal.range.twice", ("error", "environment"))]),
    Dev("madv_collapse never returns", "hang", {"FAKEVM_HANG_ADVICE": adv(MADV_COLLAPSE)}, ["madvise.collapse.*"],
        [("feature.madv_collapse", TIMEOUT), ("madvise.collapse.*", TIMEOUT)], timeout=3),
    # ---- a behaviour that differs ----
    Dev("the zero page is disabled: read faults get pages of their own", "behaviour", {"FAKEVM_NO_ZERO_PAGE": "1"},
        ["zero_page.*", "guard.readonly_anon.*", "cow.private_write.*", "fork_cow.*.zero_page/private_anon"],
        [("channel.zero_page.written_page_is_not", PASS), ("zero_page.read_fault.maps_zero_page/private_anon", DIFFERS),
         ("zero_page.read_fault.maps_zero_page/thp", DIFFERS), ("zero_page.huge_zero_page", DIFFERS),
         ("fork_cow.parent_write.zero_page/private_anon", PASS)]),
    # ---- a missing feature in a filtered run ----
    Dev("madv_free missing, one probe filtered", "filtered run", {"FAKEVM_REFUSE_ADVICE": adv(MADV_FREE)},
        ["madvise.free.contents_after/private_anon"],
        [("feature.madv_free", UNSUPPORTED), ("madvise.free.contents_after/private_anon", UNSUPPORTED)]),
    Dev("no THP kind, one thp variant filtered", "filtered run", {"FAKEVM_NO_THP": "1"},
        ["zero_page.write_after_read.private_zeroed/thp"],
        [("feature.kind.thp", UNSUPPORTED), ("zero_page.write_after_read.private_zeroed/thp", UNSUPPORTED)]),
]

BAD = ("fail", "error", "timeout")
ISOLATION = "(isolation)"  # how the run isolated its probes: a deviation must not change it


def run(env, filters, timeout, out):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("FAKEVM_"):
            del e[k]
    e.update(env)
    e["LD_PRELOAD"] = str(FAKEVM)
    args = [str(CONFORM), "-j", "2", "-q", "--timeout", str(timeout or 20), "--json", str(out)]
    for f in filters:
        args += ["-f", f]
    subprocess.run(args, capture_output=True, text=True, timeout=300, env=e)
    data = json.loads(out.read_text())
    results = {r["id"]: r for r in data["results"]}
    results[ISOLATION] = {"status": data["isolation"], "reason": data.get("isolation_note", "")}
    return results


def exercised(pid, baseline):
    """Can a deviation show in this probe here? Not where the undisturbed run already skips it
    for a prerequisite, for a feature this machine lacks, or where its channel or feature probe
    skips by itself (the catalogue then has nothing to change)."""
    b = baseline.get(pid)
    if not b or b["status"] != "skip":
        return True
    return not (b.get("class") == "prerequisite" or b.get("reason", "").startswith("needs ")
                or pid.startswith(("feature.", "channel.")))


def judge(dev, results, baseline):
    """(judged, wrong): every expected verdict, and every probe that fails where it should not."""
    judged, wrong, listed = 0, [], set()
    for exp in dev.expect:
        pattern, (status, cls) = exp[0], exp[1] or (None, None)
        obs = exp[2] if len(exp) > 2 else {}
        ids = [i for i in results if i != ISOLATION and fnmatch.fnmatchcase(i, pattern)]
        listed.update(ids)
        ids = [i for i in ids if exp[1] is SAME or exercised(i, baseline)]
        if not ids and not any(fnmatch.fnmatchcase(i, pattern) for i in baseline):
            judged += 1
            wrong.append("%s: no such probe" % pattern)
        for i in ids:
            r = results[i]
            if exp[1] is SAME:
                status, cls = baseline[i]["status"], baseline[i].get("class", "")
            judged += 1
            got = (r["status"], r.get("class", ""))
            if got != (status, cls) or any(r.get("observed", {}).get(k) != v for k, v in obs.items()):
                wrong.append("%s: %s/%s, expected %s/%s%s (%s)" % (i, got[0], got[1], status, cls,
                                                                    " with %s" % obs if obs else "",
                                                                    r.get("reason", "")[:160]))
    judged += 1
    if results[ISOLATION]["status"] != baseline[ISOLATION]["status"]:
        wrong.append("isolation %s, not %s: %s" % (results[ISOLATION]["status"], baseline[ISOLATION]["status"],
                                                   results[ISOLATION]["reason"][:300]))
    for i, r in results.items():
        if i == ISOLATION:
            continue
        if i in listed or r["status"] not in BAD or baseline.get(i, {}).get("status") in BAD:
            continue
        judged += 1
        wrong.append("%s: %s/%s, not expected to change (%s)" % (i, r["status"], r.get("class", ""),
                                                                r.get("reason", "")[:160]))
    return judged, wrong


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("catalogue")
    t0 = time.monotonic()
    baseline = run({}, [], None, tmp / "baseline.json")
    outcomes = []
    for k, dev in enumerate(CATALOGUE):
        results = run(dev.env, dev.filters, dev.timeout, tmp / ("dev%d.json" % k))
        judged, wrong = judge(dev, results, baseline)
        outcomes.append((dev, judged, wrong))
    return outcomes, time.monotonic() - t0


def test_the_catalogue_is_large_enough():
    assert len(CATALOGUE) >= 40
    assert len({d.name for d in CATALOGUE}) == len(CATALOGUE)


def test_classification_accuracy(catalogue, capsys):
    outcomes, elapsed = catalogue
    with capsys.disabled():  # the accuracy is the point of the test: shown in every run, make check's too
        print()
        report(outcomes, elapsed)


def report(outcomes, elapsed):
    judged = sum(j for _, j, _ in outcomes)
    wrong = [(d, w) for d, _, ws in outcomes for w in ws]
    for dev, j, ws in outcomes:
        mark = ("ok  " if j else "n/a ") if not ws else ("PEND" if dev.pending else "FAIL")
        note = "  (right now: its pending mark can go)" if dev.pending and j and not ws else ""
        print("%s %-78s %2d judged, %d wrong  [%s]%s" % (mark, dev.name, j, len(ws), dev.source, note))
        for w in ws:
            print("       wrong: %s" % w)
    right = judged - len(wrong)
    print("fault catalogue: %d deviations, %d verdicts judged, %d right (%.1f%%) in %.0f s"
          % (len(outcomes), judged, right, 100.0 * right / max(judged, 1), elapsed))
    pending = [(d.name, w) for d, w in wrong if d.pending]
    if pending:
        print("known misclassifications (probe fixes pending): %d" % len(pending))
        for dev, _, ws in outcomes:
            if ws and dev.pending:
                print("  pending: %s -- %s" % (dev.name, dev.pending))
    unexplained = ["%s: %s" % (d.name, w) for d, w in wrong if not d.pending]
    assert not unexplained, "misclassified:\n" + "\n".join(unexplained)


@pytest.mark.parametrize("index", range(len(CATALOGUE)), ids=[d.name for d in CATALOGUE])
def test_deviation(catalogue, index):
    outcomes, _ = catalogue
    dev, judged, wrong = outcomes[index]
    if wrong and dev.pending:
        pytest.xfail("%s (%d wrong: %s)" % (dev.pending, len(wrong), "; ".join(wrong)[:400]))
    assert not wrong, "\n".join(wrong)
