"""The config: strict validation, every mistake with its YAML path and line, exit 78."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config.loading import load_config
from daemon.config.yamlsource import expand_references
from daemon.vocabulary.errors import ConfigError

CONFIGS = Path(__file__).parent / "configs"
EXAMPLE = Path(__file__).parent.parent / "examples" / "demo-depot.yaml"


def problems(name: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(CONFIGS / name)
    return [p.split("configs/", 1)[1] for p in caught.value.problems]


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE)
    depot = config.depot()
    assert len(depot.doors) == 4 and len(depot.sensors) == 7


def test_three_mistakes_are_named_with_their_lines() -> None:
    assert problems("three-mistakes.yaml") == [
        "three-mistakes.yaml:5: storehouses[0].timezone: unknown timezone 'Mars/Olympus'",
        "three-mistakes.yaml:7: doors[0].storehouse: unknown storehouse 'SH9' (known: SH1)",
        "three-mistakes.yaml:9: mqtt.port: Input should be less than or equal to 65535",
    ]


def test_unknown_keys_are_errors() -> None:
    assert problems("unknown-key.yaml") == [
        "unknown-key.yaml:8: storehouses[0].armed.windows[0].colour: unknown key",
        "unknown-key.yaml:10: mqtt.hots: unknown key",
    ]


def test_rule_errors_point_into_the_rules_list() -> None:
    found = problems("bad-rule-type.yaml")
    assert found[0] == ("bad-rule-type.yaml:5: rules[0].temperature_warning_c: Input should be "
                        "a valid number, unable to parse string as a number")
    assert found[1].startswith("bad-rule-type.yaml:6: rules[1]: unknown type 'moon_phase' "
                               "(known: 'climate', ")
    assert len(found) == 2


def test_yaml_syntax_error_names_the_line() -> None:
    [problem] = problems("yaml-syntax.yaml")
    assert problem.startswith("yaml-syntax.yaml:5: YAML syntax:")


def test_duplicate_keys_and_ids() -> None:
    assert problems("duplicate-key.yaml") == [
        "duplicate-key.yaml:5: doors[1].id: duplicate id 'D1'",
        "duplicate-key.yaml:5: doors[1].contact_sensor: sensor 's1' is already used by doors[0]",
        "duplicate-key.yaml:8: mqtt.port: duplicate key",
    ]


def test_secrets_come_from_the_environment(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("site: {id: d}\nstorehouses: [{id: S}]\n"
                    "mqtt:\n  username: gw\n  password: ${DW_TEST_SECRET}\n")
    monkeypatch.setenv("DW_TEST_SECRET", "s3cret")
    config = load_config(path)
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)
    monkeypatch.delenv("DW_TEST_SECRET")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}:5: mqtt.password: environment variable DW_TEST_SECRET is not set"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONWARNINGS": ""})


def test_check_config_cli_exits_78_with_every_problem() -> None:
    done = run_cli("check-config", str(CONFIGS / "three-mistakes.yaml"))
    assert done.returncode == 78
    assert done.stderr.count("three-mistakes.yaml:") == 4  # three problems and the total
    assert ":7: doors[0].storehouse" in done.stderr


def test_run_refuses_a_bad_config_with_78() -> None:
    done = run_cli("run", "-c", str(CONFIGS / "three-mistakes.yaml"))
    assert done.returncode == 78
    assert "not starting" in done.stderr


def test_check_config_cli_accepts_the_example() -> None:
    done = run_cli("check-config", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert "OK (site depot-north: 2 storehouses, 4 doors, 7 sensors," in done.stdout
    assert "rule kinds)" in done.stdout


@pytest.mark.parametrize(("text", "environ", "expected", "problems"), [
    ("${A}", {"A": "x"}, "x", []),
    ("${A:-fallback}", {}, "fallback", []),
    ("${A:-fallback}", {"A": ""}, "fallback", []),  # as the shell: unset or empty
    ("${A:-fallback}", {"A": "set"}, "set", []),
    ("${A:-}", {}, "", []),
    ("$${A} and $${", {"A": "x"}, "${A} and ${", []),
    ("pre-${A}-${B}", {"A": "1"}, "pre-1-", ["environment variable B is not set"]),
    ("$A {A} ${1A}", {"A": "x"}, "$A {A} ${1A}", []),  # not references: kept as written
])
def test_references_in_config_values(text: str, environ: dict[str, str], expected: str,
                                     problems: list[str]) -> None:
    assert expand_references(text, environ) == (expected, problems)


def test_credentials_come_from_the_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "depotwatch_mqtt_password").write_text("s3cret\n")
    environ = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert expand_references("${credential:depotwatch_mqtt_password}", environ) == ("s3cret", [])
    text, problems = expand_references("${credential:missing}", environ)
    assert text == "" and problems == ["credential missing: cannot read: FileNotFoundError"]
    assert expand_references("${credential:x}", {}) == ("", [
        "credential x: CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit)"])


def test_a_credential_reaches_the_config_with_its_line(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "credentials"
    secrets.mkdir()
    (secrets / "depotwatch_mqtt").write_text("from-systemd")
    path = tmp_path / "c.yaml"
    path.write_text("site: {id: d}\nstorehouses: [{id: S}]\n"
                    "mqtt:\n  username: ${DW_USER:-gw}\n"
                    "  password: ${credential:depotwatch_mqtt}\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(secrets))
    monkeypatch.delenv("DW_USER", raising=False)
    config = load_config(path)
    assert config.mqtt.username == "gw"
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "from-systemd"
    (secrets / "depotwatch_mqtt").unlink()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}:5: mqtt.password: credential depotwatch_mqtt: cannot read: FileNotFoundError"]
