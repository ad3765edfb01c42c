"""Sentences whose comparative words are computed from the results, one module per family.

Each function returns one or a few sentences of Markdown-safe text. Ranking words come from
stats.rank (so ties are called ties), "barely moved" from stats.latency_verdict,
keep-or-return from stats.classify_fingerprint; no function assumes which allocator wins or
how many ran.
A sentence about a step of the method (the idle traffic, a forced reclaim) follows what the
run recorded (bench.report.method), never what the study usually does.

Families: rankings (the shared wording of ranks and ties), memory, procedure (idle, reclaim,
sampling, load), latency, limit (the service under a memory limit), control, guidance, trust
(what was not measured, noise, disturbance, evidence), knobs (each variant against its own
base), recycling (recycled allocators against themselves without it). The sentences live in
their family's module; the article section that uses one (bench.report.sections) names it
for a page's {{ say.<name> }}. Nothing is imported here, so a model module can use the shared
wording (`rankings`) without loading every family that in turn uses the model.
"""
