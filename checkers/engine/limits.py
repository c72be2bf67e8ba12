"""How long a check may run: each exercise's budget, and the grace before a kill."""
import os

SOFT_TIMEOUT = float(os.environ.get("TICKETHUB_CHECK_TIMEOUT", "3"))  # seconds of learner code per exercise
HARD_MARGIN = 3.0  # seconds past its budget before a process that ignores it is killed
