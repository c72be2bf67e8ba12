"""The maintainers' commands: `build`, `execute`, `bench`, `mutate`. The top layer: imports any layer below it."""
