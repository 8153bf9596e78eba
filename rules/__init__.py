"""PSSM rule kinds: pure functions of (state, event, now) that return alert transitions."""
