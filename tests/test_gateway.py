"""The gateway over several backends, for real: two `agent-slo serve` processes, one the backend of the other. A backend
killed mid-stream gives the client a clean error at once, is marked unhealthy, and the next request is answered by the
healthy backend; asking for the dead one by name gets a 503 that says why; every request leaves one record."""
import signal, time
import httpx, openai, pytest

from agent_slo.core.records import read_records
from agent_slo.engine.base import ChatRequest, ServerError
from agent_slo.serve.gateway import LocalServer

MODEL = 'SmolLM2-135M-Instruct'
COUNT = [{'role': 'user', 'content': 'Count from 1 to 100, one number per line.'}]

@pytest.fixture
def pair(tmp_path):
    victim = LocalServer({'AGENT_SLO_THREADS': 1}, log_path=tmp_path/'victim.log')
    gw = LocalServer({'AGENT_SLO_BACKENDS': f'victim={victim.base_url},embedded', 'AGENT_SLO_THREADS': 1,
                      'AGENT_SLO_SERVE_RECORDS': str(tmp_path/'records.jsonl')}, log_path=tmp_path/'gateway.log')
    yield victim, gw, tmp_path/'records.jsonl'
    gw.stop(); victim.stop()

def test_backend_killed_mid_stream(pair):
    victim, gw, records = pair
    assert [b['name'] for b in gw.health()['backends']] == ['victim', 'embedded']
    client = openai.OpenAI(base_url=gw.base_url, api_key='none', max_retries=0, timeout=60)
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=COUNT, max_tokens=200, temperature=0, stream=True)
    assert raw.headers['x-agent-slo-backend'] == 'victim'   # the first healthy backend in table order
    got, t0 = [], time.time()
    with pytest.raises(openai.APIError, match='victim failed mid-stream'):
        for ch in raw.parse():
            if ch.choices and ch.choices[0].delta.content: got.append(ch.choices[0].delta.content)
            if len(got) == 3: victim.proc.send_signal(signal.SIGKILL)
    assert len(got) >= 3 and time.time() - t0 < 60, "the client hung on a dead backend"
    h = gw.health()
    dead = h['backends'][0]
    assert h['status'] == 'degraded' and not dead['healthy'] and 'mid-stream' in dead['reason'] and dead['inflight'] == 0
    # the next request: the healthy in-process backend answers, through the typed client
    c = gw.engine(max_retries=0).complete(ChatRequest([{'role': 'user', 'content': 'Say hi.'}], max_tokens=8))
    assert c.text and c.backend == 'embedded'
    # asking for the dead backend by name: a clear 503, typed as a server error by the client
    r = httpx.post(f'{gw.base_url}/chat/completions', json={'model': MODEL, 'messages': COUNT, 'max_tokens': 4, 'backend': 'victim'})
    assert r.status_code == 503 and r.headers['retry-after'] == '2'
    assert 'no healthy backend' in r.json()['error']['message'] and "'SmolLM2-135M-Instruct': victim (" in r.json()['error']['message'] and 'embedded' not in r.json()['error']['message'], r.text
    with pytest.raises(ServerError, match='503'):
        _ask_dead(gw)
    assert gw.alive()
    time.sleep(0.5)
    recs = read_records(records)
    assert [(r['backend'], r['error_type']) for r in recs] == [('victim', 'server_error'), ('embedded', None), (None, 'unavailable'), (None, 'unavailable')]   # a 503 was served by no backend
    assert recs[0]['text'] == ''.join(got) and recs[0]['finish_reason'] == 'error' and recs[0]['error_source'] == 'engine'

def _ask_dead(gw):
    "The typed client naming the dead backend (the gateway's `backend` extension rides in the header)."
    eng = gw.engine(max_retries=0)
    eng.client = eng.client.with_options(default_headers={'x-agent-slo-backend': 'victim'})
    return eng.complete(ChatRequest([{'role': 'user', 'content': 'hi'}], max_tokens=4))

def test_managed_vllm_missing_falls_back_to_the_in_process_engine(tmp_path):
    "A vLLM backend that cannot start leaves the gateway serving the in-process engine, and the log says so."
    spec = '[{"name": "vllm", "kind": "vllm", "vllm": {"python": "/no/such/python"}}]'
    with LocalServer({'AGENT_SLO_BACKENDS': spec, 'AGENT_SLO_THREADS': 1}, log_path=tmp_path/'gw.log') as gw:
        assert [(b['name'], b['kind']) for b in gw.health()['backends']] == [('embedded', 'embedded')]
        assert gw.engine().complete(ChatRequest([{'role': 'user', 'content': 'hi'}], max_tokens=4)).backend == 'embedded'
    log = (tmp_path/'gw.log').read_text()
    assert 'the managed vLLM did not start' in log and 'make vllm' in log, log[-2000:]
