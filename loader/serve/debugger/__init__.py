"""The ``/debugger`` page of ``serve``: what arrives, what became of it, and why.

:mod:`.recorder` keeps the last requests (cheaply: references only), :mod:`.view` turns
them and ``_rejects`` rows into what the page shows, masked by :mod:`.masking`;
:mod:`.queries` asks the warehouse; :mod:`.page` serves the page (``static/``) and its
feeds behind the admin token.
"""

from .page import Debugger
from .recorder import Recorder

__all__ = ["Debugger", "Recorder"]
