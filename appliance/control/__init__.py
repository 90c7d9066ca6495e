"""The engine's command socket, $STATE_DIR/control.sock (docs/control-socket.md).

Newline-delimited JSON both ways. A request is ``{"id": N, "cmd": "...", ...}``;
its reply is ``{"id": N, "ok": true, "result": ...}`` or ``{"id": N, "ok":
false, "error": {"message": "...", "issues": [...]}}``. After
``{"cmd": "subscribe"}`` the engine also pushes ``{"snapshot": {...}}`` lines,
each stamped with the engine clock. The CLI and the panel share
:class:`ControlClient`; nothing else talks to the engine.

The server side (:class:`ControlServer`) never blocks: the engine calls
:meth:`ControlServer.poll` once per control period.

Commands named ``fault.*`` inject faults for tests; they are not product
commands and are refused unless the engine was started with ``--enable-faults``.
"""

from appliance.control.client import ControlClient
from appliance.control.server import FAULTS_DISABLED, ControlError, ControlServer, Deferred

__all__ = ["FAULTS_DISABLED", "ControlClient", "ControlError", "ControlServer", "Deferred"]
