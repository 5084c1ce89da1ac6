//! End-to-end tests and benchmarks over the `runsc` binary live in `tests/` and `src/bin/`.
