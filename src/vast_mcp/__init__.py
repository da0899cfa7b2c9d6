"""vast-mcp: rent and run Vast.ai GPUs from an MCP client, safely."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vast-mcp")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0.0.0"
