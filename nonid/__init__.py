"""`nonid`: the command line and public façade.  No mathematics lives here (see theory/)."""

from importlib import metadata

try:
    __version__ = metadata.version("nonid")
except metadata.PackageNotFoundError:  # running from a checkout without installation
    __version__ = "0+unknown"
