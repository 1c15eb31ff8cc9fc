"""The run lifecycle: its state machine, the site lease, signals, events and logs, progress."""
