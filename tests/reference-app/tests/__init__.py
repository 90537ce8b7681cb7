"""Reference stack tests (a package, so its conftest never shadows another suite's)."""
