"""The online loop for real: users are served through the gateway while their feedback arrives; the loop turns it into
preference pairs, a short DPO update on the embedded model, a registered version with its parent and data hash, checks it
on the regression fixtures, canaries it through the gateway and promotes it. No request fails, every answer is the
reference answer of the model it names, and the new version answers users without a restart."""
import json, threading, time
from concurrent.futures import ThreadPoolExecutor

import httpx, openai, pytest

from agent_slo.core.artifacts import AdapterRegistry, Catalog
from agent_slo.core.config import load_settings, project_path
from agent_slo.core.records import read_jsonl
from agent_slo.engine.base import ChatRequest
from agent_slo.engine.hf import HFEngine
from agent_slo.ops.loop import OnlineLoop, OnlineConfig
from agent_slo.serve.gateway import ServerThread

QS = ['Say hi to Ana.', 'Name a color.', 'What is the capital of Italy?']

def test_feedback_becomes_a_live_adapter(tmp_path):
    env = {'AGENT_SLO_ARTIFACTS': str(tmp_path/'art'), 'AGENT_SLO_FEEDBACK_DIR': str(tmp_path/'fb'), 'AGENT_SLO_MAX_BATCH': '1',
           'AGENT_SLO_SERVE_RECORDS': str(tmp_path/'serve.jsonl')}
    s = load_settings(env=env)
    cfg = OnlineConfig.from_yaml(project_path('configs/online.yaml')).model_copy(update={
        'every': 4, 'alternatives': 1, 'canary_s': 6.0, 'min_canary': 2, 'fixture_limit': 2, 'fixture_prompts': ['Say hello.'], 'max_tokens': 24,
        'train': {**OnlineConfig().train, 'max_steps': 2}})
    base = HFEngine(settings=s)
    with ServerThread(base, s) as srv:
        root = srv.base_url.rsplit('/v1', 1)[0]
        client = openai.OpenAI(base_url=srv.base_url, api_key='none', max_retries=0, timeout=120)
        def ask(q, rid):
            t = time.time()
            raw = client.chat.completions.with_raw_response.create(model='default', messages=[{'role': 'user', 'content': q}], max_tokens=16, temperature=0,
                                                                    extra_headers={'x-request-id': rid})
            r = raw.parse()
            return {'q': q, 'id': r.id, 'model': r.model, 'text': r.choices[0].message.content, 'status': raw.status_code, 't0': t, 's': time.time() - t}
        served = [ask(q, f'first-{i}') for i, q in enumerate(QS)]
        out, stop = [], threading.Event()
        def users():
            i = 0
            while not stop.is_set():
                out.append(ask(QS[i % 3], f'user-{threading.get_ident()}-{i}')); i += 1
                time.sleep(0.3)
        th = threading.Thread(target=users); th.start()
        try:
            # feedback arrives during load: a correction, good and bad ratings
            fb = [{'feedback_id': 'u1', 'response_id': served[0]['id'], 'rating': -1, 'corrected': 'Hi Ana! Nice to meet you.'},
                  {'feedback_id': 'u2', 'response_id': served[1]['id'], 'rating': 1},
                  {'feedback_id': 'u3', 'response_id': served[2]['id'], 'rating': -1, 'corrected': 'The capital of Italy is Rome.'},
                  {'feedback_id': 'u4', 'response_id': served[2]['id'], 'rating': -0.5, 'dimensions': {'curiosity': 0.5}}]
            for f in fb: assert httpx.post(f'{root}/feedback', json=f).status_code == 201
            loop = OnlineLoop(srv.base_url, tmp_path/'fb', cfg, AdapterRegistry(tmp_path/'art'), Catalog(tmp_path/'art'), track=False)
            upd = loop.step()
            time.sleep(3)
        finally:
            stop.set(); th.join(120)
    print(json.dumps({k: v for k, v in upd.items() if k != 'fixtures'}, default=str))
    assert upd['outcome'] == 'promoted', upd
    assert upd['by_source']['corrected'] == 2 and upd['pairs'] >= 3
    reg = AdapterRegistry(tmp_path/'art')
    meta = reg.metadata('tool-online@v1')
    assert reg.current('tool-online') == 'v1' and meta['parent'] is None and meta['data_sha256'] == upd['data_sha256']
    assert reg.history('tool-online')[-1]['reason'].startswith('promoted after canary: online loop')
    assert json.loads((tmp_path/'fb'/'loop.json').read_text())['consumed'] == 4 and loop.step() is None   # consumed once
    new = f'{base.model_id}+tool-online@v1'
    assert all(a['status'] == 200 for a in out) and new in {a['model'] for a in out}
    live = [a for a in out if a['t0'] > upd['live_at']]
    assert live and {a['model'] for a in live} == {new}
    tuned = HFEngine(settings=s, adapter=reg.resolve('tool-online@v1'))
    refs = {(e.model_id, q): e.generate([ChatRequest([{'role': 'user', 'content': q}], max_tokens=16, temperature=0)])[0].text for e in (base, tuned) for q in QS}
    torn = [a for a in out + served if a['text'] != refs[a['model'], a['q']]]
    assert not torn, torn[:3]
    first = min((a for a in out if a['model'] == new), key=lambda a: a['t0'])
    steady = sorted(a['s'] for a in live[1:])
    print(f"feedback -> live {upd['feedback_to_live_s']:.1f} s (train {upd['train_s']:.1f} s, loop {upd['loop_s']:.1f} s); first request on the new version "
          f"{first['s']:.2f} s vs steady median {steady[len(steady) // 2] if steady else float('nan'):.2f} s; {len(out)} requests during the loop, 0 failed")

def test_chat_feedback_session_in_the_terminal(tmp_path):
    "`agent-slo chat --feedback`: a person chats with the gateway and rates each answer; the items land in the feedback log, with the conversation."
    import subprocess, sys
    from pathlib import Path
    s = load_settings(env={'AGENT_SLO_ARTIFACTS': str(tmp_path/'art'), 'AGENT_SLO_FEEDBACK_DIR': str(tmp_path/'fb')})
    with ServerThread(HFEngine(settings=s), s) as srv:
        exe = Path(sys.executable).parent/'agent-slo'
        p = subprocess.run([str(exe), 'chat', '--feedback', '--gateway', srv.base_url, '--max-tokens', '16'], capture_output=True, text=True, timeout=300,
                           input="What is 2 + 2?\n+ empathy=0.5\nAnd 3 + 3?\nfix: 6\nOne more?\ngreat\n/quit\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count('[feedback stored') == 2 and "[not rated: rating 'great'" in p.stdout and '[SmolLM2-135M-Instruct] ' in p.stdout, p.stdout
    items = read_jsonl(tmp_path/'fb'/'feedback.jsonl')
    assert [(i['rating'], i['dimensions'], i['corrected']) for i in items] == [(1.0, {'empathy': 0.5}, None), (-1.0, {}, '6')]
    assert [m['content'] for m in items[1]['messages']][::2] == ['What is 2 + 2?', 'And 3 + 3?']   # the whole conversation the answer was given in
