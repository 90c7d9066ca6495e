"""The IVR: what a caller hears and presses before a queue (one menu level until the IVR compiler)."""

from appliance.ivr.menu import MenuChoice, MenuWalk

__all__ = ["MenuChoice", "MenuWalk"]
