"""Side-by-side benchmarks against peer libraries. Run: ``make bench``."""
