"""The engine: declarations, the judge, the learner's process and the channel between them, the sandbox and check server, per-check databases. Imports only `checkers.paths`."""
