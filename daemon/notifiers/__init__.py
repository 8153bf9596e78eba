"""Where alerts go: one module per notifier, each behind `Notifier.send`."""
