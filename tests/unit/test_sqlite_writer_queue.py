"""SQLite writers take turns through limonbilling/sqlite.py's WriterQueue: the next writer starts as soon
as the previous one commits, rolls back or closes, in this process and in others."""
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from limonbilling import create_app
from limonbilling.extensions import db

ROOT = Path(__file__).resolve().parents[2]


def _app(path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "TESTING": True})
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS counter (n INTEGER)"))
            connection.execute(text("DELETE FROM counter"))
            connection.execute(text("INSERT INTO counter VALUES (0)"))
    return app


def _second_writer_waits_for(app, end_first):
    """Start a transaction, start a second writer in a thread, end the first with `end_first`; return the order
    in which things happened."""
    happened = []
    with app.app_context():
        first = db.engine.connect()
        first.begin()
        first.execute(text("UPDATE counter SET n = n + 1"))

        def second_writer():
            with app.app_context(), db.engine.begin() as second:
                happened.append("second began")
                second.execute(text("UPDATE counter SET n = n + 10"))

        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the second writer must wait while the first holds the turn"
        happened.append("first ended")
        end_first(first)
        thread.join(timeout=10)
        assert not thread.is_alive()
        first.close()
        with db.engine.connect() as reader:
            happened.append(reader.execute(text("SELECT n FROM counter")).scalar())
    return happened


def test_the_turn_passes_on_at_commit(tmp_path):
    assert _second_writer_waits_for(_app(tmp_path / "q.db"), lambda c: c.commit()) == [
        "first ended", "second began", 11]


def test_the_turn_passes_on_at_rollback(tmp_path):
    assert _second_writer_waits_for(_app(tmp_path / "q.db"), lambda c: c.rollback()) == [
        "first ended", "second began", 10]


def test_the_turn_passes_on_when_a_connection_is_closed_mid_transaction(tmp_path):
    assert _second_writer_waits_for(_app(tmp_path / "q.db"), lambda c: c.invalidate()) == [
        "first ended", "second began", 10]


WRITER = """
import sys
from sqlalchemy import text
from limonbilling import create_app
from limonbilling.extensions import db
app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite:///" + sys.argv[1], "TESTING": True})
with app.app_context():
    for _ in range(200):
        with db.engine.begin() as connection:
            n = connection.execute(text("SELECT n FROM counter")).scalar()
            connection.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
"""


@pytest.mark.slow
def test_writers_in_several_processes_and_threads_never_overlap(tmp_path):
    """Read, then write what was read plus one: any two writers inside at once would lose an increment."""
    path = tmp_path / "q.db"
    app = _app(path)
    processes = [subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT) for _ in range(3)]

    def in_this_process():
        with app.app_context():
            for _ in range(200):
                with db.engine.begin() as connection:
                    n = connection.execute(text("SELECT n FROM counter")).scalar()
                    connection.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

    threads = [threading.Thread(target=in_this_process) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0]
    with app.app_context(), db.engine.connect() as reader:
        assert reader.execute(text("SELECT n FROM counter")).scalar() == 6 * 200
    assert (tmp_path / "q.db.lock").exists()  # the turn was taken through the queue's lock file


def test_a_forked_child_takes_its_own_turn_while_the_parent_holds_one(tmp_path):
    """A child forked while a thread of the parent holds the turn inherits neither that turn nor the lock file:
    it waits for the parent to give the turn back, then writes. (SQLite itself forbids forking inside an open
    transaction, so the parent holds only the turn here.)"""
    import os

    app = _app(tmp_path / "q.db")
    queue = app.extensions["sqlite_writer_queue"]
    with app.app_context():
        queue.acquire()
        child = os.fork()
        if child == 0:  # the child: a fresh pool on the same file, as a forked worker would make
            status = 1
            try:
                db.engine.dispose(close=False)
                with db.engine.begin() as connection:
                    connection.execute(text("UPDATE counter SET n = n + 10"))
                status = 0
            finally:
                os._exit(status)
        try:
            for _ in range(20):  # a second: the child is still waiting for the parent's turn
                assert os.waitpid(child, os.WNOHANG) == (0, 0), "the child wrote while the parent held the turn"
                time.sleep(0.05)
        finally:
            queue.release()
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        with db.engine.connect() as reader:
            assert reader.execute(text("SELECT n FROM counter")).scalar() == 10
