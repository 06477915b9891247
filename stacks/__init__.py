"""CDK Terrain stacks: one set per environment, built only from `kit.config.Environment`."""
