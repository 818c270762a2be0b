"""Shadow, canary, burn-rate rollback and feedback through the real gateway on loopback, with real adapters on the embedded
model: a schema-breaking adapter is shadowed, then canaried, and rolled back by its alert within the configured window, with
no 5xx and no torn answer (every answer equals the reference output of the model it names); a harmless one is canaried
by request-id hash, forced back to the baseline, and promoted; feedback items survive `kill -9` without loss or duplicates."""
import json, signal, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx, jsonschema, openai, pytest

from agent_slo.core.artifacts import AdapterRegistry
from agent_slo.core.config import load_settings
from agent_slo.core.records import read_records, read_jsonl
from agent_slo.engine.base import ChatRequest
from agent_slo.engine.hf import HFEngine, random_adapter
from agent_slo.serve.gateway import ServerThread, LocalServer
from agent_slo.serve.rollout import canary_bucket

SCHEMA = {'type': 'object', 'properties': {'city': {'type': 'string'}}, 'required': ['city'], 'additionalProperties': False}
QS = ['What is the capital of France?', 'Name a big city in Japan.', 'Which city hosts the Colosseum?', 'Where is Big Ben?']
FORMAT = {'type': 'json_schema', 'json_schema': {'name': 'city', 'schema': SCHEMA}}
MAX_TOKENS = 20
ALERTS = """alerts:
  interval_s: 0.5
  rules:
    - {name: schema, sli: schema, objective: 0.9, for_s: 2, min_events: 3, windows: [{long_s: 30, short_s: 15, burn: 3}]}
    - {name: errors, sli: error, objective: 0.99, for_s: 2, min_events: 3, windows: [{long_s: 30, short_s: 15, burn: 10}]}
"""

def _fits(text:str) -> bool:
    try: jsonschema.validate(json.loads(text), SCHEMA); return True
    except (ValueError, jsonschema.ValidationError): return False

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp('rollout')
    reg = AdapterRegistry(d/'art')
    (d/'alerts.yaml').write_text(ALERTS)
    env = {'AGENT_SLO_ARTIFACTS': str(d/'art'), 'AGENT_SLO_ALERTS': str(d/'alerts.yaml'), 'AGENT_SLO_THREADS': '2',
           'AGENT_SLO_MAX_BATCH': '1'}   # one request per forward pass: answers comparable token for token with the references asked alone
    base = HFEngine(settings=load_settings(env=env))
    # a LoRA with large random weights, whose answer to every question breaks the schema (most run on past the token cap).
    # Which random draw does that depends on the library versions' initialisation, so the first seed that does is taken.
    for seed in range(8):
        bad = random_adapter(d/f'bad-{seed}', alpha=512, r=2, targets=('q_proj', 'k_proj', 'v_proj', 'o_proj'), seed=seed)
        eng = HFEngine(settings=load_settings(env=env), adapter=str(bad))
        outs = [eng.generate([ChatRequest([{'role': 'user', 'content': q}], max_tokens=MAX_TOKENS, temperature=0, json_schema=SCHEMA)])[0].text for q in QS]
        if not any(_fits(o) for o in outs): break
    else: pytest.fail("none of 8 random adapters breaks the schema on every question")
    reg.register('bad', bad, {'purpose': 'breaks the schema', 'seed': seed}, make_current=False)
    reg.register('good', random_adapter(d/'good', alpha=1, r=2), {'purpose': 'a harmless candidate'}, make_current=False)
    refs = {}
    for adapter in (None, 'bad@v1', 'good@v1'):   # the reference answer of each model, asked alone
        eng = base if adapter is None else HFEngine(settings=load_settings(env=env), adapter=adapter)
        for q in QS:
            c = eng.generate([ChatRequest([{'role': 'user', 'content': q}], max_tokens=MAX_TOKENS, temperature=0, json_schema=SCHEMA)])[0]
            refs[c.model_id, q] = c.text
    return d, reg, env, base, refs

def _ask(client, q, rid):
    raw = client.chat.completions.with_raw_response.create(model='default', messages=[{'role': 'user', 'content': q}], max_tokens=MAX_TOKENS,
                                                            temperature=0, response_format=FORMAT, extra_headers={'x-request-id': rid})
    r = raw.parse()
    return {'rid': rid, 'q': q, 'model': r.model, 'text': r.choices[0].message.content, 'status': raw.status_code, 'id': r.id, 't': time.time()}

def _load(srv, until, prefix, workers=2, limit=60):
    "Requests from `workers` threads until `until()` holds (checked between requests) or `limit` are sent."
    client = openai.OpenAI(base_url=srv.base_url, api_key='none', max_retries=0, timeout=120)
    out, n, lock = [], iter(range(limit)), threading.Lock()
    def worker():
        while not until():
            with lock: i = next(n, None)
            if i is None: return
            out.append(_ask(client, QS[i % len(QS)], f'{prefix}-{i}'))
    with ThreadPoolExecutor(workers) as ex: list(ex.map(lambda _: worker(), range(workers)))
    return out

def _rollout(srv): return httpx.get(srv.base_url.rsplit('/v1', 1)[0] + '/v1/rollout', timeout=10).json()
def _put(srv, path, body): return httpx.put(srv.base_url.rsplit('/v1', 1)[0] + path, json=body, timeout=300)
def _post(srv, path, body): return httpx.post(srv.base_url.rsplit('/v1', 1)[0] + path, json=body, timeout=300)

def test_bad_adapter_shadowed_then_canaried_is_rolled_back(setup):
    d, reg, env, base, refs = setup
    s = load_settings(env={**env, 'AGENT_SLO_SERVE_RECORDS': str(d/'bad.jsonl')})
    with ServerThread(base, s) as srv:
        # shadow: users get the baseline's answers; the candidate's are recorded beside them, linked
        r = _put(srv, '/v1/rollout', {'candidate': {'adapter': 'bad'}, 'mode': 'shadow'})
        assert r.status_code == 404 and 'no current version' in r.json()['error']['message']   # a bare name needs a current version
        assert _put(srv, '/v1/rollout', {'candidate': {'adapter': '../bad'}, 'mode': 'shadow'}).status_code == 400   # never a path
        assert _put(srv, '/v1/rollout', {'candidate': {'adapter': 'bad@v1'}, 'mode': 'shadow'}).status_code == 200
        shadow = _load(srv, lambda: _rollout(srv)['mode'] == 'off', 'sh', limit=40)
        ro = _rollout(srv)
        assert ro['mode'] == 'off' and ro['history'][-1]['event'] == 'rollback' and 'alert schema fired on shadow' in ro['history'][-1]['reason'], ro['history']
        assert {a['model'] for a in shadow} == {base.model_id}
        # canary: half the requests by hash; the schema alert fires and rolls it back
        assert _put(srv, '/v1/rollout', {'candidate': {'adapter': 'bad@v1'}, 'mode': 'canary', 'canary_percent': 50}).status_code == 200
        canary = _load(srv, lambda: _rollout(srv)['mode'] == 'off', 'ca', limit=60)
        ro = _rollout(srv)
        after = _load(srv, lambda: False, 'after', limit=4)
        metrics = httpx.get(srv.base_url.rsplit('/v1', 1)[0] + '/metrics').text
    time.sleep(0.5)
    answers = shadow + canary + after
    assert all(a['status'] == 200 for a in answers)   # no 5xx through two rollbacks
    torn = [a for a in answers if a['text'] != refs[a['model'], a['q']]]
    assert not torn, torn[:3]                            # every answer is the reference answer of the model it names
    bad_model = f'{base.model_id}+bad@v1'
    rollback = next(e for e in reversed(ro['history']) if e['event'] == 'rollback')
    assert 'alert schema fired on canary' in rollback['reason'] and rollback['registry'] == 'bad: none'
    # the alert's promise, from the answers alone. Every canary answer of the bad model breaks the schema, so the rule's
    # condition at time x is "the 15 s short window holds min_events = 3 of them"; the evaluator looks every 0.5 s.
    ends = sorted(a['t'] for a in canary if a['model'] == bad_model)
    held = lambda x: sum(x - 15 < e <= x for e in ends) >= 3
    grid = [ends[0] + 0.05 * i for i in range(int((rollback['at'] + 1 - ends[0]) / 0.05))]
    first = next(x for x in grid if held(x))
    assert rollback['at'] >= first + 2 - 0.5 - 0.5, (rollback['at'] - first)      # never before the condition could hold for for_s
    steady = next((x for x in grid if all(held(y) for y in grid if x - (2 + 2 * 0.5) <= y <= x)), None)
    if steady is not None: assert rollback['at'] <= steady + 0.5, (rollback['at'] - steady)   # once it held steadily for for_s (+2 ticks), it fired
    assert {a['model'] for a in after} == {base.model_id}
    hist = reg.history('bad')
    assert [h['version'] for h in hist] == [None, None] and all(h['reason'].startswith('rolled back bad@v1: alert schema fired on') for h in hist)
    assert 'agent_slo_rollout_transitions_total{event="rollback"} 2.0' in metrics and 'agent_slo_rollout_mode{mode="off"} 1.0' in metrics
    recs = read_records(d/'bad.jsonl')
    user = {r['task_id']: r for r in recs if r['arm'] != 'shadow'}
    sh = [r for r in recs if r['arm'] == 'shadow']
    assert sh and all(r['parent_id'] in user and r['model_id'] == bad_model and not r['schema_valid'] for r in sh)
    q_of = {a['rid']: a['q'] for a in answers}
    assert all(r['text'] == refs[bad_model, q_of[r['parent_id']]] for r in sh)
    assert all(r['schema_valid'] for r in user.values() if r['model_id'] == base.model_id)
    can = [r for r in recs if r['arm'] == 'canary']
    assert can and all(r['propensity'] == 0.5 and canary_bucket(r['task_id']) < 50 for r in can)

def test_canary_by_hash_force_baseline_and_promotion(setup):
    d, reg, env, base, refs = setup
    s = load_settings(env={**env, 'AGENT_SLO_SERVE_RECORDS': str(d/'good.jsonl')})
    good = f'{base.model_id}+good@v1'
    with ServerThread(base, s) as srv:
        assert _put(srv, '/v1/rollout', {'candidate': {'adapter': 'good@v1'}, 'mode': 'canary', 'canary_percent': 30}).status_code == 200
        assert _put(srv, '/v1/rollout', {'candidate': {'adapter': 'good@v1'}, 'mode': 'canary'}).status_code == 409   # one rollout at a time
        split = _load(srv, lambda: False, 'g', limit=12)
        assert _put(srv, '/v1/rollout/force_baseline', {'on': True}).json()['force_baseline']
        forced = _load(srv, lambda: False, 'g', limit=12)          # the same ids: all on the baseline now
        _put(srv, '/v1/rollout/force_baseline', {'on': False})
        ro = _post(srv, '/v1/rollout/promote', {'reason': 'no alert in the canary'}).json()
        promoted = _load(srv, lambda: False, 'p', limit=4)
        assert _post(srv, '/v1/rollout/rollback', {}).status_code == 409   # nothing to roll back
    for a in split: assert a['model'] == (good if canary_bucket(a['rid']) < 30 else base.model_id), a
    assert {a['model'] for a in split} == {good, base.model_id}
    assert {a['model'] for a in forced} == {base.model_id}
    assert ro['mode'] == 'off' and ro['baseline']['adapter'] == 'good@v1' and {a['model'] for a in promoted} == {good}
    assert all(a['text'] == refs[a['model'], a['q']] for a in split + forced + promoted)
    assert reg.current('good') == 'v1' and reg.history('good')[-1]['reason'] == 'promoted after canary: no alert in the canary'
    assert [e['event'] for e in ro['history']] == ['start-canary', 'force-baseline', 'release-baseline', 'promote']

def test_feedback_validation_idempotency_and_kill(setup, tmp_path):
    d, reg, env, base, refs = setup
    fb = tmp_path/'online_feedback'
    senv = {**env, 'AGENT_SLO_FEEDBACK_DIR': str(fb), 'AGENT_SLO_MAX_QUEUE': '32'}
    gw = LocalServer(senv, log_path=tmp_path/'gw1.log')
    try:
        client = openai.OpenAI(base_url=gw.base_url, api_key='none', max_retries=0, timeout=60)
        ids = [client.chat.completions.create(model='default', messages=[{'role': 'user', 'content': q}], max_tokens=8, temperature=0).id for q in QS[:3]]
        url = gw.base_url.rsplit('/v1', 1)[0] + '/feedback'
        bad = [b'{"feedback_id": "x", ', json.dumps({'feedback_id': 'x', 'response_id': ids[0], 'rating': 5}).encode(),
               json.dumps({'feedback_id': 'x', 'response_id': ids[0], 'rating': 1, 'stars': 5}).encode(),
               json.dumps({'feedback_id': 'x y', 'response_id': ids[0], 'rating': 1}).encode()]
        for body in bad:
            r = httpx.post(url, content=body, headers={'content-type': 'application/json'})
            assert r.status_code == 400 and r.json()['error']['message'], r.text
        r = httpx.post(url, json={'feedback_id': 'x', 'response_id': 'chatcmpl-nosuch', 'rating': 1})
        assert r.status_code == 404 and 'was not served by this gateway' in r.json()['error']['message']
        item = lambda i: {'feedback_id': f'f{i}', 'response_id': ids[i % 3], 'rating': [1, -1, 0.5][i % 3], 'dimensions': {'empathy': 0.25},
                          **({'corrected': '{"city": "Paris"}'} if i % 3 == 1 else {})}
        assert httpx.post(url, json=item(0)).status_code == 201
        assert httpx.post(url, json=item(0)).json()['status'] == 'duplicate'
        r = httpx.post(url, json={**item(0), 'rating': -1})
        assert r.status_code == 409
        # many writers; kill -9 in the middle
        acked, lock = set(), threading.Lock()
        def send(i):
            try: r = httpx.post(url, json=item(i), timeout=10)
            except httpx.HTTPError: return
            if r.status_code in (200, 201):
                with lock: acked.add(i)
        with ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(send, i) for i in range(1, 400)]
            while len(acked) < 60: time.sleep(0.01)
            gw.proc.send_signal(signal.SIGKILL)
            for f in futs: f.result()
        gw.proc.wait(10)
    finally: gw.stop()
    assert 60 <= len(acked) < 399, len(acked)
    gw = LocalServer(senv, log_path=tmp_path/'gw2.log')   # restart on the same log: torn tail cut, ids known, responses known
    try:
        url = gw.base_url.rsplit('/v1', 1)[0] + '/feedback'
        status = {i: httpx.post(url, json=item(i), timeout=10).json()['status'] for i in range(0, 400)}
    finally: gw.stop()
    assert all(status[i] == 'duplicate' for i in acked | {0})        # acknowledged before the kill: on disk
    lines = read_jsonl(fb/'feedback.jsonl')
    got = [l['feedback_id'] for l in lines]
    assert len(got) == len(set(got)) == 400                              # none lost, none twice
    assert (fb/'feedback.jsonl').read_bytes().endswith(b'\n')
    one = next(l for l in lines if l['feedback_id'] == 'f1')
    assert one['response'] is not None and one['messages'][0]['content'] == QS[1] and one['corrected'] == '{"city": "Paris"}' and one['arm'] == 'baseline'

def test_reward_endpoint_scores_with_the_registered_heads(setup):
    "POST /reward: the registered scalar head and its vector head score answers, as the engine's scorer does; clear 4xx otherwise."
    from agent_slo.engine.reward import RewardHead, random_reward_head
    d, reg, env, base, refs = setup
    s = load_settings(env=env)
    msgs = [{'role': 'user', 'content': 'What is the capital of France?'}]
    with ServerThread(base, s) as srv:
        url = srv.base_url.rsplit('/v1', 1)[0] + '/reward'
        r = httpx.post(url, json={'messages': msgs, 'responses': ['Paris.']}, timeout=120)
        assert r.status_code == 404 and "no adapter named 'tool-rm'" in r.json()['error']['message'] and 'make train.rm' in r.json()['error']['message'], r.text
        reg.register('tool-rm', random_reward_head(d/'rm1'), {'stage': 'rm'})
        reg.register('tool-rm-vector', random_reward_head(d/'rm5', 5, seed=1), {'stage': 'rm', 'metrics': {'label_mean': [0.5, 0.3, 2.0, 90.0, 0.1], 'label_std': [0.5, 0.4, 1.0, 40.0, 0.2]}})
        r = httpx.post(url, json={'messages': msgs, 'responses': ['Paris.', 'London.']}, timeout=300)
        assert r.status_code == 200, r.text
        got = r.json()
        for body in ({'messages': msgs, 'responses': []}, {'messages': msgs, 'responses': ['x'], 'model': '../tool-rm'}, {'messages': [], 'responses': ['x']}):
            assert httpx.post(url, json=body).status_code == 400
        assert httpx.post(url, json={'messages': msgs, 'responses': ['x'], 'model': 'tool-rm@v7'}).status_code == 404
    assert got['reward_model'] == {'scalar': 'tool-rm@v1', 'vector': 'tool-rm-vector@v1'}
    assert list(got['scores'][0]['vector']) == ['r_schema', 'r_succ', 'L', 'C', 'D']
    sc, vec = RewardHead('tool-rm', s), RewardHead('tool-rm-vector', s)
    y1, y5 = sc.score(msgs, ['Paris.', 'London.']), vec.score(msgs, ['Paris.', 'London.'])
    for i in range(2):
        assert abs(got['scores'][i]['scalar'] - y1[i, 0]) < 1e-4
        assert max(abs(got['scores'][i]['vector'][k] - y5[i, j]) for j, k in enumerate(['r_schema', 'r_succ', 'L', 'C', 'D'])) < 1e-3
