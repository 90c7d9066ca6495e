"""The `cicbox` command as an installer or a card vendor would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import cli

PEER = Path(__file__).resolve().parent / "peers" / "far_phone.py"


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    assert "linetest" in capsys.readouterr().out


def test_bad_port_kind_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="--ports must be one of fxo, fxs, not 'fxz'"):
        cli.main(["linetest", "--ports", "fxs,fxz", "--clock", "virtual"])


def test_unknown_backend_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["linetest", "--card", "dahdi", "--clock", "virtual", "--state-dir", str(tmp_path)])
    assert rc == 2
    assert "cicbox: no DAHDI devices found" in capsys.readouterr().err


def test_linetest_answers_a_phone_with_dial_tone_and_reports_digits(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "appliance.cli", "linetest", "--ports", "fxs,fxs", "--clock", "virtual",
           "--duration", "4", "--wait-peer", "30", "--state-dir", str(tmp_path)]
    engine = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sock = tmp_path / "sim.sock"
    assert engine.stderr is not None
    for line in engine.stderr:  # the engine says when its far-end socket listens
        if "waiting up to" in line:
            break
    peer = subprocess.run([sys.executable, str(PEER), str(sock), "0", "42"], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"}, check=False)
    out, err = engine.communicate(timeout=60)
    assert engine.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events if e["chan"] == 0][:1] == ["HOOK_OFF"]
    assert [e["value"] for e in events if e["event"] == "DTMF"] == ["4", "2"]
    assert json.loads(peer.stdout.strip().splitlines()[-1])["tone_hz"] == 450


def test_a_second_engine_on_one_state_directory_is_refused_and_changes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A demo or `cicbox run` already holds the directory: a second one (here `run`, and `demo`) exits 2 with the
    # holder's pid, before it reads the store, records lost calls or touches the sockets; once the first is
    # closed, the directory is free again.
    import os

    args = cli.build_parser().parse_args(["run", "--clock", "virtual", "--state-dir", str(tmp_path)])
    first = cli._open_engine(args)
    try:
        first.run_for(2000)
        before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.is_file()}
        for argv in (["run", "--clock", "virtual", "--duration", "1", "--state-dir", str(tmp_path)],
                     ["demo", "--clock", "virtual", "--duration", "1", "--json", "--state-dir", str(tmp_path)]):
            assert cli.main(argv) == 2
            err = capsys.readouterr().err
            assert f"cicbox: another engine runs on {tmp_path} (pid {os.getpid()}): stop it first" in err
        after = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir() if p.is_file()}
        assert after == before
        assert (tmp_path / "control.sock").exists()
    finally:
        first.close()
    assert cli.main(["run", "--clock", "virtual", "--duration", "1", "--state-dir", str(tmp_path)]) == 0


def test_the_demo_prints_the_setup_code_until_an_installer_exists(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from appliance.web import accounts, setupcode

    panel_dir = tmp_path / "panel"
    cli._print_setup_code(panel_dir, "https://127.0.0.1:8443/")
    out = capsys.readouterr()
    code = setupcode.read_setup_code(panel_dir)
    assert out.out == f"panel setup code (type it at /setup to create the installer):\n{code}\n" and not out.err
    accounts.create_user(panel_dir, "inst", "installer", "installer-password-1")
    cli._print_setup_code(panel_dir, "https://127.0.0.1:8443/")
    out = capsys.readouterr()
    assert out.out == ("panel setup is done (an installer exists): sign in at https://127.0.0.1:8443/login; "
                       "`cicbox panel setup-code --new` allows one more installer\n")
    assert not out.err
