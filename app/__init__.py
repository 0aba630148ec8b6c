"""The HTTP gateway: validates uploads, keeps job records, sends work to Celery by task name.

Never imports torch or `workers/`: the API image ships without the ML stack.
"""
