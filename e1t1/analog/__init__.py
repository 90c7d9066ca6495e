"""Analog lines: the FXO trunk (loop start: we are a phone on an exchange line), the FXS port
(a phone on our line), and caller ID on them (FSK and DTMF).

The line machines are declared tables on the shared base (e1t1.fsm); they command the
card through a narrow :class:`~e1t1.analog.port.LinePort` and report upward by events
(e1t1.analog.events) to a sink the layer above gives them.
"""
