"""Facts about the machine a benchmark runs on, for reading its timings.

On a virtual machine the host may take CPU time from it while a benchmark
runs ("steal" time): a timing taken then is slowed by the host, not by the
code. The benchmarks print how much was taken during their timed runs.

    >>> from machine import steal_seconds
    >>> steal_seconds() >= 0.0
    True
"""

import os


def steal_seconds():
    """CPU seconds the hypervisor has taken from this machine since boot (0 off Linux)."""
    try:
        with open("/proc/stat") as file:
            fields = file.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0
