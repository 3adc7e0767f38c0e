"""User-facing errors: each carries one clear message naming the file and the problem.

The CLI prints ``str(error)`` on one line and exits with status 2; library users can
catch :class:`HamnetError` to handle every expected failure at once.
"""


class HamnetError(Exception):
    """An expected failure caused by input, configuration or environment."""


class DataError(HamnetError):
    """Annotation or feature files are missing, malformed or inconsistent."""


class ConfigError(HamnetError):
    """An unknown preset, key or an invalid configuration value."""


class CheckpointError(HamnetError):
    """A checkpoint is missing, truncated or does not fit the network."""


class EvaluationInputError(HamnetError):
    """Ground truth or detections given to the evaluator are malformed."""


class MissingDependencyError(HamnetError):
    """An optional dependency (an extra) is not installed."""


# how an interrupted training continues; commands that resume by themselves (the demo)
# replace it with their own
RESUME_HINT = "continue with --resume"


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a training; the message says what was saved.

    A KeyboardInterrupt, so that code catching Exception does not swallow it.
    ``exit_status`` is what a shell reports for a process the signal ended (128 + number).
    """

    def __init__(self, message: str, signum: int = 2):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class TrainingError(HamnetError):
    """Training cannot go on: a non-finite loss, a run folder in use by another process."""
