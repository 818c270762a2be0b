"""Operations soak: load through `agent-slo serve` on the managed vLLM while, in turn,
  A. a harmless candidate is canaried and promoted;
  B. a schema-breaking candidate is shadowed, then canaried; its alert fires and the gateway rolls it back each time;
  C. feedback arrives during load and the online loop turns it into a new adapter that goes live (DPO, fixtures, canary, promotion);
  D. the gateway is `kill -9`'d while feedback is being written, and restarted on the same logs, serving what was promoted.
Printed and written to out/soak/report.json:
  - responses by HTTP status (the bar: no 5xx), connection errors while the gateway was down;
  - torn reads: answers that their own model never gives (alone or batched) but another model does, after the run;
  - feedback items lost or duplicated after the kill (every item resent after the restart);
  - the time from the N-th feedback item to a live adapter; the first request's latency after each load against steady state;
  - the time from a breach (the first answer that broke the schema) to the rollback, in shadow and in canary.
The alert windows are shortened (60 s / 20 s) so the soak takes minutes; the short window is sized to the canary's answer rate
(two users on 2 cores answer about 0.7 requests/s, so a 30% canary sees about 0.2/s: 4 in a 20 s window, above min_events = 3).
A torn read is an answer that its own model never gives but another model does: the references are each model's answers
asked alone and asked in concurrent batches, because vLLM's batched CPU kernels can change a greedy answer with the batch's make-up.

    .venv/bin/python benchmarks/soak.py [--out out/soak]
"""
import argparse, json, os, signal, threading, time
from collections import Counter
from pathlib import Path
import httpx, openai

from agent_slo.core.artifacts import AdapterRegistry, Catalog
from agent_slo.core.config import project_path
from agent_slo.core.records import read_jsonl, read_records
from agent_slo.engine.hf import random_adapter
from agent_slo.ops.loop import OnlineLoop, OnlineConfig
from agent_slo.serve.gateway import LocalServer

SCHEMA = {'type': 'object', 'properties': {'city': {'type': 'string'}}, 'required': ['city'], 'additionalProperties': False}   # no maxLength: the grammar would close every string
QS = ['What is the capital of France?', 'Name a big city in Japan.', 'Which city hosts the Colosseum?', 'Where is Big Ben?']
ALERTS = """alerts:
  interval_s: 0.5
  rules:
    - {name: latency, sli: latency, objective: 0.95, slo_s: 8, for_s: 3, min_events: 3, windows: [{long_s: 60, short_s: 20, burn: 4}]}
    - {name: errors, sli: error, objective: 0.99, for_s: 3, min_events: 3, windows: [{long_s: 60, short_s: 20, burn: 14.4}]}
    - {name: schema, sli: schema, objective: 0.9, for_s: 3, min_events: 3, windows: [{long_s: 60, short_s: 20, burn: 3}]}   # vLLM's grammar admits whitespace: the base model itself runs past the token cap on ~5% of these answers
"""

class Load:
    "Two users sending schema-constrained questions with their own request ids until stopped; every outcome is kept."
    def __init__(self, base_url:str, users:int=2, pause:float=0.2):
        self.base_url, self.stop, self.out, self.down, self.i = base_url, threading.Event(), [], 0, 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.user, daemon=True) for _ in range(users)]
        self.pause = pause
    def user(self):
        while not self.stop.is_set():
            with self.lock: i = self.i; self.i += 1
            q, t = QS[i % len(QS)], time.time()
            try:
                r = httpx.post(f'{self.base_url}/chat/completions', timeout=120, headers={'x-request-id': f'soak-{i}'},
                               json={'model': 'default', 'messages': [{'role': 'user', 'content': q}], 'max_tokens': 40, 'temperature': 0,
                                     'response_format': {'type': 'json_schema', 'json_schema': {'name': 'city', 'schema': SCHEMA}}})
                d = r.json() if r.headers.get('content-type', '').startswith('application/json') else {}
                ch = (d.get('choices') or [{}])[0].get('message') or {}
                self.out.append({'i': i, 'q': q, 'status': r.status_code, 'model': d.get('model'), 'text': ch.get('content'), 'id': d.get('id'), 't0': t, 's': time.time() - t})
            except httpx.TransportError as e:
                self.down += 1; time.sleep(0.5)
            time.sleep(self.pause)
    def start(self):
        for t in self.threads: t.start()
        return self
    def finish(self):
        self.stop.set()
        for t in self.threads: t.join(130)

def rollout(root): return httpx.get(f'{root}/v1/rollout', timeout=30).json()
def wait_off(root, limit):
    "Wait for the gateway to roll the candidate back; after `limit` s, roll it back by hand and say so."
    t = time.time()
    while rollout(root)['mode'] != 'off' and time.time() - t < limit: time.sleep(0.5)
    if rollout(root)['mode'] != 'off':
        print(f"  no automatic rollback within {limit} s: rolled back by hand", flush=True)
        httpx.post(f'{root}/v1/rollout/rollback', json={'reason': f'soak: no alert within {limit} s'}, timeout=60)
    return rollout(root)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='out/soak')
    args = ap.parse_args()
    out = project_path(args.out); out.mkdir(parents=True, exist_ok=True)
    art, fb = out/'artifacts', out/'online_feedback'
    for p in (fb/'feedback.jsonl', fb/'responses.jsonl', fb/'loop.json', out/'serve.jsonl'):
        if p.exists(): p.unlink()
    reg = AdapterRegistry(art)
    if not reg.versions('good'): reg.register('good', random_adapter(out/'src-good', r=4, alpha=8, targets=('q_proj', 'v_proj'), seed=5), {'purpose': 'harmless'}, make_current=False)
    if not reg.versions('bad'): reg.register('bad', random_adapter(out/'src-bad', r=2, alpha=512, targets=('q_proj', 'k_proj', 'v_proj', 'o_proj')), {'purpose': 'breaks the schema'}, make_current=False)
    (out/'alerts.yaml').write_text(ALERTS)
    spec = [{'name': 'vllm', 'kind': 'vllm', 'max_inflight': 16, 'vllm': {'max_num_seqs': 4, 'lora': True, 'max_lora_rank': 16, 'log_path': str(out/'vllm.log')}}]
    env = {'AGENT_SLO_BACKENDS': json.dumps(spec), 'AGENT_SLO_ARTIFACTS': str(art), 'AGENT_SLO_FEEDBACK_DIR': str(fb), 'AGENT_SLO_ALERTS': str(out/'alerts.yaml'),
           'AGENT_SLO_SERVE_RECORDS': str(out/'serve.jsonl')}
    rep, marks = {}, {}
    gw = LocalServer(env, log_path=out/'gateway1.log'); root = gw.base_url.rsplit('/v1', 1)[0]
    load = Load(gw.base_url).start()
    try:
        print('A. canary of good@v1, then promotion', flush=True)
        time.sleep(8)
        r = httpx.put(f'{root}/v1/rollout', json={'candidate': {'adapter': 'good@v1'}, 'mode': 'canary', 'canary_percent': 50}, timeout=300); assert r.status_code == 200, r.text
        marks['load good@v1'] = time.time(); time.sleep(15)
        assert httpx.post(f'{root}/v1/rollout/promote', json={'reason': 'soak: canary clean'}, timeout=60).status_code == 200
        print('B. shadow, then canary, of bad@v1', flush=True)
        httpx.put(f'{root}/v1/rollout', json={'candidate': {'adapter': 'bad@v1'}, 'mode': 'shadow'}, timeout=300).raise_for_status()
        sh = wait_off(root, 120)
        httpx.put(f'{root}/v1/rollout', json={'candidate': {'adapter': 'bad@v1'}, 'mode': 'canary', 'canary_percent': 30}, timeout=300).raise_for_status()
        marks['load bad@v1'] = time.time()
        ca = wait_off(root, 120)
        rep['rollbacks'] = [e for e in ca['history'] if e['event'] == 'rollback']
        print('C. feedback during load, the online loop', flush=True)
        served = [a for a in list(load.out) if a['status'] == 200 and a['model'] and a['model'].endswith('good@v1')][-4:]
        items = [{'feedback_id': f'c{k}', 'response_id': a['id'], 'rating': [-1, 1, -1, 1][k], **({'corrected': '{"city": "Paris"}'} if k == 0 else {})} for k, a in enumerate(served)]
        for it in items: assert httpx.post(f'{root}/feedback', json=it, timeout=30).status_code == 201
        cfg = OnlineConfig.from_yaml(project_path('configs/online.yaml')).model_copy(update={'every': 4, 'start_from': 'good@v1', 'canary_s': 10.0, 'min_canary': 2, 'fixture_limit': 2})
        upd = OnlineLoop(gw.base_url, fb, cfg, reg, Catalog(art), track=False).step()
        rep['online'] = {k: v for k, v in upd.items() if k != 'fixtures'} | {'fixtures': upd.get('fixtures')}
        marks['load tool-online@v1'] = time.time() - 10
        time.sleep(5)
        print('D. kill -9 during feedback writes, restart', flush=True)
        ids = [a['id'] for a in list(load.out) if a['status'] == 200][-3:]
        item = lambda k: {'feedback_id': f'k{k}', 'response_id': ids[k % 3], 'rating': 1 if k % 2 else -1}
        acked, lk = set(), threading.Lock()
        def send(k):
            try: r = httpx.post(f'{root}/feedback', json=item(k), timeout=10)
            except httpx.HTTPError: return
            if r.status_code in (200, 201):
                with lk: acked.add(k)
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(send, k) for k in range(200)]
            while len(acked) < 40: time.sleep(0.01)
            t_kill = time.time(); gw.proc.send_signal(signal.SIGKILL)
            for f in futs: f.result()
        gw.proc.wait(10)
        gw = LocalServer({**env, 'AGENT_SLO_BASELINE': 'tool-online'}, log_path=out/'gateway2.log', port=gw.port)
        rep['restart_s'] = time.time() - t_kill
        status = Counter(httpx.post(f'{root}/feedback', json=item(k), timeout=30).json().get('status') for k in range(200))
        got = [l['feedback_id'] for l in read_jsonl(fb/'feedback.jsonl') if l['feedback_id'].startswith('k')]
        rep['kill'] = {'acked_before_kill': len(acked), 'resent': dict(status), 'in_log': len(got), 'unique': len(set(got)),
                       'lost': 200 - len(set(got)), 'duplicated': len(got) - len(set(got)), 'acked_found': len(acked & {int(g[1:]) for g in got})}
        time.sleep(10)
    finally:
        load.finish()
    # references: each model asked alone, then in concurrent batches of every model (vLLM's batched kernels can move a greedy
    # answer with the batch's make-up), after the run on the restarted gateway's vLLM (retired versions loaded again by name)
    answers = [a for a in load.out if a['status'] == 200]
    models = sorted({a['model'] for a in answers})
    for m in models:
        tag = m.split('+')[-1] if '+' in m else None
        if tag and m not in [x['id'] for x in httpx.get(f'{gw.base_url}/models').json()['data']]:
            httpx.post(f'{gw.base_url}/adapters', json={'adapter': tag}, timeout=300)
    ask = lambda m, q: httpx.post(f'{gw.base_url}/chat/completions', timeout=120, json={'model': m, 'messages': [{'role': 'user', 'content': q}], 'max_tokens': 40, 'temperature': 0,
                                  'response_format': {'type': 'json_schema', 'json_schema': {'name': 'city', 'schema': SCHEMA}}}).json()['choices'][0]['message']['content']
    refs = {m: {q: ask(m, q) for q in QS} for m in models}
    from concurrent.futures import ThreadPoolExecutor
    jobs = [(m, q) for _ in range(3) for m in models for q in QS]
    with ThreadPoolExecutor(6) as ex: batched = list(ex.map(lambda mq: (*mq, ask(*mq)), jobs))
    seen = {m: {q: {refs[m][q]} for q in QS} for m in models}
    for m, q, t in batched: seen[m][q].add(t)
    gw.stop()
    with open(out/'answers.jsonl', 'w') as f:
        for a in load.out: f.write(json.dumps(a) + '\n')
    (out/'references.json').write_text(json.dumps({m: {q: sorted(v) for q, v in d.items()} for m, d in seen.items()}, indent=1))
    # a torn read: an answer its own model never gave, alone or batched, that another model did give
    torn = [a for a in answers if (a['text'] or '') not in seen[a['model']][a['q']] and any((a['text'] or '') in seen[m][a['q']] for m in seen if m != a['model'])]
    unexplained = [a for a in answers if (a['text'] or '') not in seen[a['model']][a['q']]]
    rep['requests'] = {'by_status': dict(Counter(a['status'] for a in load.out)), 'connection_errors_while_down': load.down,
                       'answers': len(answers), 'exact_solo_reference': sum((a['text'] or '') == refs[a['model']][a['q']] for a in answers),
                       'own_model_reference': len(answers) - len(unexplained), 'torn': len(torn), 'unexplained': len(unexplained),
                       'distinct_answers_per_model_and_question': {m: {q: len(v) for q, v in d.items()} for m, d in seen.items()}, 'by_model': dict(Counter(a['model'] for a in answers))}
    recs = read_records(out/'serve.jsonl')
    first_bad = {arm: min((r['t_end'] for r in recs if r['arm'] == arm and r['model_id'].endswith('bad@v1') and not r['schema_valid']), default=None) for arm in ('shadow', 'canary')}
    rbs = [e for e in (sh['history'] + ca['history']) if e['event'] == 'rollback']
    rep['breach_to_rollback_s'] = {arm: (next(e['at'] for e in rbs if e['at'] > t) - t) if t else None for arm, t in first_bad.items()}
    lat = {}
    for label, t_load in marks.items():
        m = label.split()[-1]
        after = sorted((a for a in answers if a['model'].endswith(m) and a['t0'] >= t_load), key=lambda a: a['t0'])
        if after: lat[m] = {'first_s': after[0]['s'], 'steady_median_s': sorted(a['s'] for a in after[1:])[len(after[1:]) // 2] if len(after) > 1 else None, 'n': len(after)}
    rep['first_request_after_load'] = lat
    (out/'report.json').write_text(json.dumps(rep, indent=1, default=str))
    print(json.dumps({k: v for k, v in rep.items() if k not in ('rollbacks',)}, indent=1, default=str))

if __name__ == '__main__':
    main()
