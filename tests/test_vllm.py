"""The managed vLLM backend for real: one module-scoped vLLM on the embedded model, with the priority scheduler and room for
two sequences, so a few requests saturate it. It serves schema-constrained output that validates, lets a high-priority
request overtake earlier low-priority ones, and stops cleanly."""
import json, threading, time
import jsonschema, openai, pytest

from agent_slo.engine.base import ChatRequest
from agent_slo.engine.vllm import VLLMServer, vllm_python

pytestmark = pytest.mark.skipif(vllm_python() is None, reason="the managed vLLM venv is missing: `make vllm` (make test builds it)")

@pytest.fixture(scope='module')
def vllm(tmp_path_factory):
    srv = VLLMServer(scheduling_policy='priority', max_num_seqs=2, log_path=tmp_path_factory.mktemp('vllm')/'vllm.log')
    yield srv
    srv.stop()

CITY = {'type': 'object', 'additionalProperties': False, 'required': ['city', 'country'],
        'properties': {'city': {'type': 'string', 'maxLength': 24}, 'country': {'type': 'string', 'maxLength': 24}}}

def test_serves_schema_constrained_output(vllm):
    assert vllm.alive() and vllm.start_s > 0 and isinstance(vllm.warm, bool)
    eng = vllm.engine()
    assert eng.models() == ['SmolLM2-135M-Instruct'] and eng.engine_id == 'vllm'
    c = eng.complete(ChatRequest([{'role': 'user', 'content': 'Name a city and its country as JSON.'}], max_tokens=48, json_schema=CITY))
    jsonschema.validate(json.loads(c.text), CITY)
    assert c.ttft_s > 0 and c.completion_tokens > 0 and c.prompt_tokens > 0 and len(c.t_chunks) > 1

def test_priority_reaches_the_engine(vllm):
    "With two sequences at a time and eight long low-priority requests queued, a priority-0 request sent after them finishes before most of them."
    client = openai.OpenAI(base_url=vllm.base_url, api_key='EMPTY', max_retries=0, timeout=300)
    done = {}
    def ask(name, priority):
        client.chat.completions.create(model=vllm.model_id, messages=[{'role': 'user', 'content': f'Write a long story about the number {name}.'}],
                                       max_tokens=64, temperature=0, extra_body={'priority': priority, 'ignore_eos': True})
        done[name] = time.time()
    low = [threading.Thread(target=ask, args=(f'low{i}', 10)) for i in range(8)]
    for t in low: t.start(); time.sleep(0.02)
    time.sleep(0.3)
    high = threading.Thread(target=ask, args=('high', 0)); high.start()
    for t in low + [high]: t.join(300)
    assert len(done) == 9, done
    later = sum(done[f'low{i}'] > done['high'] for i in range(8))
    assert later >= 4, f"the priority-0 request finished ahead of only {later} of 8 earlier low-priority requests"

def test_stops_cleanly(vllm):
    vllm.stop()
    assert not vllm.alive()
    with pytest.raises(Exception): openai.OpenAI(base_url=vllm.base_url, api_key='EMPTY', max_retries=0, timeout=5).models.list()
