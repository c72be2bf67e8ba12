"""TicketHub's exercise engine: checks, hints and solutions for the course's notebooks."""

__version__ = "0.1.0"

from .workspace import fresh_import  # noqa: E402  (used by the notebooks' demos)

__all__ = ["__version__", "fresh_import"]
