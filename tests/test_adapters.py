"""LoRA adapters in a running `agent-slo serve`: started with a registered adapter by name, swapped under concurrent
requests (every answer comes whole from the old model or the new one, and says which), and refused clearly when unknown."""
import time
from concurrent.futures import ThreadPoolExecutor
import httpx, openai, pytest

from agent_slo.engine.hf import HFEngine, random_adapter
from agent_slo.engine.base import ChatRequest
from agent_slo.core.artifacts import AdapterRegistry
from agent_slo.serve.gateway import LocalServer

PROMPTS = ['What is the capital of France?', 'Name a colour.', 'What is 2 + 2?', 'Say hello.']

@pytest.fixture(scope='module')
def registry(tmp_path_factory):
    "A registry holding one adapter with random (non-zero) LoRA weights, so its answers differ from the base model's."
    root = tmp_path_factory.mktemp('artifacts')
    base = HFEngine(threads=2)
    random_adapter(root/'incoming', r=4, alpha=64, targets=('q_proj', 'v_proj'))
    reg = AdapterRegistry(root)
    reg.register('tool-test', root/'incoming', {'data_sha256': 'none', 'config': {'r': 4}, 'metrics': {}})
    tuned = HFEngine(threads=2, adapter=reg.resolve('tool-test'))
    q = lambda p: ChatRequest([{'role': 'user', 'content': p}], max_tokens=12)
    ref = {base.model_id: {p: base.complete(q(p)).text for p in PROMPTS}, tuned.model_id: {p: tuned.complete(q(p)).text for p in PROMPTS}}
    assert ref[base.model_id] != ref[tuned.model_id]
    return root, ref, base.model_id, tuned.model_id

def test_start_with_adapter_and_swap_under_load(registry, tmp_path):
    root, ref, base_id, tuned_id = registry
    with LocalServer({'AGENT_SLO_ARTIFACTS': root, 'AGENT_SLO_ADAPTER': 'tool-test@current', 'AGENT_SLO_THREADS': 2,
                      'AGENT_SLO_MAX_QUEUE': 64, 'AGENT_SLO_MAX_BATCH': 4}, log_path=tmp_path/'serve.log') as srv:
        root_url = srv.base_url[:-3]
        info = httpx.get(f'{root_url}/v1/adapters').json()
        assert (info['model'], info['adapter'], info['chain']) == (tuned_id, 'tool-test@v1', ['tool-test@v1']), info
        client = openai.OpenAI(base_url=srv.base_url, api_key='none', max_retries=0)
        def ask(i):
            p = PROMPTS[i % len(PROMPTS)]
            r = client.chat.completions.create(model=base_id, messages=[{'role': 'user', 'content': p}], max_tokens=12, temperature=0)
            return p, r.model, r.choices[0].message.content
        answers, swaps = [], []
        with ThreadPoolExecutor(6) as ex:
            futs = []
            for i in range(24):
                futs.append(ex.submit(ask, i))
                if i == 8: swaps.append(httpx.post(f'{root_url}/v1/adapters', json={'adapter': None}, timeout=120))
                if i == 16: swaps.append(httpx.post(f'{root_url}/v1/adapters', json={'adapter': 'tool-test@v1'}, timeout=120))
                time.sleep(0.15)
            answers = [f.result() for f in futs]
        assert [s.status_code for s in swaps] == [200, 200], [s.text for s in swaps]
        assert [s.json()['model'] for s in swaps] == [base_id, tuned_id]
        assert [s.json()['adapter'] for s in swaps] == [None, 'tool-test@v1']   # names, never server paths
        for p, model, text in answers:   # each answer is exactly what the model it names would say: never a mix
            assert model in ref, model
            assert text == ref[model][p], (model, p, text)
        assert {m for _, m, _ in answers} == {base_id, tuned_id}, "requests were served by both models around the swaps"

        bad = httpx.post(f'{root_url}/v1/adapters', json={'adapter': 'tool-test@v9'}, timeout=60)
        assert bad.status_code == 404 and 'tool-test@v9 not found' in bad.json()['error']['message'], bad.text
        assert str(root) not in bad.text, bad.text   # the error names the adapter, not where the server keeps it
        assert httpx.get(f'{root_url}/v1/adapters').json()['model'] == tuned_id     # a failed swap changes nothing
        assert srv.alive()
