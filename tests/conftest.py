"Shared fixtures: real `agent-slo serve` subprocesses on loopback (one over the suite's single managed vLLM), and the --slow switch."
import json, os
from pathlib import Path
import pytest
from agent_slo.serve.gateway import LocalServer
from agent_slo.engine.vllm import vllm_python

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
        d = tmp_path_factory.mktemp('serve')
        s = LocalServer({'AGENT_SLO_THREADS': 2, 'AGENT_SLO_TUNER_DIR': str(d/'tuner'), **env}, log_path=d/'serve.log')
        s.tuner_dir = d/'tuner'
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

VLLM_CAP = 10   # requests the vLLM backend admits before the gateway answers 429

@pytest.fixture(scope='session')
def vllm_gateway(tmp_path_factory):
    """The suite's one managed vLLM, started by a real `agent-slo serve` as its backend: the priority scheduler, two sequences
    at a time (so a few requests saturate it), runtime LoRA, VLLM_CAP requests in flight before 429, one record per request."""
    if vllm_python() is None: pytest.skip("the managed vLLM venv is missing: `make vllm` (make test builds it)")
    d = tmp_path_factory.mktemp('vllm')
    spec = [{'name': 'vllm', 'kind': 'vllm', 'priority': True, 'max_inflight': VLLM_CAP, 'vllm': {'max_num_seqs': 2, 'lora': True, 'max_lora_rank': 16, 'log_path': str(d/'vllm.log')}}]
    gw = LocalServer({'AGENT_SLO_BACKENDS': json.dumps(spec), 'AGENT_SLO_SERVE_RECORDS': str(d/'records.jsonl'),
                      'AGENT_SLO_ARTIFACTS': str(d/'artifacts'), 'AGENT_SLO_TUNER_DIR': str(d/'tuner')}, log_path=d/'serve.log')   # a registry of its own: rollouts register test adapters there
    gw.records, gw.vllm_log, gw.artifacts, gw.tuner_dir = d/'records.jsonl', d/'vllm.log', d/'artifacts', d/'tuner'
    yield gw
    gw.stop()

@pytest.fixture(scope='session')
def vllm_url(vllm_gateway) -> str:
    "The bare vLLM's /v1 URL behind the suite's gateway."
    return vllm_gateway.health()['backends'][0]['url']
