"""The simulated world: callers on the far side of FXO trunks and phones on FXS
ports, driven by scenario scripts in virtual (or real) time.

It reaches the sim card only through the card's far side (in process), and it
does its own signal processing with a far-side media tier of its own (tones,
DTMF, FSK caller ID both ways), one control period at a time, never per tick
in Python.
"""

from appliance.world.world import Caller, PhoneScript, World

__all__ = ["Caller", "PhoneScript", "World"]
