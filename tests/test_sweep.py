"""Configuration sweeps end to end: real papermill executions of papers/sweep_point.ipynb on the embedded model,
killed half-way and resumed, and the same sweep on a local Ray cluster giving the same answers as local runs."""
import os, signal, subprocess, sys, time
from pathlib import Path
import pytest, yaml

from agent_slo.core.config import clean_env
from conftest import ROOT
from agent_slo.core.records import read_jsonl, read_records, record_key
from agent_slo.eval.sweep import SweepSpec, run_sweep, manifest_state, sweep_records

def tiny_spec(path:Path, batch_size:int=1) -> Path:
    "Two greedy points (constrained and free) over two tasks, short answers."
    path.write_text(yaml.safe_dump({'sweep': {
        'base': {'categories': ['simple_python'], 'limit': 2, 'split': None, 'max_tokens': 24, 'batch_size': batch_size, 'seed': 0},
        'axes': {'constrained': [True, False], 'temperature': [0.0], 'sc_n': [1, 3]}}}))
    return path

def _env(tmp_path):
    env = clean_env(drop=('SWEEP_',))
    return {**env, 'WANDB_DIR': str(tmp_path), 'WANDB_MODE': 'offline'}

def test_sweep_resumes_after_kill(tmp_path):
    spec_path, out = tiny_spec(tmp_path/'sweep.yaml'), tmp_path/'sweep'
    points = SweepSpec.from_yaml(spec_path).points()
    assert len(points) == 2   # sc_n=3 is dropped at temperature 0
    cmd = [str(Path(sys.executable).parent/'agent-slo'), 'sweeps', '--spec', str(spec_path), '--out', str(out), '--threads', '2']
    p = subprocess.Popen(cmd, cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    second = out/points[1]['id']/'records.jsonl'
    deadline = time.time() + 600
    try:   # kill the whole process group (kernels included) once the second point has written one of its two records
        while time.time() < deadline and p.poll() is None:
            if second.exists() and len(read_records(second)) >= 1: break
            time.sleep(0.2)
        assert p.poll() is None, f"the sweep ended before it could be killed: {p.stdout.read().decode()[-2000:]}"
        os.killpg(p.pid, signal.SIGKILL); p.wait(30)
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL)
    state = manifest_state(out)
    assert state[points[0]['id']]['status'] == 'done' and state[points[1]['id']]['status'] == 'started'
    kept = read_records(second)
    assert len(kept) == 1

    r = subprocess.run(cmd, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert 'ran 1 points now (1 done, 0 failed); 2 of 2 points done' in r.stdout, r.stdout
    events = read_jsonl(out/'manifest.jsonl')
    assert [e['status'] for e in events if e['id'] == points[0]['id']] == ['started', 'done']          # not run twice
    assert [e['status'] for e in events if e['id'] == points[1]['id']] == ['started', 'started', 'done']
    recs = read_records(second)
    assert len(recs) == 2 and recs[0] == kept[0]                          # the record written before the kill is kept as it was
    assert len({record_key(x) for x in recs}) == 2                        # and nothing is counted twice
    df = sweep_records(out)
    assert len(df) == 4 and set(df['stage']) == {'sweep'}
    assert (out/points[1]['id']/'point.ipynb').exists()

    # a third run finds everything done and runs nothing
    r = subprocess.run(cmd + ['--steps', '5'], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'ran 0 points now' in r.stdout, r.stdout

@pytest.mark.slow   # a local Ray cluster start and three points in its workers: about 90 s on 2 cores
def test_ray_backend_matches_local(tmp_path, monkeypatch):
    ray = pytest.importorskip('ray')
    for k in set(os.environ) - set(clean_env()): monkeypatch.delenv(k)
    monkeypatch.setenv('WANDB_MODE', 'offline')
    spec = SweepSpec.from_yaml(tiny_spec(tmp_path/'sweep.yaml', batch_size=2))
    spec.axes = {'constrained': [True], 'temperature': [0.0, 0.8], 'sc_n': [1, 3]}   # greedy, sampled, and a 3-sample vote
    assert len(spec.points()) == 3
    local = run_sweep(spec, tmp_path/'local', backend='local', threads=1, progress=False)
    try:
        remote = run_sweep(spec, tmp_path/'ray', backend='ray', ray_cpus=2, threads=1, progress=False)
    finally:
        ray.shutdown()
    assert [e['status'] for e in local] == ['done']*3 and [e['status'] for e in remote] == ['done']*3, (local, remote)
    assert {e['pid'] for e in remote}.isdisjoint({os.getpid()})          # the points ran in Ray workers
    assert {e['backend'] for e in read_jsonl(tmp_path/'ray'/'manifest.jsonl')} == {'ray'}
    cols = ['stage', 'task_id', 'config_hash', 'repeat', 'calls_norm', 'success', 'completion_tokens', 'schema_valid']
    a = sweep_records(tmp_path/'local')[cols].sort_values(cols[:4]).reset_index(drop=True)
    b = sweep_records(tmp_path/'ray')[cols].sort_values(cols[:4]).reset_index(drop=True)
    assert len(a) == 2 + 2 + 2*3 + 2, a                                  # greedy, sampled, and 3 samples + their vote per task
    assert a.equals(b), (a, b)
