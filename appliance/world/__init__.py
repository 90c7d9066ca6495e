"""The simulated world: callers on the far side of FXO trunks and of PRI spans,
and phones on FXS ports, driven by scenario scripts in virtual (or real) time.
The far end of each PRI span is the world's far exchange (appliance.world.exchange):
our own Q.921 and Q.931, the side opposite the appliance's, on the span's far-side
D-channel; never libpri.

It reaches the sim card only through the card's far side (in process: the
engine's public ``far_side``), never through the engine's or the card's own
attributes (tests/test_layering.py checks). It does its own signal processing
with a far-side media tier of its own (tones, DTMF, FSK caller ID both ways),
one control period at a time, never per tick in Python; or, where it is given
:class:`FarSignals` (the end-to-end tests give spandsp's), takes DTMF, caller
ID and the busy tone from them and reads the phones' caller ID with them. A
port's :class:`FarLine` (an echo path, in tests) adds what the line beyond it
returns of the card's signal.
"""

from appliance.world.exchange import PriExchange, PriSpan, pri_spans
from appliance.world.world import Caller, CallerIdReader, FarLine, FarSignals, OutboundCall, PhoneScript, World

__all__ = ["Caller", "CallerIdReader", "FarLine", "FarSignals", "OutboundCall", "PhoneScript", "PriExchange",
           "PriSpan", "World", "pri_spans"]
