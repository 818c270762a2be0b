"""The P1 experiment end to end, as `agent-slo p1` runs it: a real papermill execution of papers/p1.ipynb on the embedded
model (accuracy, stability) and through the gateway on the suite's vLLM (load, capacity), producing records,
eval_summary.csv, the figures and the rendered paper draft."""
import json, subprocess, sys
from pathlib import Path
import pandas as pd

from agent_slo.core.config import clean_env
from conftest import ROOT

import pytest
from agent_slo.engine.vllm import vllm_python

@pytest.fixture
def load_backend(request) -> str:
    "The gateway backend P1's load stages use here: the suite's vLLM as a URL backend (no second vLLM start), else the in-process engine."
    return f"vllm={request.getfixturevalue('vllm_url')}" if vllm_python() else 'embedded'

def test_p1_pipeline_tiny(tmp_path, load_backend):
    out, agg, figs = tmp_path/'p1', tmp_path/'agg', tmp_path/'figs'
    params = ['limit=4', 'stability_limit=2', 'repeats=2', 'load_limit=4', 'qps=[2]', 'max_tokens=48', f'serve_backends={load_backend}',
              'max_rate_limit=4', 'max_rate_ladder=[2, 64]', f'figures_dir={figs}', f'aggregate_dir={agg}', 'wandb_log=true']
    env = clean_env()
    env.update(WANDB_DIR=str(tmp_path), WANDB_MODE='offline')
    r = subprocess.run([str(Path(sys.executable).parent/'agent-slo'), 'p1', '--quick', '--out', str(out),
                        *[a for p in params for a in ('-p', p)]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    s = pd.read_csv(agg/'eval_summary.csv')
    assert set(s['stage']) == {'accuracy', 'stability', 'idle', 'load', 'max_rate'}   # --quick searches the capacity too, after the unloaded floor
    backend = load_backend.split('=')[0]
    assert set(s[s['stage'].isin(['idle', 'load', 'max_rate'])]['backend']) == {backend} and s[s['stage'] == 'accuracy']['backend'].isna().all()
    cap = json.loads((agg/'p1_max_rate.json').read_text())
    assert cap['slo'] == {'e2e_s': 8.0} and cap['target'] == 0.9 and cap['count_success'] is False and '2' in cap['tried']
    assert cap['max_rate'] in (None, 2, 64) or 2 < cap['max_rate'] < 64
    assert 'Capacity.' in (out/'paper'/'p1.html').read_text()
    assert set(s['category']) == {'simple_python', 'live_simple'}
    acc = s[s['stage'] == 'accuracy']
    assert set(acc['constrained']) == {True, False} and (acc['n'] == 2).all()
    assert (s[s['stage'] == 'stability']['repeats'] == 2).all() and s[s['stage'] == 'stability']['disagreement'].notna().all()
    assert (s[s['stage'] == 'load']['load_level'] == 2.0).all()
    for c in ('success', 'success_lo', 'success_hi', 'ttft_s_p95', 'e2e_s_p99', 'success_at_slo_ttft1_e2e5', 'goodput_rps_e2e15'):
        assert c in s.columns, c
    for c in ('success', 'schema_valid', 'success_at_slo_e2e15'):   # Wilson intervals: never [0, 0] at 0% nor [1, 1] at 100%
        assert (s[c + '_hi'] > 0).all() and (s[c + '_lo'] < 1).all() and (s[c + '_lo'] <= s[c]).all() and (s[c] <= s[c + '_hi']).all(), s[[c, c + '_lo', c + '_hi']]
    assert '[0.00,0.00]' not in r.stdout and '[1.00,1.00]' not in r.stdout, r.stdout
    for name in ('p1_latency_cdf', 'p1_disagreement', 'p1_qps'):
        for ext in ('png', 'pdf'): assert (figs/f'{name}.{ext}').stat().st_size > 5000, name
    executed = json.loads((out/'p1.ipynb').read_text())
    assert executed['metadata']['papermill']['parameters']['limit'] == 4
    assert (out/'paper'/'p1.pdf').read_bytes()[:5] == b'%PDF-'
    assert 'success@SLO' in (out/'paper'/'p1.html').read_text()
    assert (out/'paper'/'latex'/'p1.tex').exists()
    recs = [json.loads(l) for l in (out/'records.jsonl').read_text().splitlines()]
    n_cap = sum(r['stage'] == 'max_rate' for r in recs)
    idle = [r for r in recs if r['stage'] == 'idle']   # every load and capacity task once, one at a time, before any rate
    load_ids = {r['task_id'] for r in recs if r['stage'] in ('load', 'max_rate')}
    assert sorted(r['task_id'] for r in idle) == sorted(load_ids) and min(r['t_submit'] for r in recs if r['stage'] in ('load', 'max_rate')) > max(r['t_end'] for r in idle)
    assert len(recs) - n_cap - len(idle) == 4*2 + 2*2*2 + 4 and n_cap == 4*len(cap['tried'])   # accuracy (2 modes) + stability (2 temperatures x 2 repeats) + load; capacity
    gw = [json.loads(l) for l in (tmp_path/'p1_gateway'/'records.jsonl').read_text().splitlines()]
    assert len(gw) == len(idle) + 4 + n_cap and {r['backend'] for r in gw} == {backend}   # the gateway's own record of every load request
    assert 'P1 summary' in r.stdout
    pr = pd.read_csv(agg/'p1_paired.csv')                          # constrained against free on the same tasks
    assert set(pr['category']) == {'simple_python', 'live_simple', 'all'} and (pr.loc[pr['category'] == 'all', 'n'] == 4).all()
    assert ((pr['success_diff_lo'] <= pr['success_diff']) & (pr['success_diff'] <= pr['success_diff_hi'])).all() and pr['success_mcnemar_p'].between(0, 1).all()
    runs = json.loads((agg/'RUNS.json').read_text())              # the provenance the papers' captions cite
    run = runs['runs'][runs['files']['eval_summary.csv']]
    assert run['experiment'] == 'p1' and run['preset'] == 'quick' and run['params']['limit'] == 4 and len(run['config_hash']) == 12
    assert runs['files']['p1_max_rate.json'] == run['run_id'] and set(run['figures']) >= {'p1_qps.png', 'p1_qps.pdf'}
    from collections import Counter
    assert run['sources'] == {run['run_id']: dict(Counter(r['stage'] for r in recs))}   # every record is this run's, stage by stage
    assert list(tmp_path.glob('wandb/offline-run-*')), "the run was logged to W&B offline"

    # P2 on the same records, as the papermill P2 notebook: scores every closed-loop configuration, draws the front,
    # names an operating point (or says why none passes and what gate would admit one), renders the draft
    r = subprocess.run([str(Path(sys.executable).parent/'agent-slo'), 'p2', '--records', str(out), '--out', str(tmp_path/'p2'),
                        '--aggregate-dir', str(agg), '--figures-dir', str(figs)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    sc = pd.read_csv(agg/'p2_scores.csv')
    assert len(sc) == 4 and {'R', 'r_schema', 'r_succ', 'L', 'C', 'D', 'passes_gates', 'success_at_slo', 'pareto'} <= set(sc.columns)
    assert sc['pareto'].any()
    assert 'operating point at λ*=' in r.stdout
    for name in ('p2_pareto', 'p2_weight_sweep'): assert (figs/f'{name}.png').stat().st_size > 5000
    assert (tmp_path/'p2'/'paper'/'p2.pdf').read_bytes()[:5] == b'%PDF-'
    grid = pd.read_csv(agg/'p2_weight_grid.csv')
    assert len(grid) == 6*4*3*4   # every (λ, μ, γ) of the notebook's grid, for each configuration
    rw = json.loads((agg/'p2_reward.json').read_text())
    pr2 = pd.read_csv(agg/'p2_paired.csv')                        # the operating point against every other configuration, paired by task
    if rw['operating_point'] or (rw['relaxed'] or {}).get('choice'):
        assert 1 <= len(pr2) <= 3 and pr2['tasks'].between(1, 4).all() and pr2['R_wilcoxon_p'].between(0, 1).all()   # the configurations sharing tasks with it
        assert ((pr2['R_diff_lo'] <= pr2['R_diff']) & (pr2['R_diff'] <= pr2['R_diff_hi'])).all() and (pr2[['wins', 'ties', 'losses']].sum(axis=1) == pr2['tasks']).all()
    else: assert pr2.empty
