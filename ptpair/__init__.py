"""ptpair: trace-driven physical-memory allocator and fragmentation analyzer.

It replays process mapping traces through a buddy allocator and x86-64 KPT/EPT page
tables under several schemes -- Akaros's contiguous KPT/EPT pair among them -- and
measures memory overhead, fragmentation and walk cost. Stages, one way:
ptpair.traces -> ptpair.sim -> ptpair.analysis -> ptpair.reports; ptpair.api holds the
notebook-facing functions, ptpair.cli the command line.
"""

__version__ = "0.1.0"

from ptpair import _jitcache

_jitcache.configure()
