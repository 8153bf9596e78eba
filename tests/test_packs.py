"""The default rule pack file says exactly what the code does by default."""

from __future__ import annotations

from pathlib import Path

import yaml

from daemon.config.schema import Config
from rules.kinds import RULE_KINDS

PACK = Path(__file__).parent.parent / "rules" / "packs" / "pssm-default.yaml"


def test_default_pack_matches_the_code_defaults() -> None:
    rules = yaml.safe_load(PACK.read_text())["rules"]
    config = Config.model_validate({"site": {"id": "x"}, "storehouses": [{"id": "S"}],
                                    "rules": rules})
    assert [type(r) for r in config.rules] == list(RULE_KINDS), "one entry per kind, in order"
    for configured in config.rules:
        assert configured == type(configured)(), configured.type
        # Every setting is spelled out, so the file is the whole table of defaults.
        listed = next(r for r in rules if r["type"] == configured.type)
        assert set(listed) == set(type(configured).model_fields) - {"enabled"}, configured.type
