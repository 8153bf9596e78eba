"""The one YAML config: loaded with line numbers, validated strictly, checked across sections.

In: a YAML file; the settings models that drivers, decoders, rules and notifiers own.
Out: a frozen `Config` and the `Depot` model the rules judge against, or a `ConfigError`
listing every problem with its file and line.
"""
