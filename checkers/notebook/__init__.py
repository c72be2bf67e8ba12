"""The learner's side in a notebook: `setup()`, `exN.check()`, `hint()`, `solution()`, progress and dashboards. Imports the engine and `checkers.paths`."""
