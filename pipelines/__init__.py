"""Offline data side of DEFT: dataset sources, Ray Data stages, the synthetic-data generator and the
``deft`` command line. Imports flow ``jobs → pipelines → deft_core`` (DESIGN.md §2)."""
