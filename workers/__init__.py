"""Celery workers: thin tasks around one `Detector` per process. Imports models/ and fakewatch/."""
