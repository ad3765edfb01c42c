"""Generated pages other than the article: compare (two runs side by side, bench.report.changes)."""
