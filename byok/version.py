"""The one source of byok's version: read by packaging, ``byok.__version__`` and the
``User-Agent`` of requests to providers."""

__version__ = "0.1.0.dev0"
