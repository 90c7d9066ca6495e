"""The appliance layer's exceptions.

::

    ApplianceError
     +-- PromptError      a prompt is missing or malformed
     +-- ConfigError      a configuration document has problems (each with FILE:LINE:COL)
     +-- ApplyError       a valid configuration could not be switched to (rolled back)
"""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of every error of the appliance layer."""
