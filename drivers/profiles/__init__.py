"""The shipped catalogue of device profiles: one YAML file per device family or model under
`drivers/profiles/<family>/<model>.yaml`, named `<family>/<model>` in a config's `devices`.

A profile says which topic a device publishes on, the decoder settings that read it, how often
it reports when nothing happens (`check_in_s`: its silence limit is 2.5 times that), its
availability topic and words, the bridge it sits behind, and real sample payloads with the
values they must decode to (README "Device profiles").
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import FieldValue, RawMessage
from drivers.decoders.availability import AVAILABLE, AvailabilityDecoderConfig
from drivers.decoders.base import SKIPPED, UNHANDLED
from drivers.decoders.kinds import DecoderConfig

__all__ = [
    "CHECK_IN_FACTOR",
    "DeviceProfile",
    "ProfileSample",
    "catalogue",
    "decoder_for",
    "profile",
    "sample_problems",
    "validate_decoder",
]

_HERE = Path(__file__).parent
# A device that reports every `check_in_s` is silent after 2.5 of them: two reports missed and
# half a period of radio retries (Zigbee end devices poll their parent, Z2M docs "availability").
CHECK_IN_FACTOR = 2.5
_DECODER: TypeAdapter[DecoderConfig] = TypeAdapter(DecoderConfig)
# What a binding's sample check leaves out: site names of sensors and the gateway's own notes.
_NOTES = frozenset({SKIPPED, UNHANDLED})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectedReading(_Strict):
    """One reading a sample decodes to: its sensor (`""`: the device's own) and values."""

    sensor: str = ""
    values: dict[str, FieldValue]


class ProfileSample(_Strict):
    """A payload as the device publishes it, where it was seen, and what it decodes to."""

    payload: str
    note: str = ""
    readings: list[ExpectedReading] = Field(default_factory=list)


class AvailabilitySample(_Strict):
    """An availability payload and whether it says online."""

    payload: str
    available: bool


class AvailabilityProfile(_Strict):
    """The topic (with `{device}`) where the device or bridge says it is on- or offline."""

    topic: str
    decoder: AvailabilityDecoderConfig = Field(default_factory=AvailabilityDecoderConfig)
    samples: list[AvailabilitySample] = Field(default_factory=list)


class DeviceProfile(_Strict):
    """One device family or model: topics, decoder settings, check-in, availability, samples."""

    title: str
    # The sensor kinds it fits (door, climate, motion, ...; `bridge` for a bridge itself).
    kinds: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    source: str = ""
    # The state topic, `{device}` for the name it publishes under; none for a bridge.
    topic: str | None = None
    decoder: dict[str, object] | None = None
    check_in_s: float | None = Field(default=None, gt=0)
    availability: AvailabilityProfile | None = None
    # The bridge profile it sits behind (Zigbee devices behind Zigbee2MQTT), if any.
    bridge: str | None = None
    samples: list[ProfileSample] = Field(default_factory=list)
    kind: Literal["device", "bridge"] = "device"

    def decoder_config(self, overrides: Mapping[str, object] | None = None) -> DecoderConfig:
        """The profile's decoder settings with a binding's overrides, validated."""
        if self.decoder is None:
            raise ValueError("this profile has no decoder (a bridge)")
        return validate_decoder({**self.decoder, **(overrides or {})})


def validate_decoder(settings: Mapping[str, object]) -> DecoderConfig:
    """Decoder settings validated (pydantic's ValidationError when wrong)."""
    return _DECODER.validate_python(settings)


@functools.cache
def catalogue() -> dict[str, DeviceProfile]:
    """Every shipped profile by name (`zigbee2mqtt/aqara-mccgq11lm`), read once."""
    profiles: dict[str, DeviceProfile] = {}
    for path in sorted(_HERE.glob("*/*.yaml")):
        name = f"{path.parent.name}/{path.stem}"
        try:
            profiles[name] = DeviceProfile.model_validate(
                yaml.safe_load(path.read_text(encoding="utf-8")))
        except ValidationError as exc:  # a shipped file is wrong: a bug, said at once
            raise RuntimeError(f"device profile {name} ({path}): {exc}") from exc
    return profiles


def profile(name: str) -> DeviceProfile:
    """One profile, or a ValueError listing the known names."""
    try:
        return catalogue()[name]
    except KeyError:
        raise ValueError(f"unknown device profile {name!r} (known: "
                         f"{', '.join(sorted(catalogue()))})") from None


def decoder_for(name: str, overrides: Mapping[str, object] | None = None) -> DecoderConfig:
    """A profile's decoder config with overrides (what a config's device binding uses)."""
    return profile(name).decoder_config(overrides)


def _fields(values: Sequence[Mapping[str, FieldValue]]) -> list[str]:
    return sorted({name for v in values for name in v} - _NOTES)


def _canonical(readings: Sequence[tuple[str, Mapping[str, FieldValue]]]) -> list[str]:
    return sorted(repr((sensor, sorted(values.items()))) for sensor, values in readings)


def sample_problems(name: str, decoder: DecoderConfig | None, *,
                    exact: bool = False) -> list[str]:
    """What is wrong when `decoder` reads the profile's samples: a sample it cannot decode, or
    one whose readings miss the fields the profile says it holds. `exact`: the values and
    sensors must match the profile's too, and the availability samples are read (the
    catalogue's own test)."""
    spec = profile(name)
    problems = [] if decoder is None else _sample_problems(spec, decoder, exact)
    if spec.availability is not None and exact:
        availability = spec.availability.decoder.build()
        for sample in spec.availability.samples:
            raw = RawMessage("profile-sample", sample.payload.encode(), 1)
            try:
                value = availability.decode(raw, "device")[0].values[AVAILABLE]
            except DecodeError as exc:
                problems.append(f"availability {sample.payload!r}: not decoded: {exc}")
                continue
            if value is not sample.available:
                problems.append(f"availability {sample.payload!r}: read as {value}")
    return problems


def _sample_problems(spec: DeviceProfile, decoder: DecoderConfig, exact: bool) -> list[str]:
    built = decoder.build()
    problems = []
    for index, sample in enumerate(spec.samples):
        what = f"sample {index + 1} ({sample.note or sample.payload[:40]})"
        raw = RawMessage("profile-sample", sample.payload.encode(), 1_000_000_000)
        try:
            readings = built.decode(raw, "device")
        except DecodeError as exc:
            problems.append(f"{what}: not decoded: {exc}")
            continue
        want = [(r.sensor or "device", r.values) for r in sample.readings]
        if exact and _canonical([(r.sensor, r.values) for r in readings]) != _canonical(want):
            problems.append(f"{what}: decoded to {[(r.sensor, dict(r.values)) for r in readings]}"
                            f", expected {want}")
        elif not exact and _fields([r.values for r in readings]) != _fields(
                [values for _, values in want]):
            # A binding may map fewer probes or antennas than the sample has: the same
            # fields, not the same readings.
            problems.append(f"{what}: decoded fields {_fields([r.values for r in readings])}, "
                            f"the device sends {_fields([values for _, values in want])}")
    return problems
