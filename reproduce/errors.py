"""Typed errors of the library; only `reproduce.cli` turns them into messages and exit codes."""


class ReproduceError(Exception):
    """Base class of every error the command line reports as a one-line message."""


class ConfigError(ReproduceError, ValueError):
    """A configuration field, sweep file or option has an invalid value."""


class DataError(ReproduceError):
    """A dataset cannot be built or loaded (for example MNIST is not cached)."""


class DataMismatchError(DataError):
    """Data regenerated for a run differ from what the run recorded it trained on."""


class RunExistsError(ReproduceError):
    """A completed run would be overwritten."""


class RunBusyError(ReproduceError):
    """Another process is training the run right now (it holds the run's lock)."""


class RunNotFoundError(ReproduceError):
    """A run folder or log root holds no usable run."""


class WorkerLostError(ReproduceError):
    """Another worker of a multi-worker run stopped or became unreachable."""

    exit_status = 1  # not the user's input: the cluster failed


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a command; `unfinished` names the runs whose folders were removed."""

    def __init__(self, unfinished=()):
        super().__init__(list(unfinished))
        self.unfinished = list(unfinished)
