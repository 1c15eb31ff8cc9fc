"""The seven pipeline stages and the runner that drives them (SPEC section 7)."""
