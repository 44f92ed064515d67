"""Renderers: pure functions of a run summary; they never touch clocks, files or hardware."""
