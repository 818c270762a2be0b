"""The RL commands as a user runs them: `agent-slo train sft` into a registry (one real optimiser step), then `agent-slo rl`,
the papermill RL notebook, evaluating base and SFT on held-out tasks through the P1 harness, with win-rates and figures."""
import json, subprocess, sys
from pathlib import Path
import pandas as pd

from agent_slo.core.config import clean_env
from conftest import ROOT

AGENT_SLO = str(Path(sys.executable).parent/'agent-slo')

import pytest
from agent_slo.engine.vllm import vllm_python

@pytest.fixture
def rl_engine(request) -> list[str]:
    "Where the RL notebook evaluates here: the suite's vLLM gateway (runtime LoRA), else the in-process engine."
    return [f"gateway_url={request.getfixturevalue('vllm_gateway').base_url}"] if vllm_python() else ['serve_backends=inprocess']

@pytest.mark.slow   # every stage trained, then the RL notebook: about 4 min on 2 cores; each stage's notebook runs by default
def test_train_then_rl_notebook(tmp_path, rl_engine):
    env = clean_env()
    env.update(AGENT_SLO_ARTIFACTS=str(tmp_path/'artifacts'), WANDB_DIR=str(tmp_path), WANDB_MODE='offline')
    tiny = ['train_limit=4', 'max_steps=1', 'batch_size=2', 'lora_r=2', 'lora_alpha=4', 'lora_targets=["q_proj", "v_proj"]', 'max_length=512']
    r = subprocess.run([AGENT_SLO, 'train', 'sft', *[a for p in tiny for a in ('-p', p)]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'tool-sft@v1: 1 steps on 4 rows' in r.stdout, r.stdout[-2000:]
    reg = tmp_path/'artifacts'/'lora'/'tool-sft'
    meta = json.loads((reg/'v1'/'METADATA.json').read_text())
    assert meta['stage'] == 'sft' and meta['config']['max_steps'] == 1 and len(meta['loss_curve']) == 1
    assert json.loads((reg/'current.json').read_text())['version'] == 'v1'
    cat = json.loads((tmp_path/'artifacts'/'catalog.json').read_text())
    assert meta['data_sha256'] in {e['sha256'] for e in cat.values()}
    assert list(tmp_path.glob('wandb/offline-run-*')), "the training curve was logged to W&B offline"

    agg, figs = tmp_path/'agg', tmp_path/'figs'
    params = ['eval_overrides={"categories": ["simple_python", "live_simple"], "dev_limit": 2, "test_limit": 2, "stability_limit": 1, "repeats": 2, "max_tokens": 24, '
              '"episode_limit": 1, "episode_max_steps": 1}',
              f'aggregate_dir={agg}', f'figures_dir={figs}', *rl_engine]
    r = subprocess.run([AGENT_SLO, 'rl', '--out', str(tmp_path/'rl'), '--no-render', *[a for p in params for a in ('-p', p)]],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    st = pd.read_csv(agg/'rl_stages.csv')
    assert st['model'].tolist() == ['base', 'sft'] and (st['n'] == 4).all()
    assert ((st['success_lo'] <= st['success']) & (st['success'] <= st['success_hi'])).all()
    assert st['disagreement'].between(0, 1).all()
    wr = pd.read_csv(agg/'rl_win_rates.csv')
    assert wr['model'].tolist() == ['base'] and wr['reference'].tolist() == ['sft'] and int(wr[['wins', 'ties', 'losses']].sum(axis=1).iloc[0]) == 4
    assert (wr['tokens_ratio_lo'] <= wr['tokens_ratio']).all() and (wr['tokens_ratio'] <= wr['tokens_ratio_hi']).all()
    ep = pd.read_csv(agg/'rl_episodes.csv')
    assert sorted(ep['model']) == ['base', 'sft'] and (ep['episodes'] == 1).all()   # one held-out multi-turn episode each, judged
    assert (ep['accuracy_lo'] <= ep['accuracy']).all() and (ep['accuracy'] <= ep['accuracy_hi']).all()
    assert pd.read_csv(agg/'rl_anchors.csv').empty or set(pd.read_csv(agg/'rl_anchors.csv')['category']) <= {'simple_python', 'live_simple'}
    d = pd.read_csv(agg/'rl_deltas.csv')
    assert {'all', 'simple_python', 'live_simple'} <= set(d['category'])
    times = pd.read_csv(agg/'rl_stage_times.csv')
    assert times['adapter'].tolist() == ['tool-sft@v1'] and times['steps'].tolist() == [1]
    for name in ('p2_rl_stages', 'p2_rl_curves'):
        for ext in ('png', 'pdf'): assert (figs/f'{name}.{ext}').stat().st_size > 5000, name
    on_vllm = rl_engine[0].startswith('gateway_url')
    recs = [json.loads(l) for f in (tmp_path/'rl'/('eval_vllm' if on_vllm else 'eval')).glob('*.jsonl') for l in f.read_text().splitlines()]
    assert {(r['engine_id'], r['backend']) for r in recs if r['stage'] != 'episode'} == ({('serve:vllm', 'vllm')} if on_vllm else {('hf', None)})   # an episode's own record sums its steps
    assert {r['model_id'] for r in recs} == {'SmolLM2-135M-Instruct', 'SmolLM2-135M-Instruct+tool-sft@v1'}
    single = [r for r in recs if not r['stage'].startswith('episode')]
    assert len(single) == 2*(4 + 1*2)   # per model: 4 held-out accuracy tasks, 1 stability task x 2 repeats
    assert sum(r['stage'] == 'episode' for r in recs) == 2 and all(r['split'] == 'test' for r in recs if r['stage'] == 'episode')
    assert 'RL stages' in r.stdout and 'paired against SFT' in r.stdout
