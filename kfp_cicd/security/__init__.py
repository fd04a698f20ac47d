"""Security checks of the project's outputs and dependencies: secret scanning, dependency audit."""
