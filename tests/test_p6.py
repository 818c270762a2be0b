"""P6a end to end, as `agent-slo tune` runs it, on the suite's managed vLLM behind its gateway: a two-configuration grid
logged through the gateway, the five tuners at equal budget, OPE against OBP, a later on-policy run through
POST /tuner/evaluate, a shadow and a canary of a configuration, the tables and the figures."""
import json, subprocess, sys
from pathlib import Path
import pandas as pd

from agent_slo.core.config import clean_env
from agent_slo.core.records import read_records
from conftest import ROOT

def test_p6_tiny(tmp_path, vllm_gateway):
    agg, figs = tmp_path/'agg', tmp_path/'figs'
    params = ['groups={"simple": ["simple_python"]}', 'pool=2', 'batch_size=1', 'seeds=[0]', 'later_tasks=1', 'rollout_tasks=6', 'n_resamples=1000',
              'space={"variants": ["bm25", "dense"], "w_levels": [0.5], "k_levels": [3], "rerank": [false], "templates": ["json-v1"], "constrained": [true]}',
              'static={"variant": "bm25", "w": 0.5, "k": 3, "rerank": false, "template": "json-v1", "constrained": true}',
              'rollout={"batch_size": 1, "promote_after": 1, "max_batches": 2}',
              f'gateway_url={vllm_gateway.base_url}', f'out_dir={tmp_path/"runs"}', f'aggregate_dir={agg}', f'figures_dir={figs}']
    r = subprocess.run([str(Path(sys.executable).parent/'agent-slo'), 'tune', '--no-render', '--out', str(tmp_path/'p6'), *[a for p in params for a in ('-p', p)]],
                       cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-4000:]
    recs = read_records(tmp_path/'runs'/'grid'/'records.jsonl')
    assert len(recs) == 4 and {x['engine_id'] for x in recs} == {'serve:vllm'} and all(x['config']['tools']['k'] == 3 for x in recs)   # 2 configurations × 2 tasks
    t = pd.read_csv(agg/'p6_table.csv')
    assert {'grid', 'ucb', 'thompson', 'optuna', 'ppo'} <= set(t['method']) and t['r'].notna().all()
    ope = pd.read_csv(agg/'p6_ope.csv')
    assert set(ope['estimator']) == {'ips', 'snips', 'dr'} and (ope['abs_diff_obp'] < 1e-9).all()
    later = pd.read_csv(agg/'p6_later.csv')
    assert len(later) == 3 and (later['n'] == 1).all()            # three deployments, one fresh task each
    ro = json.loads((agg/'p6_rollouts.json').read_text())
    assert set(ro) >= {'shadow', 'canary'} and ro['candidate']['variant'] == 'dense'
    for name in ('p6_rewards', 'p6_actions', 'p6_pareto'):
        for ext in ('png', 'pdf'): assert (figs/f'{name}.{ext}').stat().st_size > 5000, name
