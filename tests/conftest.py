"Shared fixtures: a real `agent-slo serve` subprocess on loopback, and the --slow switch."
import os, socket, subprocess, sys, time
from pathlib import Path
import httpx, pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

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

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

class Served:
    "A real `agent-slo serve` process; `.base_url` is its /v1 URL."
    def __init__(self, tmp:Path, **env):
        self.port = free_port()
        self.base_url = f'http://127.0.0.1:{self.port}/v1'
        self.log = tmp/f'serve-{self.port}.log'
        e = {k: v for k, v in os.environ.items() if not k.startswith(('AGENT_SLO_', 'AOFW_', 'OPENAI_'))}
        e.update({'AGENT_SLO_PORT': str(self.port), 'AGENT_SLO_THREADS': '2', **{k: str(v) for k, v in env.items()}})
        self.proc = subprocess.Popen([str(BIN/'agent-slo'), 'serve', '--log-level', 'warning'], env=e, cwd=ROOT,
                                     stdout=self.log.open('w'), stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None: raise RuntimeError(f"agent-slo serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f'http://127.0.0.1:{self.port}/healthz', timeout=1).status_code == 200: return
            except httpx.TransportError: pass
            time.sleep(0.25)
        self.stop(); raise RuntimeError(f"agent-slo serve did not come up:\n{self.log.read_text()}")
    def alive(self) -> bool: return self.proc.poll() is None
    def stop(self):
        self.proc.terminate()
        try: self.proc.wait(15)
        except subprocess.TimeoutExpired: self.proc.kill()

@pytest.fixture(scope='session')
def server(tmp_path_factory):
    "The default server: embedded engine, an API key, a roomy queue."
    s = Served(tmp_path_factory.mktemp('srv'), AGENT_SLO_SERVE_API_KEY='test-key', AGENT_SLO_MAX_QUEUE=8, AGENT_SLO_MAX_BATCH=4)
    yield s
    s.stop()

@pytest.fixture(scope='session')
def tight_server(tmp_path_factory):
    "A server that admits one request at a time: the backpressure case."
    s = Served(tmp_path_factory.mktemp('tight'), AGENT_SLO_MAX_QUEUE=1, AGENT_SLO_MAX_BATCH=1)
    yield s
    s.stop()
