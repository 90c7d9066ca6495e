"""Feature codes dialled on an agent's phone.

``*21`` + agent number + ``#`` logs the agent in at this phone, ``*22`` logs out,
``*23`` ready, ``*24`` not ready (a trailing ``#`` is allowed on the last three).
The phone collects digits and asks after each one; the answer is one of
:class:`Verdict`: MORE (the string may go on: the phone's inter-digit timer
runs), OK (done: confirm tone) or BAD (congestion tone).
"""

from __future__ import annotations

import enum

from appliance.acd import Acd

FEATURE_CODES = {"*21": "login", "*22": "logout", "*23": "ready", "*24": "not ready"}


class Verdict(enum.Enum):
    MORE = "more"
    OK = "ok"
    BAD = "bad"


def feature_code(acd: Acd, phone_name: str, digits: str) -> Verdict:
    """What `digits` dialled on phone `phone_name` are; acts on the ACD once a code is complete."""
    code, rest = digits[:3], digits[3:]
    if len(digits) < 3:
        ok = digits.startswith("*") and all(c in "*0123456789#" for c in digits)
        return Verdict.MORE if ok else Verdict.BAD
    feature = FEATURE_CODES.get(code)
    if feature is None:
        return Verdict.BAD
    if feature == "login":
        if not rest.endswith("#"):
            return Verdict.MORE if rest.isdigit() or rest == "" else Verdict.BAD
        return Verdict.OK if acd.login(rest[:-1], phone_name) else Verdict.BAD
    agent = acd.agent_at(phone_name)
    if rest not in ("", "#") or agent is None:
        return Verdict.BAD
    if feature == "logout":
        return Verdict.OK if acd.logout(agent.number) else Verdict.BAD
    return Verdict.OK if acd.ready(agent.number, feature == "ready") else Verdict.BAD
