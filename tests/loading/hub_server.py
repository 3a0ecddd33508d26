"""The loopback Hub lives in the package (benchmarks use it too)."""

from tali.sample_data.hub_server import COMMIT, HubServer, Request

__all__ = ["COMMIT", "HubServer", "Request"]
