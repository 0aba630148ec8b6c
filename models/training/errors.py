"""Errors a training run reports to its user."""

from models.errors import FakewatchError


class TrainingDataError(FakewatchError):
    """The labelled data cannot be used: unreadable labels, missing files, too few groups or labels."""
