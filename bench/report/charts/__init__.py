"""The article's charts as Vega-Lite specs (vega-altair), rendered to inline SVG at build time.

Each chart is a function from the aggregated results to a finished <figure> block. A chart one
section shows lives in that section (bench.report.sections), with its caption; here are the
charts more than one page draws and what every chart shares: `figure` (the Okabe-Ito palette,
fixed per allocator in spec order; the theme that follows the page's light or dark palette;
how the A/A duplicate and the variants are named; the 95% interval whiskers and how a
caption words the repeats behind them; the figure around the SVG), `memory` (peak beside
settled, in the headline and on the comparison page, and the dumbbell of control against
service) and `throughput` (the control's allocations per second, in the control section and on
the comparison page). Nothing is imported here, so a section loads only the charts it draws.
"""
