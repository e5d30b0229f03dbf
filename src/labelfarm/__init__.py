"""labelfarm: a self-hosted, human-in-the-loop data labeling platform."""

from labelfarm.client import AppTransport, Client, LabelfarmAPIError

__all__ = ["AppTransport", "Client", "LabelfarmAPIError", "__version__"]
__version__ = "0.1.0"
