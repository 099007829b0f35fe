"""The sandbox's store outlives nothing: closing it while a request is being served is safe."""

import threading

import pytest
import requests

from sandbox.server import SandboxServer
from sandbox.store import Store, StoreClosed


def test_a_connection_in_use_when_the_store_closes_is_closed_when_its_thread_is_done(tmp_path):
    store = Store(tmp_path / "sandbox.sqlite3")
    reading = threading.Event()
    may_finish = threading.Event()
    seen = []

    def read_slowly():
        with store.read() as db:
            reading.set()
            may_finish.wait(5)
            seen.append(db.execute("SELECT count(*) FROM account").fetchone()[0])
        seen.append(db)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    assert reading.wait(5)
    store.close()
    may_finish.set()
    reader.join(5)

    assert seen[0] == 0, "the reader finished its query on its own connection"
    with pytest.raises(Exception, match="closed"):
        seen[1].execute("SELECT 1")
    with pytest.raises(StoreClosed), store.read():
        pass


def test_a_request_on_a_kept_alive_connection_after_shutdown_is_hung_up(tmp_path):
    server = SandboxServer(("127.0.0.1", 0), tmp_path / "sandbox.sqlite3")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    session = requests.Session()
    assert session.get(f"{server.base_url}/ekm/nobody/api/v1/orders", timeout=5).status_code == 404
    server.shutdown()
    thread.join()
    server.server_close()

    # The handler thread of the kept-alive connection still reads it: it must hang up, not crash.
    with pytest.raises(requests.ConnectionError):
        session.get(f"{server.base_url}/ekm/nobody/api/v1/orders", timeout=5)
