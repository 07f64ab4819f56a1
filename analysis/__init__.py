"""Analysis: metrics, comparisons and statistics over replay results."""
