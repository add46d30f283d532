"""Django's tasks framework, from the one place byok imports it.

``django.tasks`` on Django 6.0 and later; before that the ``django-tasks`` backport,
which has the same API (``task``, ``Task.enqueue``, ``TaskResultStatus``, the
``TASKS`` setting). Whatever backend the host configured in ``TASKS`` runs byok's
tasks: Django's default runs each one at once, in the process that enqueued it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the type checker runs on Django 5.2, with the backport installed
    from django_tasks import TaskResultStatus, task, task_backends
    from django_tasks.base import Task, TaskResult
else:
    try:
        from django.tasks import TaskResultStatus, task, task_backends
        from django.tasks.base import Task, TaskResult
    except ImportError:  # Django < 6.0
        from django_tasks import TaskResultStatus, task, task_backends
        from django_tasks.base import Task, TaskResult

__all__ = ["Task", "TaskResult", "TaskResultStatus", "task", "task_backends"]
