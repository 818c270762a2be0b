"""The auto-tuner through the real gateway on loopback: POST /tuner/evaluate runs a batch on a configuration on the embedded
model and answers F, R, latency, cost and the reward; configuration rollouts on the suite's managed vLLM, a canary whose
candidate (constrained decoding) is promoted by the reward's CI, and one whose candidate (free decoding) breaches the validity
gate and is rolled back; every routing decision is logged with its propensity."""
import httpx, pytest

from agent_slo.core.records import read_jsonl, read_records
from agent_slo.serve.rollout import canary_bucket
from agent_slo.tune.objective import load_objective

AUTH = {'Authorization': 'Bearer test-key'}
K3 = {'variant': 'hybrid', 'w': 0.5, 'k': 3, 'template': 'json-v1'}

def test_tuner_evaluate_embedded(server):
    url = server.base_url.rsplit('/v1', 1)[0]
    with httpx.Client(base_url=url, headers=AUTH, timeout=600) as c:
        r = c.post('/tuner/evaluate', json={'config': {**K3, 'constrained': True}, 'tasks': ['simple_python_0', 'simple_python_1']})
        assert r.status_code == 200, r.text
        m = r.json()
        assert m['n'] == 2 and m['task_ids'] == ['simple_python_0', 'simple_python_1']
        assert 0 <= m['F'] <= 1 and 0 <= m['R'] <= 1 and m['p95_s'] > 0 and m['prompt_tokens'] > 0
        ob = load_objective()
        assert abs(m['reward'] - (ob.alpha*m['F'] + ob.beta*m['R'] - ob.gamma*m['L'] - ob.delta*m['C'] - ob.lam*m['P'])) < 1e-9
        recs = read_records(server.tuner_dir/'records.jsonl')
        assert len(recs) == 2 and {x['config']['tools']['k'] for x in recs} == {3} and {x['engine_id'] for x in recs} == {'serve:embedded'}
        assert read_jsonl(server.tuner_dir/'evaluations.jsonl')[-1]['config_hash'] == m['config_hash']
        again = c.post('/tuner/evaluate', json={'config': {**K3, 'constrained': True}, 'tasks': ['simple_python_0', 'simple_python_1']}).json()
        assert again['F'] == m['F'] and len(read_records(server.tuner_dir/'records.jsonl')) == 2    # the same batch again: a replay of its records
        bad = c.post('/tuner/evaluate', json={'config': K3, 'tasks': ['simple_python_99999']})
        assert bad.status_code == 404 and 'simple_python_99999' in bad.json()['error']['message']
        assert c.post('/tuner/evaluate', json={'config': {**K3, 'k': 40}, 'tasks': ['simple_python_0']}).status_code in (400, 422)
        unk = c.post('/tuner/evaluate', json={'config': {**K3, 'kk': 3}, 'tasks': ['simple_python_0']})   # an unknown key is an error, not dropped
        assert unk.status_code == 400 and 'config.kk' in unk.json()['error']['message']
        nog = c.post('/tuner/evaluate', json={'config': K3, 'group': 'nope'})
        assert nog.status_code == 404 and 'unknown group' in nog.json()['error']['message']
        assert c.post('/tuner/evaluate', json={'config': K3}).status_code == 404              # no batch named
    assert httpx.post(url + '/tuner/evaluate', json={'config': K3, 'tasks': ['simple_python_0']}).status_code == 401

def rid_for(task:str, arm:str, percent:float=50.0) -> str:
    "A request id for `task` that the gateway's hash routes to `arm` at this canary share (clients choose their ids; the gateway hashes them)."
    return next(f'{task}.{j}' for j in range(1000) if (canary_bucket(f'{task}.{j}') < percent) == (arm == 'candidate'))

def _canary(gw, baseline:dict, candidate:dict, plan:list[tuple[str, str]]) -> tuple[dict, list[dict]]:
    "Start a canary of `candidate` over `baseline` and send `plan`'s (task, arm) requests in turn until it ends; (the end event, the answers)."
    url = gw.base_url.rsplit('/v1', 1)[0]
    with httpx.Client(base_url=url, timeout=600) as c:
        r = c.put('/tuner/rollout', json={'baseline': baseline, 'candidate': candidate, 'mode': 'canary', 'percent': 50,
                                          'batch_size': 3, 'promote_after': 2, 'max_batches': 4})
        assert r.status_code == 200 and r.json()['mode'] == 'canary', r.text
        answers = []
        for t, arm in plan:
            a = c.post('/tuner/ask', json={'task_id': t, 'request_id': rid_for(t, arm)})
            assert a.status_code == 200, a.text
            assert a.json()['arm'] == arm and a.json()['propensity'] == 0.5            # routed by the id's hash, logged with the canary share
            answers.append(a.json())
            if a.json()['event']: return a.json()['event'], answers
        raise AssertionError(f"the canary did not end after {len(plan)} requests: {c.get('/tuner/rollout').json()}")

@pytest.mark.slow   # screening tasks until six are right, then two canary batches on vLLM: about 6 min on 2 cores; rollback and the adapter canary's promotion run by default
def test_config_canary_promotes(vllm_gateway):
    """Free decoding as the baseline, constrained decoding as the candidate, both asked the tasks the candidate is known to answer
    right (screened with POST /tuner/evaluate): the reward is up with a 95% CI after two clean batches, and it is promoted."""
    url = vllm_gateway.base_url.rsplit('/v1', 1)[0]
    right, asked = [], 0
    for start in range(0, 48, 6):                                                   # screen six at a time until six are right
        m = httpx.post(url + '/tuner/evaluate', json={'config': {**K3, 'constrained': True}, 'tasks': [f'simple_python_{i}' for i in range(start, start + 6)]}, timeout=1200).json()
        right = [x['task_id'] for x in read_records(vllm_gateway.tuner_dir/'records.jsonl') if x['config_hash'] == m['config_hash'] and x['success']]
        asked = start + 6
        if len(right) >= 6: break
    assert len(right) >= 6, f"the candidate answered only {len(right)} of {asked} screening tasks right"
    plan = [(t, arm) for t in right[:6] for arm in ('candidate', 'baseline')]    # both arms on the same tasks
    ev, answers = _canary(vllm_gateway, {**K3, 'constrained': False}, {**K3, 'constrained': True}, plan)
    assert ev['event'] == 'promote', ev
    assert ev['reason'].startswith('reward up') and ev['last']['lo'] > 0 and ev['batches'] == 2
    state = httpx.get(url + '/tuner/rollout').json()
    assert state['mode'] == 'off' and state['baseline']['constrained'] is True
    routes = [d for d in read_jsonl(vllm_gateway.tuner_dir/'decisions.jsonl') if d['event'] == 'route' and d['rollout'] == ev['rollout']]
    assert [d['request_id'] for d in routes] == [a['request_id'] for a in answers] and all(d['propensity'] == 0.5 for d in routes)

def test_config_canary_rolls_back(vllm_gateway):
    "Free decoding as the candidate: its first batch of three breaches the validity gate, and it is rolled back."
    plan = [(f'simple_python_{i}', 'candidate') for i in range(40, 46)]
    ev, answers = _canary(vllm_gateway, {**K3, 'constrained': True}, {**K3, 'constrained': False}, plan)
    assert ev['event'] == 'rollback' and 'validity' in ev['reason'] and ev['batches'] == 1, ev
    assert len(answers) == 3
    state = httpx.get(vllm_gateway.base_url.rsplit('/v1', 1)[0] + '/tuner/rollout').json()
    assert state['mode'] == 'off' and state['baseline']['constrained'] is True
