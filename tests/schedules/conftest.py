"""Schedule tests run real processes: ``pairforge deploy`` and the ``prefect server start`` it manages. They
live outside tests/flows on purpose: that folder's session fixture starts Prefect's temporary test server and
points PREFECT_HOME at its own folder, neither of which these tests want (every process here gets a clean
environment, and the server here must be a real, scheduling one)."""
