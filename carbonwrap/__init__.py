"""carbonwrap: energy and carbon footprint of a command's own process tree."""

__version__ = "0.1.0"
