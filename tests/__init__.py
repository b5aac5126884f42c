"""heapseg's test suite (a package, so that tests.backends can be imported)."""
