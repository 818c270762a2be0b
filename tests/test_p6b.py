"""P6b end to end, as `agent-slo p6b` runs it: the three risk models and the uplift model on their locked splits, a short
PPO-Lagrangian run against the baselines on held-out cohorts, the tables, the figures and the rendered paper draft."""
import json, subprocess, sys
from pathlib import Path
import pandas as pd

from agent_slo.core.config import clean_env
from conftest import ROOT

def test_p6b_tiny(tmp_path):
    agg, figs = tmp_path/'agg', tmp_path/'figs'
    params = ['overrides={"seeds": [0, 1], "timesteps": 8192, "n_envs": 2, "eval_episodes": 2, "ts_warmup_episodes": 2, "ppo": {"n_steps": 1024, "batch_size": 256, "n_epochs": 2}}',
              f'artifacts_root={tmp_path/"artifacts"}', f'aggregate_dir={agg}', f'figures_dir={figs}']
    r = subprocess.run([str(Path(sys.executable).parent/'agent-slo'), 'p6b', '--out', str(tmp_path/'p6b'), *[a for p in params for a in ('-p', p)]],
                       cwd=ROOT, env={**clean_env(), 'WANDB_MODE': 'offline'}, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-4000:]
    risk = pd.read_csv(agg/'p6b_risk.csv').set_index('model')
    assert risk.loc['churn', 'auc_cal'] > 0.78 and risk.loc['acceptance', 'auc_cal'] > 0.65 and (risk['ece_cal'] < 0.05).all()
    assert risk.loc['acceptance (with duration, leaks)', 'auc_cal'] > risk.loc['acceptance', 'auc_cal']      # the leak shows
    pol = pd.read_csv(agg/'p6b_policies.csv')
    assert set(pol['policy']) == {'propensity 10%', 'thompson', 'uplift tree', 'ppo-lagrangian', 'no offers', 'oracle greedy'} and (pol['seeds'] == 2).all()
    base = pol[pol.policy.isin(['propensity 10%', 'thompson', 'uplift tree', 'no offers', 'oracle greedy'])]
    assert (base['violations'] == 0).all()                   # the baselines only make feasible offers
    vb = json.loads((agg/'p6b_versus_best.json').read_text())
    assert vb['best_baseline'] in {'propensity 10%', 'thompson', 'uplift tree'} and len(vb['exit']) == 4
    upl = pd.read_csv(agg/'p6b_uplift.csv')               # observed uplifts carry their intervals (Newcombe)
    for h in ('top', 'bottom'): assert ((upl[f'{h}_half_uplift_lo'] < upl[f'{h}_half_uplift']) & (upl[f'{h}_half_uplift'] < upl[f'{h}_half_uplift_hi'])).all(), upl
    curves = pd.read_csv(agg/'p6b_curves.csv')
    assert set(curves['seed']) == {0, 1} and (curves['lambda'] >= 0).all()
    for name in ('p6b_risk_models', 'p6b_learning_curves', 'p6b_policies'):
        for ext in ('png', 'pdf'): assert (figs/f'{name}.{ext}').stat().st_size > 5000, name
    assert (tmp_path/'p6b'/'paper'/'p6_decision.pdf').stat().st_size > 10_000
    assert (tmp_path/'p6b'/'policies'/'seed0'/'POLICY.json').exists()
