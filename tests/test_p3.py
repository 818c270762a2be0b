"""P3 end to end, as `agent-slo p3` runs it: constrained against free decoding on the embedded engine and over the
OpenAI-compatible path through the gateway (on the suite's vLLM where installed), with the constraint's overhead per token."""
import subprocess, sys
from pathlib import Path
import pandas as pd, pytest

from agent_slo.core.config import clean_env
from agent_slo.engine.vllm import vllm_python
from conftest import ROOT

@pytest.fixture
def http_backend(request) -> str:
    "The gateway backend of P3's HTTP path here: the suite's vLLM as a URL backend, else the in-process engine."
    return f"vllm={request.getfixturevalue('vllm_url')}" if vllm_python() else 'embedded'

def test_p3_tiny(tmp_path, http_backend):
    agg, figs = tmp_path/'agg', tmp_path/'figs'
    params = ['limit=2', 'bench_reps=1', 'bench_tokens=16', 'max_tokens=32', f'serve_backends={http_backend}',
              f'aggregate_dir={agg}', f'figures_dir={figs}', 'wandb_log=false']
    r = subprocess.run([str(Path(sys.executable).parent/'agent-slo'), 'p3', '--quick', '--no-render', '--out', str(tmp_path/'p3'),
                        *[a for p in params for a in ('-p', p)]], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    modes = pd.read_csv(agg/'p3_modes.csv')
    name = http_backend.split('=')[0]
    http = f"OpenAI API via gateway: {name} (response_format)"
    assert set(modes['path']) == {'embedded (xgrammar)', http}, set(modes['path'])
    assert set(modes['decoding']) == {'constrained', 'free'} and (modes['n'] == 1).all()   # one task per category
    ov = pd.read_csv(agg/'p3_overhead.csv')
    assert set(ov['path']) == {'embedded (xgrammar)', http} and (ov['free_ms_per_token'] > 0).all() and (ov['constrained_ms_per_token'] > 0).all()
    for ext in ('png', 'pdf'): assert (figs/f'p3_constrained.{ext}').stat().st_size > 5000
