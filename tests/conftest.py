"Shared fixtures: real `agent-slo serve` subprocesses on loopback, and the --slow switch."
import os, socket, sys
from pathlib import Path
import pytest
from agent_slo.serve import LocalServer, free_port

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

def _serve(tmp, **env):
    return LocalServer({'AGENT_SLO_THREADS': 2, **env}, log_path=tmp/'serve.log')

@pytest.fixture(scope='session')
def server(tmp_path_factory):
    "The default server: embedded engine, an API key, a roomy queue."
    s = _serve(tmp_path_factory.mktemp('srv'), AGENT_SLO_SERVE_API_KEY='test-key', AGENT_SLO_MAX_QUEUE=8, AGENT_SLO_MAX_BATCH=4)
    yield s
    s.stop()

@pytest.fixture(scope='session')
def tight_server(tmp_path_factory):
    "A server that admits one request at a time: the backpressure case."
    s = _serve(tmp_path_factory.mktemp('tight'), AGENT_SLO_MAX_QUEUE=1, AGENT_SLO_MAX_BATCH=1)
    yield s
    s.stop()

@pytest.fixture(scope='session')
def load_server(tmp_path_factory):
    "A server for load tests: batches of up to 8, a queue of 64."
    s = _serve(tmp_path_factory.mktemp('load'), AGENT_SLO_MAX_QUEUE=64, AGENT_SLO_MAX_BATCH=8)
    yield s
    s.stop()
