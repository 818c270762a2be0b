"""P4 end to end, as `agent-slo p4` runs it, on the suite's managed vLLM behind its gateway: the engine profiled and its
step model fitted, the length predictor trained on a run over train-split tasks, FCFS and SJF runs of BFCL requests,
the P4 table and figures, the simulator replaying both runs, the what-if table and the operating point for P2."""
import json, subprocess, sys
from pathlib import Path
import httpx, pandas as pd, pytest

from agent_slo.core.config import clean_env
from agent_slo.core.records import read_records
from conftest import ROOT

def test_p4_two_policies(tmp_path, vllm_gateway):
    agg, figs = tmp_path/'agg', tmp_path/'figs'
    n_before = len(read_records(vllm_gateway.records)) if vllm_gateway.records.exists() else 0
    params = ['categories=["simple_python"]', 'train_limit=8', 'load_limit=6', 'rates=[2.0]', 'seeds=[0]', 'policies=["fcfs","sjf"]',
              'knob_rates=[2.0]', 'prefix_repeats=0', 'profile_prompts=[64,512]', 'profile_batches=[1,2]', 'profile_reps=1', 'whatif_rates=[4.0]',
              'whatif_replicas=[1,2]', 'whatif_n=40', f'gateway_url={vllm_gateway.base_url}', f'out_dir={tmp_path/"runs"}',
              f'aggregate_dir={agg}', f'figures_dir={figs}']
    try:
        r = subprocess.run([str(Path(sys.executable).parent/'agent-slo'), 'p4', '--no-render', '--out', str(tmp_path/'p4'),
                            *[a for p in params for a in ('-p', p)]], cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=1200)
    finally:   # the suite's gateway goes back to FCFS for the tests after this one
        httpx.put(vllm_gateway.base_url.removesuffix('/v1') + '/v1/scheduler', json={'policy': 'fcfs'}, timeout=30)
    assert r.returncode == 0, r.stderr[-4000:]
    t = pd.read_csv(agg/'p4_table.csv')
    assert set(t['policy']) == {'fcfs', 'sjf'} and (t['n'] == 6).all() and (t['e2e_s_p95'] > 0).all(), t
    assert ((t['attainment_e2e8_lo'] <= t['attainment_e2e8']) & (t['attainment_e2e8'] <= t['attainment_e2e8_hi'])).all()
    val = pd.read_csv(agg/'p4_sim_validation.csv')
    assert set(val['policy']) == {'fcfs', 'sjf'} and len(val) == 2*6 and val['rel_error'].notna().all() and (val['sim_s'] > 0).all()
    pred = json.loads((agg/'p4_predictor.json').read_text())['kendall_tau']
    assert pred['n'] == 6 and -1 <= pred['tau'] <= 1
    op = json.loads((agg/'p4_operating_point.json').read_text())
    assert op['policy'] in ('fcfs', 'sjf') and set(op['tail_penalties']) == {'over_2x_slo_rate', 'refused_rate', 'e2e_p99_over_slo'}
    wi = pd.read_csv(agg/'p4_whatif.csv')
    assert set(wi['profile']) == {'this CPU (measured)', 'A100 (published)'} and set(wi['replicas']) == {1, 2}
    for name in ('p4_tail', 'p4_goodput', 'p4_knobs', 'p4_sim'):
        for ext in ('png', 'pdf'): assert (figs/f'{name}.{ext}').stat().st_size > 5000, name
    # the gateway itself ranked the SJF run: its records carry the policy and the predicted tokens as the priority
    sjf = [x for x in read_records(vllm_gateway.records)[n_before:] if x.get('policy') == 'sjf' and x['error_type'] is None]
    assert len(sjf) == 6 and all(x['priority'] == round(x['predicted_tokens']) and 1 <= x['predicted_tokens'] <= 128 for x in sjf)
