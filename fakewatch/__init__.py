"""fakewatch: deepfake video detection. Shared settings, job store and the CLI live here."""

__version__ = "0.1.0"
