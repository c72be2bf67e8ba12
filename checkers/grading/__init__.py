"""The `grade` command: submissions through nbval with restored check cells, verdicts from the course's own checks, and a gradebook. Imports the layers below it."""
