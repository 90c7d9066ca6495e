"""Calls: the call machine, its legs and bridges, and the registry of the calls in progress."""

from appliance.calls.call import CallEvent, CallMachine, CallState
from appliance.calls.legs import Bridge, Leg, LegKind, Role
from appliance.calls.registry import Calls

__all__ = ["Bridge", "CallEvent", "CallMachine", "CallState", "Calls", "Leg", "LegKind", "Role"]
