"""``hamnet report``: one self-contained HTML page about a run (no network, data inlined)."""
