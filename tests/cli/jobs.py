"""Training functions the CLI tests submit (``tests/cli/jobs.py:NAME``)."""


def hello(greeting: str = "hello", times: int = 1) -> None:
    """Prints its arguments on every rank (no torch import: quick)."""
    import os

    for i in range(times):
        print(f"{greeting} {i} from rank {os.environ.get('RANK')}", flush=True)


def boom() -> None:
    """Fails with the user's own exception."""
    raise ValueError("the learning rate is negative")


def sleepy(seconds: float = 120) -> None:
    """Runs until deleted (wait --timeout, wait --status Running)."""
    import time

    print("sleeping", flush=True)
    time.sleep(seconds)
