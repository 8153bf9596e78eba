"""Checks across config sections, on the raw YAML: unique ids, known storehouses, sensors,
portals, doors and items, one reader per device; reported together with the schema's errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from daemon.config.yamlsource import YamlSource

__all__ = ["reference_problems"]


def reference_problems(data: dict[str, Any], source: YamlSource) -> list[str]:
    """Every cross-section mistake in the raw document, each as a `file:line: path: message`."""
    return [*_cross_references(data, source), *_serial_references(data, source),
            *_reader_references(data, source), *_sms_officers(data, source),
            *_device_references(data, source)]


def _sms_officers(data: dict[str, Any], source: YamlSource) -> list[str]:
    # A reply acts with the officer's role: a phone of nobody the API knows would act as an
    # operator by default, so it is a config error instead.
    api = data.get("api")
    known = sorted(str(o.get("name")) for _, o in _items(api if isinstance(api, dict) else {},
                                                        "officers"))
    problems: list[str] = []
    for index, notifier in _items(data, "notifiers"):
        if notifier.get("type") != "sms":
            continue
        for at, phone in _items(notifier, "officers"):
            if str(phone.get("officer")) not in known:
                problems.append(source.problem(
                    ("notifiers", index, "officers", at, "officer"),
                    f"no officer {phone.get('officer')!r} in api.officers (known: "
                    f"{', '.join(known) or 'none'})"))
    return problems


def _items(data: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    value = data.get(section)
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _raw(value: Any) -> Any:
    return value


def _repeated(seen: set[Any], item: dict[str, Any], path: tuple[Any, ...], source: YamlSource,
              same: Callable[[Any], Any] = str) -> list[str]:
    """The duplicate id problem when an earlier item had `item`'s id (compared as `same`
    makes it); the id is noted as seen."""
    if same(item.get("id")) in seen:
        return [source.problem(path, f"duplicate id {item.get('id')!r}")]
    seen.add(same(item.get("id")))
    return []


def _placed_sensors(data: dict[str, Any], sections: tuple[str, ...]) -> set[str]:
    """The sensors the depot places: doors' contacts and badge readers, portals' antennas,
    and the ids of the items of `sections` (climate sensors, inventory readers, detectors)."""
    known = {str(d.get(k)) for _, d in _items(data, "doors")
             for k in ("contact_sensor", "badge_reader") if d.get(k) is not None}
    known |= {str(p.get(k)) for _, p in _items(data, "portals")
              for k in ("inner_antenna", "outer_antenna") if p.get(k) is not None}
    return known | {str(x.get("id")) for section in sections for _, x in _items(data, section)}


def _cross_references(data: dict[str, Any], source: YamlSource) -> list[str]:
    # Works on the raw document, so these mistakes are reported together with schema errors.
    problems: list[str] = []
    for section in ("storehouses", "doors"):
        seen: set[Any] = set()
        for index, item in _items(data, section):
            problems += _repeated(seen, item, (section, index, "id"), source, same=_raw)
    known = sorted(str(s.get("id")) for _, s in _items(data, "storehouses"))
    placed = [("doors", i, d, "contact_sensor") for i, d in _items(data, "doors")]
    placed += [("doors", i, d, "badge_reader") for i, d in _items(data, "doors")]
    placed += [("climate_sensors", i, c, "id") for i, c in _items(data, "climate_sensors")]
    placed += [("portals", i, p, "inner_antenna") for i, p in _items(data, "portals")]
    placed += [("portals", i, p, "outer_antenna") for i, p in _items(data, "portals")]
    placed += [("inventory_readers", i, r, "id") for i, r in _items(data, "inventory_readers")]
    placed += [("detectors", i, d, "id") for i, d in _items(data, "detectors")]
    placed += [("items", i, item, "") for i, item in _items(data, "items")]
    sensor_owner: dict[Any, str] = {}
    checked: set[tuple[str, int]] = set()
    for section, index, item, field in placed:
        storehouse = item.get("storehouse")
        if (section, index) in checked:
            storehouse = None
        checked.add((section, index))
        if storehouse is not None and str(storehouse) not in known:
            problems.append(source.problem(
                (section, index, "storehouse"),
                f"unknown storehouse {storehouse!r} (known: {', '.join(known)})",
            ))
        sensor = item.get(field) if field else None
        if sensor is None:
            continue
        if sensor in sensor_owner:
            problems.append(source.problem(
                (section, index, field),
                f"sensor {sensor!r} is already used by {sensor_owner[sensor]}",
            ))
        sensor_owner[sensor] = f"{section}[{index}]"
    problems.extend(_register_references(data, source, known))
    kinds: list[Any] = [rule.get("type") for _, rule in _items(data, "rules")]
    for index, kind in enumerate(kinds):
        if kind is not None and kinds.index(kind) != index:
            problems.append(source.problem(("rules", index, "type"),
                                           f"rule kind {kind!r} configured twice"))
    mqtt = data.get("mqtt")
    for index, sub in _items(mqtt if isinstance(mqtt, dict) else {}, "subscriptions"):
        decoder = sub.get("decoder")
        has_path = isinstance(decoder, dict) and decoder.get("sensor_path")
        if "{sensor}" not in str(sub.get("topic", "{sensor}")) and not has_path:
            problems.append(source.problem(
                ("mqtt", "subscriptions", index, "topic"),
                "needs a {sensor} placeholder (or a decoder with sensor_path)",
            ))
    return problems


def _register_references(data: dict[str, Any], source: YamlSource,
                         storehouses: list[str]) -> list[str]:
    problems: list[str] = []
    doors = {str(d.get("id")) for _, d in _items(data, "doors")}
    portals = {str(p.get("id")) for _, p in _items(data, "portals")}
    epcs = {str(i.get("epc", "")).upper() for _, i in _items(data, "items")}
    for index, person in _items(data, "roster"):
        zones = person.get("zones")
        for z_index, zone in enumerate(zones if isinstance(zones, list) else []):
            if str(zone) not in storehouses:
                problems.append(source.problem(("roster", index, "zones", z_index),
                                               f"unknown storehouse {zone!r}"))
    for index, order in _items(data, "movement_orders"):
        if "portal" in order and str(order["portal"]) not in portals:
            problems.append(source.problem(("movement_orders", index, "portal"),
                                           f"unknown portal {order['portal']!r}"))
        listed = order.get("items")
        for i_index, epc in enumerate(listed if isinstance(listed, list) else []):
            if str(epc).upper() not in epcs:
                problems.append(source.problem(("movement_orders", index, "items", i_index),
                                               f"EPC {epc!r} is not in the item register"))
    for index, order in _items(data, "work_orders"):
        if "door" in order and str(order["door"]) not in doors:
            problems.append(source.problem(("work_orders", index, "door"),
                                           f"unknown door {order['door']!r}"))
    for section in ("movement_orders", "work_orders"):
        for index, order in _items(data, section):
            start, end = order.get("valid_from"), order.get("valid_until")
            if isinstance(start, dt.datetime) and isinstance(end, dt.datetime) and end <= start:
                problems.append(source.problem((section, index, "valid_until"),
                                               "ends before it starts"))
    return problems


def _serial_references(data: dict[str, Any], source: YamlSource) -> list[str]:
    """Serial ports and Modbus buses: unique ids and devices, and sensors the depot knows."""
    problems: list[str] = []
    # Detectors too: a keypad, a motion or water-leak detector may sit on a serial line.
    known = _placed_sensors(data, ("climate_sensors", "inventory_readers", "detectors"))

    def check_sensor(path: tuple[Any, ...], sensor: Any) -> None:
        if sensor is not None and str(sensor) not in known:
            problems.append(source.problem(path, f"unknown sensor {sensor!r} (not a door, "
                                                 "climate sensor, portal antenna, reader or "
                                                 "detector)"))

    devices: dict[str, str] = {}
    for section in ("serial", "modbus"):
        ids: set[str] = set()
        for index, port in _items(data, section):
            problems += _repeated(ids, port, (section, index, "id"), source)
            device = port.get("device")
            if device is not None and str(device) in devices:
                problems.append(source.problem(
                    (section, index, "device"),
                    f"device {device!r} is already read by {devices[str(device)]}"))
            devices.setdefault(str(device), f"{section}[{index}]")
    for index, port in _items(data, "serial"):
        check_sensor(("serial", index, "sensor"), port.get("sensor"))
        decoder = port.get("decoder")
        decoder = decoder if isinstance(decoder, dict) else {}
        names_sensor = bool(decoder.get("sensor_key") or decoder.get("antennas")
                            or decoder.get("sensor_path"))
        if port.get("sensor") is None and not names_sensor and "type" in decoder:
            problems.append(source.problem(
                ("serial", index),
                "needs a 'sensor' (or a decoder that names it: sensor_key, antennas)"))
        for key in ("sensors", "antennas"):
            mapping = decoder.get(key)
            for name, sensor in (mapping.items() if isinstance(mapping, dict) else []):
                check_sensor(("serial", index, "decoder", key, name), sensor)
    for index, bus in _items(data, "modbus"):
        for s_index, slave in _items(bus, "sensors"):
            check_sensor(("modbus", index, "sensors", s_index, "sensor"), slave.get("sensor"))
    return problems


def _reader_references(data: dict[str, Any], source: YamlSource) -> list[str]:
    """Reader and panel drivers: unique ids, and the sensors and storehouses they name."""
    problems: list[str] = []
    known = _placed_sensors(data, ("inventory_readers", "detectors", "climate_sensors"))
    storehouses = {str(s.get("id")) for _, s in _items(data, "storehouses")}
    ids: set[str] = set()
    for index, reader in _items(data, "readers"):
        problems += _repeated(ids, reader, ("readers", index, "id"), source)
        for path, sensor in _named_sensors(reader):
            if str(sensor) not in known:
                problems.append(source.problem(("readers", index, *path), f"unknown sensor "
                                               f"{sensor!r} (not a door's contact or badge "
                                               "reader, portal antenna, reader or detector)"))
        for at, account in _items(reader, "accounts"):
            areas = account.get("areas")
            for area, storehouse in (areas.items() if isinstance(areas, dict) else []):
                if str(storehouse) not in storehouses:
                    problems.append(source.problem(
                        ("readers", index, "accounts", at, "areas", area),
                        f"unknown storehouse {storehouse!r}"))
    return problems


def _named_sensors(reader: dict[str, Any]) -> list[tuple[tuple[Any, ...], Any]]:
    """(path, sensor) for each sensor a reader's settings name."""
    named: list[tuple[tuple[Any, ...], Any]] = []
    antennas = reader.get("antennas")
    named += [(("antennas", k), v) for k, v in (antennas.items()
                                                if isinstance(antennas, dict) else [])]
    for at, pd in _items(reader, "readers"):  # OSDP
        named += [(("readers", at, k), pd[k]) for k in ("sensor", "keypad") if pd.get(k)]
    for at, account in _items(reader, "accounts"):
        if account.get("panel_sensor"):
            named.append((("accounts", at, "panel_sensor"), account["panel_sensor"]))
        zones = account.get("zones")
        for zone, target in (zones.items() if isinstance(zones, dict) else []):
            sensor = target.get("sensor") if isinstance(target, dict) else target
            named.append((("accounts", at, "zones", zone), sensor))
    return named


def _device_references(data: dict[str, Any], source: YamlSource) -> list[str]:
    """Device bindings: sensors the depot places, each bound once, and bridges that exist."""
    problems: list[str] = []
    known = _placed_sensors(data, ("climate_sensors", "inventory_readers", "detectors"))
    bridges: set[str] = set()
    for index, bridge in _items(data, "bridges"):
        problems += _repeated(bridges, bridge, ("bridges", index, "id"), source)
    bound: dict[str, str] = {}

    def check_sensor(path: tuple[Any, ...], sensor: Any) -> None:
        if str(sensor) not in known:
            problems.append(source.problem(path, f"unknown sensor {sensor!r} (not a door, "
                                                 "climate sensor, antenna, reader or detector)"))
        elif str(sensor) in bound:
            problems.append(source.problem(path, f"sensor {sensor!r} is already bound by "
                                                 f"{bound[str(sensor)]}"))
        bound.setdefault(str(sensor), f"devices[{path[1]}]")

    for index, device in _items(data, "devices"):
        if device.get("sensor") is not None:
            check_sensor(("devices", index, "sensor"), device.get("sensor"))
        bridge_id = device.get("bridge")
        if bridge_id is not None and str(bridge_id) not in bridges:
            problems.append(source.problem(("devices", index, "bridge"), f"unknown bridge "
                                           f"{bridge_id!r} (known: {', '.join(sorted(bridges))})"))
        settings = device.get("decoder")
        for key in ("probes", "antennas"):
            mapping = settings.get(key) if isinstance(settings, dict) else None
            for name, sensor in (mapping.items() if isinstance(mapping, dict) else []):
                if str(sensor) != str(device.get("sensor")):
                    check_sensor(("devices", index, "decoder", key, name), sensor)
    return problems
