"Shared fixtures: real `agent-slo serve` subprocesses on loopback, and the --slow switch."
import os
from pathlib import Path
import pytest
from agent_slo.serve.gateway import LocalServer

ROOT = Path(__file__).resolve().parents[1]

def pytest_addoption(parser):
    parser.addoption('--slow', action='store_true', help="also run slow notebook cells and tests marked slow")

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long-running; runs only with --slow')
    os.environ.setdefault('WANDB_MODE', 'offline')
    os.environ.setdefault('WANDB_SILENT', 'true')

def pytest_collection_modifyitems(config, items):
    if config.getoption('--slow'): return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for it in items:
        if 'slow' in it.keywords: it.add_marker(skip)

def _server_fixture(name:str, doc:str, **env):
    "A session-scoped fixture `name` running one real `agent-slo serve` with these settings."
    @pytest.fixture(scope='session', name=name)
    def fixture(tmp_path_factory):
        s = LocalServer({'AGENT_SLO_THREADS': 2, **env}, log_path=tmp_path_factory.mktemp('serve')/'serve.log')
        yield s
        s.stop()
    fixture.__doc__ = doc
    return fixture

server = _server_fixture('server', "The default server: embedded engine, an API key, a roomy queue.",
                         AGENT_SLO_SERVE_API_KEY='test-key', AGENT_SLO_MAX_QUEUE=8, AGENT_SLO_MAX_BATCH=4)
tight_server = _server_fixture('tight_server', "A server that admits one request at a time: the backpressure case.",
                               AGENT_SLO_MAX_QUEUE=1, AGENT_SLO_MAX_BATCH=1)
load_server = _server_fixture('load_server', "A server for load tests: batches of up to 8, a queue of 64.",
                              AGENT_SLO_MAX_QUEUE=64, AGENT_SLO_MAX_BATCH=8)
