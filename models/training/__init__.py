"""Training fakewatch's own default ensemble: labelled videos -> cached face crops -> fine-tuned members.

Only `fakewatch train` and the tests import this package; the detector never does.
"""
