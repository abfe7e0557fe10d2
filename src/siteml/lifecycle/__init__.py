"""Running scenarios: one scenario through preflight, start, execute and register, and the demo."""
