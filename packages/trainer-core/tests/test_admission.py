"""The admission queue (kubeflow_trainer.admission): submission order, a dead waiter's ticket skipped, the
running count from locks that die with their process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from kubeflow_trainer.admission import AdmissionQueue, wait_for_turn


def test_tickets_keep_submission_order_and_a_dead_waiter_is_skipped(tmp_path):
    queue = AdmissionQueue(str(tmp_path))
    first = queue.enqueue("first")
    # a waiter in another process that dies: its ticket's lock goes with it
    code = (
        "import sys; from kubeflow_trainer.admission import AdmissionQueue; "
        f"AdmissionQueue({str(tmp_path)!r}).enqueue('dead')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    last = queue.enqueue("last")
    assert [n.split("-", 1)[1] for n in queue.waiting()] == ["first", "last"]
    assert queue.position("last") == (2, 2)
    assert not any(n.endswith("-dead") for n in os.listdir(queue.queue_dir))  # removed by the look
    first.release()
    assert queue.position("last") == (1, 1)
    last.release()


def test_wait_for_turn_starts_only_below_the_limit(tmp_path):
    queue = AdmissionQueue(str(tmp_path))
    held = queue.hold_running("busy")
    assert queue.running() == ["busy"]
    ticket = queue.enqueue("next")
    started = threading.Event()
    thread = threading.Thread(
        target=wait_for_turn, args=(queue, ticket, 1, lambda: len(queue.running()), started.set), kwargs={"poll": 0.05}
    )
    thread.start()
    assert not started.wait(0.5)  # the one place is taken
    os.close(held)  # the running job ends (its process would exit the same way)
    assert started.wait(10)
    thread.join(10)
    assert queue.running() == [] and queue.waiting() == []


def test_a_cancelled_waiter_leaves_the_queue(tmp_path):
    queue = AdmissionQueue(str(tmp_path))
    ticket = queue.enqueue("gone")
    assert wait_for_turn(queue, ticket, 0, lambda: 0, lambda: None, cancelled=lambda: True) is False
    assert queue.waiting() == []


def test_a_ticket_released_while_another_process_looks_at_it(tmp_path, monkeypatch):
    """The race CI met with 50 queued jobs: a waiter opens a ticket, its owner leaves the queue (removes the
    file, then closes it), and the waiter then gets the lock. The ticket reads as gone, without an error, and
    a new ticket at the same path is not removed. (The owner's release is injected between the look's open and
    its lock: real processes hit that window only now and then.)"""
    from kubeflow_trainer import admission

    queue = AdmissionQueue(str(tmp_path))
    leaving = queue.enqueue("leaving")
    real_try_lock = admission._try_lock

    def release_first(fd: int) -> bool:
        if not leaving_released:
            leaving_released.append(True)
            leaving.release()
        return real_try_lock(fd)

    leaving_released: list[bool] = []
    monkeypatch.setattr(admission, "_try_lock", release_first)
    assert queue.waiting() == []
    assert leaving_released

    # the same race on a running job whose name is held again at once: the new holder's file stays
    held = queue.hold_running("job")
    path = os.path.join(queue.running_dir, "job")

    def rehold(fd: int) -> bool:
        nonlocal held
        os.unlink(path)
        os.close(held)
        held = queue.hold_running("job")
        monkeypatch.setattr(admission, "_try_lock", real_try_lock)
        return real_try_lock(fd)

    monkeypatch.setattr(admission, "_try_lock", rehold)
    assert queue.running() == []  # the look saw the old holder's file
    assert queue.running() == ["job"]  # the new holder's file is still there, and held
    os.close(held)
