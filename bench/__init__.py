"""Benchmarks of the paper's claims (scripts run as `python bench/NAME.py`); a package only so that `lint-imports`
can hold them to the library's public API."""
