"""Offline analyses: scripts that only re-read finished results (result files, run folders) and score nothing.

Run as ``python benchmarks/analyses/X.py``; a package so tests import them.
"""
