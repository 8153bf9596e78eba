"""Log lines for journald (priority prefix) and for log shippers (JSON); options after commands."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.cli.logformat import JournalFormatter, JsonFormatter, chosen_format

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "demo-depot.yaml"


def _record(level: int, message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("depotwatch.rules", level, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize(("level", "prefix"), [
    (logging.DEBUG, "<7>"), (logging.INFO, "<6>"), (logging.WARNING, "<4>"),
    (logging.ERROR, "<3>"), (logging.CRITICAL, "<2>")])
def test_journal_lines_carry_the_syslog_priority_and_no_timestamp(level: int, prefix: str) -> None:
    line = JournalFormatter().format(_record(level, "door d1 open"))
    assert line == f"{prefix}depotwatch.rules: door d1 open"


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
                        min_size=1), min_size=1, max_size=4))
def test_every_physical_line_of_a_journal_record_keeps_its_priority(lines: list[str]) -> None:
    out = JournalFormatter().format(_record(logging.WARNING, "\n".join(lines)))
    assert all(line.startswith("<4>") for line in out.split("\n"))


def test_json_lines_carry_the_structured_fields() -> None:
    line = JsonFormatter().format(_record(logging.WARNING, "sensor %s silent", sensor="t1",
                                          topic="depot/t1", alert_key="sensor_silent:t1"))
    entry = json.loads(line)
    assert entry["level"] == "warning" and entry["logger"] == "depotwatch.rules"
    assert entry["message"] == "sensor %s silent"  # no args given: the text as it came
    assert (entry["sensor"], entry["topic"], entry["alert_key"]) == (
        "t1", "depot/t1", "sensor_silent:t1")
    assert entry["time"].endswith("Z") and "\n" not in line


def test_auto_is_journal_only_on_journalds_own_stream(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with (tmp_path / "err").open("w") as stream:
        stat = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
        assert chosen_format("auto", stream) == "journal"
        # Inherited by a child whose stderr went elsewhere: no prefix there.
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino + 1}")
        assert chosen_format("auto", stream) == "text"
        monkeypatch.delenv("JOURNAL_STREAM")
        assert chosen_format("auto", stream) == "text"
        assert chosen_format("json", stream) == "json"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONWARNINGS": "", **env})


def test_log_options_work_after_the_subcommand_and_json_is_one_object_a_line() -> None:
    done = _cli("run", "--log-level", "debug", "--log-format", "json", "-c", "/nonexistent.yaml")
    assert done.returncode == 78
    done = _cli("audit", "verify", "--log-format", "journal", "-c", "/nonexistent.yaml")
    assert done.returncode == 78, done.stderr


def test_check_config_takes_c_and_the_positional_form_says_it_is_deprecated() -> None:
    done = _cli("check-config", "-c", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert "deprecated" not in done.stderr
    done = _cli("check-config", str(EXAMPLE))
    assert done.returncode == 0 and "deprecated; use `check-config -c FILE`" in done.stderr
    done = _cli("check-config")
    assert done.returncode == 78 and "/etc/depotwatch/depotwatch.yaml" in done.stderr
