"""One module per chapter (`chNN_topic.py`): its exercises and their steps; `kit.py`, what they share; `equivalents/`, the mutants each chapter accepts. Imports the notebook and engine layers."""
