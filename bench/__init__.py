"""Benchmarks: they measure and report, they do not assert (`make bench`, `make bench-scale`,
`python -m bench.admission`). Importing `tools` puts the Lambda code root on the path."""

import tools  # noqa: F401
