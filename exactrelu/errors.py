"""The one error hierarchy of exactrelu: every error derives from :class:`ExactReluError`."""

from __future__ import annotations

from collections.abc import Sequence


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


class CertificationError(ExactReluError):
    """A consistency check of the exact layer failed: never a float issue, but a layer rule that
    disagrees with itself or a bug in exactrelu. ``detail`` says which check; ``rules`` names the
    network's rules that are not exactrelu's own (the message then points at them)."""

    def __init__(self, detail: str, rules: Sequence[str] = ()) -> None:
        self.detail = detail
        self.rules = tuple(rules)
        if self.rules:
            advice = (f"the network uses rules of its own ({', '.join(self.rules)}): one of them "
                      "most likely disagrees with itself (e.g. a constraint_list that disagrees "
                      "with cell_constraints); run exactrelu.testing.check_rule(module_type, "
                      "rule) on each, which names the wrong method")
        else:
            advice = ("with a layer rule of your own, run exactrelu.testing.check_rule("
                      "module_type, rule) on it, which names the wrong method; otherwise this is "
                      "a bug in exactrelu: please report it")
        super().__init__(f"{detail}; {advice}")

    def __reduce__(self) -> tuple:  # pickled whole (from a worker process)
        return type(self), (self.detail, self.rules)


class ClusterError(ExactReluError):
    """A Dask task's result is not what exactrelu's own task returns (another exactrelu on a
    worker, or a result changed in transfer); the message says which task and what is wrong."""


class MissingDependencyError(ExactReluError, ImportError):
    """A package exactrelu needs for what was asked is not installed; the message says what to
    install (one line)."""
