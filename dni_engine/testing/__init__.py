"""Public test harness: hypothesis strategies, a reference oracle, state machines, servers."""
