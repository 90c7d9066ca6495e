"""The control plane's exception tree: every error the appliance layer raises on purpose is an ApplianceError."""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of the appliance layer's errors; the message is meant for the installer, as is."""
