"""Task and queue names: the contract between the gateway (sends by name) and the workers.

Kept free of Celery imports so the CLI can name queues without loading Celery.
"""

DETECT_TASK = "fakewatch.detect"
WEBHOOK_TASK = "fakewatch.deliver_webhook"
DETECT_QUEUE = "gpu"
WEBHOOK_QUEUE = "webhooks"
WORKER_QUEUES = (DETECT_QUEUE, WEBHOOK_QUEUE)
FACE_VIEW_TASK = "fakewatch.face_view"  # a face crop or heatmap for the review page (gpu queue)
