"""Inspect an output without opening every tar: funnel, count checks, distributions,
the HTML report and single-sample display (`curate stats`, `report`, `show`)."""
