"""Sentence families more than one part of the article draws on; nothing is imported here.

Each function returns one or a few sentences of Markdown-safe text. Ranking words come from
stats.rank (so ties are called ties), "barely moved" from stats.latency_verdict,
keep-or-return from stats.classify_fingerprint; no function assumes which allocator wins or
how many ran. A sentence one section says lives in that section (bench.report.sections);
here are the shared ones: `rankings` (the wording of ranks, ties, bands and values, used by
nearly every section and by the terminal's summary) and `memory` (the memory sentences of the
headline, the staircase, the fingerprints and the guidance). Nothing is imported here, so a
module can use the shared wording without loading every family.
"""
