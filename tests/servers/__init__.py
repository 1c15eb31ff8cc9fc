"""Real HTTP servers on 127.0.0.1 that stand in for the service's external peers in tests and
benchmarks."""
