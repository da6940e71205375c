"""The one error hierarchy of exactrelu: every error derives from :class:`ExactReluError`."""

from __future__ import annotations


class ExactReluError(Exception):
    """Base class of every error raised by exactrelu."""


class InvalidInputError(ExactReluError, ValueError):
    """An argument (model, input shape, domain, option) is not usable as given."""


class UnsupportedModelError(ExactReluError):
    """The model contains operations without a registered rule, or in an unsupported state.

    ``problems`` lists every offending operation at once.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])

    def __reduce__(self) -> tuple:  # pickled whole (from a worker process)
        return type(self), (str(self), self.problems)


class RegionLimitError(ExactReluError):
    """More regions than ``max_regions`` were found; ``found`` says how many so far."""

    def __init__(self, message: str, found: int) -> None:
        super().__init__(message)
        self.found = found

    def __reduce__(self) -> tuple:  # pickled whole (from a worker process)
        return type(self), (str(self), self.found)


class VerificationError(ExactReluError):
    """A claim (count or list of patterns) does not match the certified regions."""


class CertificateError(ExactReluError):
    """A certificate is malformed, tampered with, or does not belong to the given network."""


class MissingDependencyError(ExactReluError, ImportError):
    """A package exactrelu needs for what was asked is not installed; the message says what to
    install (one line)."""
