"POST /decide on a real gateway on loopback: a freshly trained decision policy and its baseline, both logged; FORCE_BASELINE; bad requests; a tampered policy."
import json
import httpx, numpy as np, pandas as pd, pytest
from agent_slo.risk.decision import save_policy, train_ppo_lagrangian
from agent_slo.risk.env import OBS_FIELDS, RetentionConfig
from agent_slo.serve.gateway import LocalServer

@pytest.fixture(scope='module')
def policy_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    pool = pd.DataFrame({'churn': rng.uniform(0, 0.6, 300), 'accept': rng.uniform(0, 0.4, 300), 'persuasion': rng.normal(0.1, 0.2, 300), 'mrr': rng.uniform(20, 110, 300)})
    model, _, _ = train_ppo_lagrangian(pool, RetentionConfig(customers=40, periods=2), seed=0, timesteps=1024, n_envs=1, ppo={'n_steps': 512, 'batch_size': 128, 'n_epochs': 1})
    d = tmp_path_factory.mktemp('policy')
    save_policy(model, d, {'seed': 0, 'levels': [0, 5, 10, 20], 'baseline': {'policy': 'propensity 10%', 'threshold': 0.4, 'action': 2}})
    return d

def customer(churn=0.7, **kw):
    return {'customer_id': 'c1', 'features': {**dict(zip(OBS_FIELDS, [churn, 0.1, 0.2, 1.0, 0.0, 0.0, 0.25, 0.5, 0.8, 0.5])), **kw}}

def serve(tmp_path, policy, **env):
    return LocalServer({'AGENT_SLO_THREADS': 1, 'AGENT_SLO_DECISION_POLICY': str(policy), 'AGENT_SLO_DECIDE_LOG': str(tmp_path/'decisions.jsonl'),
                        'AGENT_SLO_TUNER_DIR': str(tmp_path/'tuner'), **env}, log_path=tmp_path/'serve.log')

def test_decide_logs_both_arms(tmp_path, policy_dir):
    with serve(tmp_path, policy_dir) as gw:
        url = gw.base_url.removesuffix('/v1')
        r = httpx.post(f'{url}/decide', json=customer(), timeout=60)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out['arm'] == 'learned' and out['offer_pct'] == out['learned_offer_pct'] and out['baseline_offer_pct'] == 10
        assert httpx.post(f'{url}/decide', json=customer(churn=0.1), timeout=60).json()['baseline_offer_pct'] == 0
        bad = httpx.post(f'{url}/decide', json={'customer_id': 'c2', 'features': {'churn': 0.5}}, timeout=60)
        assert bad.status_code == 400 and 'missing' in bad.json()['error']['message']
        extra = httpx.post(f'{url}/decide', json=customer(colour=1.0), timeout=60)
        assert extra.status_code == 400 and 'unknown feature' in extra.json()['error']['message']
        assert httpx.post(f'{url}/decide', json={'features': {}}, timeout=60).status_code in (400, 422)
        assert gw.health()['status'] in ('ok', 'degraded')      # still serving after bad input
    rows = [json.loads(l) for l in (tmp_path/'decisions.jsonl').read_text().splitlines()]
    assert len(rows) == 2 and {r['customer_id'] for r in rows} == {'c1'} and all({'learned_offer_pct', 'baseline_offer_pct'} <= set(r) for r in rows)

def test_force_baseline_and_tampered_policy(tmp_path, policy_dir):
    with serve(tmp_path, policy_dir, FORCE_BASELINE='1') as gw:
        out = httpx.post(gw.base_url.removesuffix('/v1') + '/decide', json=customer(), timeout=60).json()
        assert out['arm'] == 'baseline' and out['offer_pct'] == 10 and out['force_baseline'] is True
    bad = tmp_path/'bad'; bad.mkdir()
    (bad/'POLICY.json').write_text((policy_dir/'POLICY.json').read_text()); (bad/'policy.safetensors').write_bytes(b'tampered')
    with serve(tmp_path, bad) as gw:
        r = httpx.post(gw.base_url.removesuffix('/v1') + '/decide', json=customer(), timeout=60)
        assert r.status_code == 503 and 'changed since' in r.json()['error']['message']
