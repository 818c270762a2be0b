"""The managed vLLM backend behind the gateway, for real: the suite's one vLLM (conftest `vllm_gateway`), started by
`agent-slo serve` with the priority scheduler and room for two sequences, so a few requests saturate it. It serves
schema-constrained output that validates, lets a high-priority request sent through the gateway overtake earlier
low-priority ones, answers 429 through the gateway when full and recovers, writes one record per request, and stops
cleanly with the gateway (this file runs last: its final test stops the shared vLLM)."""
import json, threading, time
import httpx, jsonschema, openai, psutil, pytest

from agent_slo.core.records import read_records
from agent_slo.engine.base import ChatRequest
from agent_slo.engine.client import OpenAIEngine
from agent_slo.core.config import load_settings
from conftest import VLLM_CAP

CITY = {'type': 'object', 'additionalProperties': False, 'required': ['city', 'country'],
        'properties': {'city': {'type': 'string', 'maxLength': 24}, 'country': {'type': 'string', 'maxLength': 24}}}
MODEL = 'SmolLM2-135M-Instruct'
SENT = {'streamed': 0, 'whole': 0}   # chat requests each test sent through the gateway
T0 = {}

@pytest.fixture(autouse=True, scope='module')
def _since(vllm_gateway):
    "When this module started using the shared gateway: other modules' requests came before."
    T0['t'] = time.time()

def test_managed_backend_serves_schema_constrained_output(vllm_gateway, vllm_url):
    h = vllm_gateway.health()
    b = h['backends'][0]
    assert h['status'] == 'ok' and b['kind'] == 'vllm' and b['healthy'] and b['priority'] and b['max_inflight'] == VLLM_CAP
    assert b['start_s'] > 0 and isinstance(b['compile_cache_warm'], bool) and psutil.pid_exists(b['pid'])
    eng = vllm_gateway.engine()
    assert eng.models()[0] == MODEL   # (adapters other tests loaded at runtime follow it)
    c = eng.complete(ChatRequest([{'role': 'user', 'content': 'Name a city and its country as JSON.'}], max_tokens=48, json_schema=CITY))
    jsonschema.validate(json.loads(c.text), CITY)
    assert b['knobs']['structured_backend'] == 'xgrammar' and b['knobs']['compact_json'] is True
    assert '\n' not in c.text and c.text == c.text.strip() and '  ' not in c.text, c.text   # no free whitespace in constrained JSON
    SENT['streamed'] += 1
    assert c.backend == 'vllm' and c.engine_id == 'serve:vllm'
    assert c.ttft_s > 0 and c.completion_tokens > 0 and c.prompt_tokens > 0 and len(c.t_chunks) > 1
    bare = OpenAIEngine(vllm_url, 'EMPTY', model=MODEL, settings=load_settings(env={'AOFW_PROVIDER': 'vllm'}))
    same = bare.complete(ChatRequest([{'role': 'user', 'content': 'Name a city and its country as JSON.'}], max_tokens=48, json_schema=CITY))
    assert same.text == c.text and same.backend is None   # greedy: the gateway relays vLLM's answer unchanged

@pytest.mark.parametrize('field, urgent, relaxed', [('priority', 0, 10), ('deadline_ms', 500, 60_000)])
def test_urgent_request_overtakes_through_the_gateway(vllm_gateway, field, urgent, relaxed):
    """With two sequences at a time and eight long requests queued, an urgent one sent after them finishes before most of them:
    `priority` reaches vLLM's scheduler as it is; `deadline_ms` reaches it as an absolute-deadline priority (EDF)."""
    client = openai.OpenAI(base_url=vllm_gateway.base_url, api_key='none', max_retries=0, timeout=300)
    done = {}
    def ask(name, value):
        client.chat.completions.create(model=MODEL, messages=[{'role': 'user', 'content': f'Write a long story about the number {name}.'}],
                                       max_tokens=64, temperature=0, extra_body={field: value, 'ignore_eos': True})
        done[name] = time.time()
    early = [threading.Thread(target=ask, args=(f'early{i}', relaxed)) for i in range(8)]
    for t in early: t.start(); time.sleep(0.02)
    time.sleep(0.3)
    late = threading.Thread(target=ask, args=('urgent', urgent)); late.start()
    for t in early + [late]: t.join(300)
    SENT['whole'] += 9
    assert len(done) == 9, done
    later = sum(done[f'early{i}'] > done['urgent'] for i in range(8))
    assert later >= 4, f"the urgent request ({field}={urgent}) finished ahead of only {later} of 8 earlier ones ({field}={relaxed})"

def test_429_through_the_gateway_then_recovers(vllm_gateway):
    n = VLLM_CAP + 6
    codes, headers = [None]*n, [None]*n
    def ask(i):
        r = httpx.post(f'{vllm_gateway.base_url}/chat/completions', timeout=300,
                       json={'model': MODEL, 'messages': [{'role': 'user', 'content': f'Tell a story {i}.'}], 'max_tokens': 48, 'ignore_eos': True})
        codes[i], headers[i] = r.status_code, r.headers
    ts = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
    for t in ts: t.start()
    for t in ts: t.join(300)
    SENT['whole'] += n
    assert sorted(set(codes)) == [200, 429], codes
    assert codes.count(429) >= n - VLLM_CAP - 1, codes    # (a request may finish before the last ones arrive)
    assert all(headers[i]['retry-after'] == '1' and headers[i]['x-agent-slo-backend'] == 'vllm' for i in range(n) if codes[i] == 429)
    c = vllm_gateway.engine().complete(ChatRequest([{'role': 'user', 'content': 'Say hi.'}], max_tokens=4))
    assert c.text and c.backend == 'vllm'
    SENT['streamed'] += 1
    assert vllm_gateway.health()['queue_depth'] == 0
    prom = httpx.get(vllm_gateway.health_url.replace('/healthz', '/metrics')).text
    assert f'agent_slo_backend_requests_total{{backend="vllm",status="429"}} {float(codes.count(429))}' in prom, prom

def test_runtime_lora_through_the_gateway(vllm_gateway, tmp_path):
    "POST /v1/adapters loads an adapter into the running vLLM beside the base model; requests name it by its model id."
    from agent_slo.engine.hf import random_adapter
    folder = random_adapter(tmp_path/'noisy', r=8, alpha=32, targets=('q_proj', 'v_proj'), seed=3)
    admin = lambda body: httpx.post(f'{vllm_gateway.base_url}/adapters', json=body, timeout=300)
    r = admin({'adapter': str(folder)})
    assert r.status_code == 200, r.text
    mid = r.json()['model']
    assert mid == f'{MODEL}+noisy' and r.json()['backend'] == 'vllm'
    assert mid in vllm_gateway.engine().models()
    ask = ChatRequest([{'role': 'user', 'content': 'What is the capital of France?'}], max_tokens=16)
    base = vllm_gateway.engine().complete(ask)
    tuned = OpenAIEngine(vllm_gateway.base_url, 'none', model=mid, settings=load_settings(env={'AOFW_PROVIDER': 'vllm'})).complete(ask)
    assert tuned.backend == 'vllm' and tuned.text != base.text, (base.text, tuned.text)   # the adapter's weights answered
    SENT['streamed'] += 2
    missing = admin({'adapter': str(tmp_path/'nothing-here')})
    assert missing.status_code == 404 and 'not a saved LoRA adapter' in missing.json()['error']['message'], missing.text

def test_sweep_points_through_the_gateway(vllm_gateway, tmp_path):
    "P2's sweep points on vLLM: each point's notebook talks to the gateway; which engine answered is part of the point's id."
    from agent_slo.eval.sweep import SweepSpec, run_sweep, sweep_records
    base = {'categories': ['simple_python'], 'limit': 2, 'split': None, 'max_tokens': 24, 'seed': 0}
    axes = {'constrained': [True, False], 'temperature': [0.0], 'sc_n': [1]}
    spec = SweepSpec(base={**base, 'engine_kind': 'vllm', 'gateway_url': vllm_gateway.base_url}, axes=axes)
    assert {p['id'] for p in spec.points()}.isdisjoint({p['id'] for p in SweepSpec(base=base, axes=axes).points()})
    res = run_sweep(spec, tmp_path/'sweep', progress=False)
    assert [e['status'] for e in res] == ['done', 'done'], res
    df = sweep_records(tmp_path/'sweep')
    assert len(df) == 4 and set(df['engine_id']) == {'serve:vllm'} and set(df['backend']) == {'vllm'}
    assert df.loc[df['config'].map(lambda c: c['constrained']), 'text'].str.lstrip().str.startswith('{').all()   # response_format reached vLLM
    SENT['streamed'] += len(df)

def test_one_record_per_request(vllm_gateway):
    time.sleep(0.5)   # the gateway appends records from a thread of its own
    recs = [r for r in read_records(vllm_gateway.records) if r['t_submit'] >= T0['t']]
    assert recs and all(r['backend'] == 'vllm' and r['stage'] == 'serve' and r['arm'] == 'baseline' for r in recs)
    assert len({r['task_id'] for r in recs}) == len(recs) == SENT['streamed'] + SENT['whole']
    ok = [r for r in recs if r['error_type'] is None]
    busy = [r for r in recs if r['error_type'] == 'rate_limited']
    assert all(r['finish_reason'] == 'error' for r in busy) and len(ok) + len(busy) == len(recs)
    assert all(r['engine_id'] == 'vllm' and r['completion_tokens'] > 0 and r['e2e_s'] > 0 for r in ok)
    assert sum(r['ttft_s'] is not None for r in ok) == SENT['streamed']   # only streamed answers have a first token to time

def _nearest(text:str, refs:dict) -> set:
    "The models whose reference answer shares the longest prefix with `text`."
    common = {m: len(__import__('os').path.commonprefix([text, r])) for m, r in refs.items()}
    best = max(common.values())
    return {m for m, c in common.items() if c == best}

def test_rollout_hot_loads_each_version_under_its_own_name(vllm_gateway):
    """A canary of v1 then of v2 of a registered adapter on the running vLLM, each loaded under its own model name (never
    in place), promoted in turn under load: no 5xx, every answer is the answer of the model it names, and the version
    that was retired is unloaded. Prints the load time and the first request's latency after a load against steady state."""
    from agent_slo.core.artifacts import AdapterRegistry
    from agent_slo.engine.hf import random_adapter
    from agent_slo.serve.rollout import canary_bucket
    reg = AdapterRegistry(vllm_gateway.artifacts)
    for seed in (1, 2):
        reg.register('tuned', random_adapter(vllm_gateway.artifacts/f'src{seed}', r=8, alpha=32, targets=('q_proj', 'v_proj'), seed=seed), {'seed': seed}, make_current=False)
    root = vllm_gateway.base_url.rsplit('/v1', 1)[0]
    client = openai.OpenAI(base_url=vllm_gateway.base_url, api_key='none', max_retries=0, timeout=120)
    qs = ['What is the capital of France?', 'Name a big city in Japan.', 'Where is Big Ben?']
    def ask(q, rid, model='default'):
        t = time.time()
        raw = client.chat.completions.with_raw_response.create(model=model, messages=[{'role': 'user', 'content': q}], max_tokens=16, temperature=0,
                                                                extra_headers={'x-request-id': rid})
        r = raw.parse()
        return {'rid': rid, 'q': q, 'model': r.model, 'text': r.choices[0].message.content, 'status': raw.status_code, 's': time.time() - t, 't0': t}
    out, stop = [], threading.Event()
    def load():
        i = 0
        while not stop.is_set():
            out.append(ask(qs[i % 3], f'hot-{i}')); i += 1
    th = [threading.Thread(target=load) for _ in range(2)]
    for t in th: t.start()
    try:
        timings = {}
        for v in ('v1', 'v2'):
            time.sleep(2)
            t = time.time(); r = httpx.put(f'{root}/v1/rollout', json={'candidate': {'adapter': f'tuned@{v}'}, 'mode': 'canary', 'canary_percent': 50}, timeout=300)
            timings[v] = (time.time() - t, time.time())
            assert r.status_code == 200, r.text
            time.sleep(4)
            r = httpx.post(f'{root}/v1/rollout/promote', json={'reason': f'{v} canary clean'}, timeout=60)
            assert r.status_code == 200 and r.json()['baseline']['adapter'] == f'tuned@{v}', r.text
        deadline = time.time() + 120   # a LoRA answer on vLLM's CPU backend takes seconds: wait for the promoted version's first one
        while time.time() < deadline and not any(a['model'] == f'{MODEL}+tuned@v2' for a in out): time.sleep(0.5)
    finally:
        stop.set()
        for t in th: t.join(60)
    base, v1, v2 = MODEL, f'{MODEL}+tuned@v1', f'{MODEL}+tuned@v2'
    SENT['whole'] += len(out)
    assert out and all(a['status'] == 200 for a in out)
    assert {a['model'] for a in out} == {base, v1, v2}
    refs = {m: {q: ask(q, f'ref-{m}-{q}'[:60].replace(' ', '_').replace('?', '').replace('+', '_').replace('@', '_'), m)['text'] for q in qs} for m in (v2,)}
    # the retired versions: v1 unloaded from vLLM, and the base answers by its own name
    deadline = time.time() + 30
    while v1 in [m.id for m in client.models.list().data] and time.time() < deadline: time.sleep(0.5)
    assert v1 not in [m.id for m in client.models.list().data], "the retired version is still loaded"
    refs[base] = {q: ask(q, f'refb{i}', base)['text'] for i, q in enumerate(qs)}
    seen = {(a['model'], a['q']): a['text'] for a in out}
    refs[v1] = {q: seen.get((v1, q)) for q in qs}   # unloaded now: its own answers under load stand in
    answers = [a for a in out if a['model'] in (base, v2)]
    exact = sum(a['text'] == refs[a['model']][a['q']] for a in answers)
    wrong = [a for a in answers if a['model'] not in _nearest(a['text'], {m: refs[m][a['q']] for m in refs if refs[m][a['q']] is not None})]
    assert not wrong, wrong[:3]
    hist = reg.history('tuned')
    assert [h['version'] for h in hist] == ['v1', 'v2'] and hist[-1]['reason'] == 'promoted after canary: v2 canary clean'
    for v, m in (('v1', v1), ('v2', v2)):
        after = sorted((a for a in out if a['model'] == m), key=lambda a: a['t0'])
        first, steady = after[0]['s'], sorted(a['s'] for a in after[1:])[len(after[1:]) // 2] if len(after) > 1 else float('nan')
        print(f"tuned@{v}: PUT /v1/rollout (merge + load) {timings[v][0]:.2f} s; first request {first:.2f} s vs steady median {steady:.2f} s (n={len(after) - 1})")
    print(f"{len(out)} requests under load, 0 non-200; {exact}/{len(answers)} exactly equal to the reference asked alone, all nearest to the model they name")

def test_stops_cleanly_with_the_gateway(vllm_gateway):
    "Stopping `agent-slo serve` stops the vLLM it started: no orphan holds the port or the memory."
    pid = vllm_gateway.health()['backends'][0]['pid']
    vllm_gateway.stop()
    assert not vllm_gateway.alive()
    deadline = time.time() + 30
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE and time.time() < deadline: time.sleep(0.2)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, "vLLM outlived the gateway that started it"
