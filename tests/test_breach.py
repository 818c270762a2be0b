"""Breach-risk admission on a real gateway on loopback: SLO-breach models trained on the shipped load records (the locked
config, and the same records under a 2 s SLO that an idle CPU engine often misses), a request turned away with its
P(breach) in the 429, the same request admitted and answered by the embedded model under a looser bar, and a gateway
without a model or with a tampered one saying so while it keeps serving."""
import shutil
import httpx, pytest
from agent_slo.agent.toolcall import AgentConfig, request_for
from agent_slo.core.config import project_path
from agent_slo.risk.breach import BreachConfig, breach_scorer, train_breach
from agent_slo.risk.models import risk_dir
from agent_slo.serve.gateway import ChatBody, LocalServer
from agent_slo.sim.policies import Scheduler
from agent_slo.tasks.bfcl import subset

@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('artifacts')
    cfg = BreachConfig.from_yaml(project_path('configs/risk/breach.yaml'))
    _, locked = train_breach(cfg, root=root)
    strict = cfg.with_overrides(name='breach-strict', slo_s=2.0, split_fingerprint=None)
    _, m2 = train_breach(strict, root=root)
    return {'root': root, 'locked': locked, 'strict': risk_dir('breach-strict', root), 'strict_metrics': m2}

def body(task, max_tokens=128) -> dict:
    req = request_for(task, AgentConfig(max_tokens=max_tokens))
    return {'model': 'default', 'messages': req.messages, 'max_tokens': max_tokens, 'temperature': 0, 'metadata': {'category': task.category},
            'response_format': {'type': 'json_schema', 'json_schema': {'name': 'calls', 'schema': req.json_schema}}}

def serve(tmp_path, **env):
    return LocalServer({'AGENT_SLO_THREADS': 1, 'AGENT_SLO_TUNER_DIR': str(tmp_path/'tuner'), **env}, log_path=tmp_path/'serve.log')

def test_locked_model_ranks_breaches(models):
    m = models['locked']
    assert m['n'] >= 80 and 0 < m['positives'] < m['n'], m
    assert m['auc_cal_lo'] > 0.5, f"the breach model ranks no better than chance: AUC {m['auc_cal']:.3f} [{m['auc_cal_lo']:.3f}, {m['auc_cal_hi']:.3f}]"
    assert 0 <= m['ece_cal'] < 0.2, m['ece_cal']

def test_gateway_turns_away_a_risky_request(tmp_path, models):
    score = breach_scorer(models['strict'])
    tasks = subset(['simple_python', 'parallel'], 6, split='test')
    # P(breach) at an empty queue, by the scheduler's own path from the request the gateway will parse
    p0 = {t.id: Scheduler('fcfs', risk=score, risk_max=1.0).decide(ChatBody(**body(t)).to_request(), 0.0).breach_p for t in tasks}
    task = max(tasks, key=lambda t: p0[t.id])
    assert p0[task.id] > 0, f"no request at an empty queue has any breach risk under a 2 s SLO: {p0}"
    with serve(tmp_path, AGENT_SLO_BREACH_MODEL=str(models['strict'])) as gw:
        url = gw.base_url.removesuffix('/v1')
        r = httpx.put(f'{url}/v1/scheduler', json={'policy': 'edf', 'slo_e2e_s': 2.0, 'breach_max': p0[task.id]/2}, timeout=60)
        assert r.status_code == 200, r.text
        info = r.json()
        assert info['risk']['name'] == 'breach-strict' and info['risk_max'] == pytest.approx(p0[task.id]/2)
        refused = httpx.post(f'{url}/v1/chat/completions', json=body(task), timeout=120)
        assert refused.status_code == 429, refused.text
        msg = refused.json()['error']['message']
        assert f"P(SLO breach) {p0[task.id]:.2f} exceeds" in msg and '0 requests in flight' in msg, msg
        assert httpx.put(f'{url}/v1/scheduler', json={'policy': 'edf', 'slo_e2e_s': 2.0, 'breach_max': 1.0}, timeout=60).status_code == 200
        ok = httpx.post(f'{url}/v1/chat/completions', json=body(task, max_tokens=48), timeout=300)
        assert ok.status_code == 200, ok.text
        assert ok.json()['choices'][0]['message']['content'].lstrip().startswith('{')
        assert httpx.get(f'{url}/v1/scheduler', timeout=30).json()['policy'] == 'edf'

def test_gateway_without_or_with_a_tampered_model(tmp_path, models):
    with serve(tmp_path) as gw:
        r = httpx.put(gw.base_url.removesuffix('/v1') + '/v1/scheduler', json={'policy': 'edf', 'slo_e2e_s': 8, 'breach_max': 0.5}, timeout=60)
        assert r.status_code == 400 and 'needs a breach model' in r.json()['error']['message'], r.text
    bad = tmp_path/'tampered'; shutil.copytree(models['strict'], bad)
    victim = next(f for f in sorted(bad.iterdir()) if f.suffix == '.json' and f.name != 'METADATA.json')
    victim.write_text(victim.read_text().replace('0', '1', 1))
    with serve(tmp_path, AGENT_SLO_BREACH_MODEL=str(bad)) as gw:
        url = gw.base_url.removesuffix('/v1')
        r = httpx.put(f'{url}/v1/scheduler', json={'policy': 'edf', 'slo_e2e_s': 8, 'breach_max': 0.5}, timeout=60)
        assert r.status_code == 400 and 'does not load' in r.json()['error']['message'], r.text
        assert httpx.put(f'{url}/v1/scheduler', json={'policy': 'fcfs'}, timeout=60).status_code == 200   # still serving, unchanged otherwise
        assert gw.health()['status'] in ('ok', 'degraded')
