"""Fleet simulation: the real function on N instance processes against one Service Bus queue
stand-in and one Graph stand-in that enforces Graph's limits across all of them.
`python -m bench.fleet` runs the scenarios (see `bench/fleet/run.py`)."""
