"""Feature codes dialled on an agent's phone (the site's ``acd.features``; defaults below).

- login ``*21<agent>#``, or ``*21<agent>*<pin>#`` for an agent with a PIN: ready at
  once. A wrong PIN, an unknown agent, a locked agent (three wrong PINs in five
  minutes lock it for five) or a phone another agent holds: congestion.
- logout ``*22``, ready ``*23`` (also ends a wrap-up): a trailing ``#`` is allowed.
- not ready ``*24<reason>#`` (a code of ``acd.not_ready_reasons``), ``*24#`` = ``other``;
  during a call or a wrap-up it applies when that ends (dialled during a call, the
  digits come as the call's keys: :class:`InCallCodes`).

The phone collects digits and asks after each one; the answer is one of
:class:`Verdict`: MORE (the string may go on: the phone's inter-digit timer runs),
OK (done: confirm tone) or BAD (congestion tone; nothing changed).
"""

from __future__ import annotations

import enum
import re
from typing import Any

from appliance.acd import OTHER, Acd, LoginResult

DEFAULT_FEATURES = {"login": "*21", "logout": "*22", "ready": "*23", "not_ready": "*24"}
FEATURE_CODES = {v: k for k, v in DEFAULT_FEATURES.items()}    # the defaults, code -> feature

_LOGIN_MORE = re.compile(r"^[0-9]*(\*[0-9]*)?$")
_LOGIN_DONE = re.compile(r"^([0-9]+)(?:\*([0-9]+))?#$")


class Verdict(enum.Enum):
    MORE = "more"
    OK = "ok"
    BAD = "bad"


def features(acd: Acd) -> dict[str, str]:
    """feature -> code, as the site sets them."""
    f = acd.settings.features
    return {"login": f.login, "logout": f.logout, "ready": f.ready, "not_ready": f.not_ready}


def _reasons(acd: Acd) -> dict[str, str]:
    return dict(acd.settings.not_ready_reasons)


def feature_code(acd: Acd, phone_name: str, digits: str) -> Verdict:
    """What `digits` dialled on phone `phone_name` are; acts on the ACD once a code is complete."""
    codes = features(acd)
    feature, rest = None, ""
    for name, code in codes.items():
        if digits.startswith(code):
            feature, rest = name, digits[len(code):]
            break
    if feature is None:
        if any(code.startswith(digits) for code in codes.values()):
            return Verdict.MORE
        return Verdict.BAD
    if feature == "login":
        m = _LOGIN_DONE.match(rest)
        if m is None:
            return Verdict.MORE if _LOGIN_MORE.match(rest) else Verdict.BAD
        return Verdict.OK if acd.login(m.group(1), phone_name, m.group(2)) is LoginResult.OK else Verdict.BAD
    agent = acd.agent_at(phone_name)
    if feature == "not_ready":
        return _not_ready(acd, agent, rest)
    if rest not in ("", "#") or agent is None:
        return Verdict.BAD
    if feature == "logout":
        return Verdict.OK if acd.agents.logout(agent) else Verdict.BAD
    return Verdict.OK if acd.agents.ready(agent) else Verdict.BAD


def _not_ready(acd: Acd, agent: Any, rest: str) -> Verdict:
    if rest == "" or (rest.isdigit() and len(rest) <= 2):
        return Verdict.MORE
    if not rest.endswith("#") or agent is None:
        return Verdict.BAD
    code = rest[:-1]
    reason = OTHER if code == "" else _reasons(acd).get(code)
    if reason is None:
        return Verdict.BAD
    return Verdict.OK if acd.agents.not_ready(agent, reason) else Verdict.BAD


class InCallCodes:
    """Keys an agent presses during a call: ``*24<reason>#`` among them is the not-ready code (it
    applies after the call). Other keys are the call's; a string that cannot be a code is dropped."""

    def __init__(self) -> None:
        self._digits: dict[str, str] = {}

    def key(self, acd: Acd, phone_name: str, digit: str) -> Verdict | None:
        code = features(acd)["not_ready"]
        digits = self._digits.get(phone_name, "") + digit
        if not (code.startswith(digits) or digits.startswith(code)):
            self._digits.pop(phone_name, None)
            if digit != code[0]:
                return None
            digits = digit
        if len(digits) <= len(code):
            self._digits[phone_name] = digits
            return Verdict.MORE
        verdict = _not_ready(acd, acd.agent_at(phone_name), digits[len(code):])
        if verdict is Verdict.MORE:
            self._digits[phone_name] = digits
        else:
            self._digits.pop(phone_name, None)
        return verdict
