"""Client hooks for the tests (``BYOK["CLIENT_HOOKS"]`` names them by import path)."""

from byok.clients import CallHook


class Refused(Exception):
    """A hook's own refusal, which must reach the caller unchanged."""


class RecordingHook(CallHook):
    """Keeps what each call showed the hooks: ``("before", call)`` and
    ``("after", call, record)``."""

    seen: list = []

    def before(self, call):
        self.seen.append(("before", call))
        call.notes["reserved"] = True

    def after(self, call, record):
        self.seen.append(("after", call, record))


class RefusingHook(CallHook):
    def before(self, call):
        raise Refused(f"no budget for {call.model}")


class BrokenAfterHook(CallHook):
    def after(self, call, record):
        raise RuntimeError("settling failed")
