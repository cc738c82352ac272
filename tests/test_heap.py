"""crawler/heap.py: the process's memory read from /proc, and the cap one call may map."""

from __future__ import annotations

import resource
import subprocess
import sys

from crawler.heap import mapped_bytes, resident_bytes


def test_resident_bytes_follow_what_the_process_holds() -> None:
    before = resident_bytes()
    assert before is not None
    assert before > 1024**2
    ballast = bytearray(64 * 1024**2)  # zeroed memory is resident once written
    ballast[:: resource.getpagesize()] = b"x" * len(ballast[:: resource.getpagesize()])
    after = resident_bytes()
    assert after is not None
    assert after - before >= 60 * 1024**2
    del ballast


def test_mapped_bytes_count_what_is_mapped_not_only_what_is_resident() -> None:
    before = mapped_bytes()
    assert before is not None
    ballast = bytearray(64 * 1024**2)  # mapped at once, resident only once written
    after = mapped_bytes()
    assert after is not None
    assert after - before >= 64 * 1024**2
    del ballast


# In a process of its own: while the cap holds, an allocation in any of the test process's
# threads would fail too.
CAPPED = """
import resource
from crawler.heap import address_space_cap

with address_space_cap(32 * 1024**2):
    small = bytearray(8 * 1024**2)
    try:
        bytearray(256 * 1024**2)
    except MemoryError:
        print("refused")
    del small
print(resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY)
after = bytearray(256 * 1024**2)
print("allowed")
"""


def test_a_capped_block_may_map_that_much_more_and_the_cap_goes_with_it() -> None:
    run = subprocess.run([sys.executable, "-c", CAPPED], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["refused", "True", "allowed"]


LOWER = """
import resource
from crawler.heap import address_space_cap, mapped_bytes

low = mapped_bytes() + 64 * 1024**2
resource.setrlimit(resource.RLIMIT_AS, (low, resource.RLIM_INFINITY))
with address_space_cap(1024**3):
    print(resource.getrlimit(resource.RLIMIT_AS)[0] == low)
print(resource.getrlimit(resource.RLIMIT_AS)[0] == low)
"""


def test_a_lower_limit_already_set_is_kept() -> None:
    run = subprocess.run([sys.executable, "-c", LOWER], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "True"]
