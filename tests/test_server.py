"The official `openai` client against a real `agent-slo serve` on loopback: streaming, TTFT, backpressure, bad requests."
import json, threading, time
import httpx, jsonschema, openai, psutil, pytest
from agent_slo.engine.base import ChatRequest, RateLimited, ModelNotFound, AuthFailed, BadRequest

MODEL = 'SmolLM2-135M-Instruct'
ASK = [{'role': 'user', 'content': 'What is the capital of France?'}]

def client(srv, key='test-key'): return openai.OpenAI(base_url=srv.base_url, api_key=key, max_retries=0, timeout=120)
def engine(srv, key='test-key', **kw): return srv.engine(api_key=key, **kw)

def test_binds_loopback_only(server):
    addrs = {c.laddr.ip for c in psutil.Process(server.proc.pid).net_connections('tcp') if c.status == psutil.CONN_LISTEN}
    assert addrs == {'127.0.0.1'}, addrs

def test_models_and_health(server):
    assert [m.id for m in client(server).models.list()] == [MODEL]
    h = httpx.get(server.base_url.replace('/v1', '/healthz')).json()
    assert h['status'] == 'ok' and h['model'] == MODEL and h['max_queue'] == 8

def test_streaming_ttft_measured_client_side(server):
    t0 = time.time(); times, parts, usage = [], [], None
    stream = client(server).chat.completions.create(model=MODEL, messages=ASK, max_tokens=16, temperature=0, stream=True,
                                                    stream_options={'include_usage': True})
    for ch in stream:
        if ch.usage: usage = ch.usage
        if ch.choices and ch.choices[0].delta.content: times.append(time.time()); parts.append(ch.choices[0].delta.content)
    text = ''.join(parts)
    assert 'Paris' in text
    ttft, e2e = times[0] - t0, times[-1] - t0
    assert 0 < ttft < e2e, (ttft, e2e)
    assert len(times) >= 3, "tokens arrive as separate SSE chunks"
    assert usage is not None and usage.completion_tokens >= len(times) and usage.prompt_tokens > 10
    # our client engine measures the same thing and records one timestamp per chunk
    c = engine(server).complete(ChatRequest(ASK, max_tokens=16))
    assert c.text == text and c.ttft_s > 0 and len(c.t_chunks) == len(times)
    assert all(a <= b for a, b in zip(c.t_chunks, c.t_chunks[1:]))

def test_greedy_is_deterministic_over_http(server):
    cl = client(server)
    texts = {cl.chat.completions.create(model=MODEL, messages=ASK, max_tokens=16, temperature=0).choices[0].message.content for _ in range(3)}
    assert len(texts) == 1

def test_response_format_json_schema(server):
    schema = {'type': 'object', 'additionalProperties': False, 'required': ['name', 'arguments'],
              'properties': {'name': {'enum': ['get_weather', 'get_time']},
                             'arguments': {'type': 'object', 'required': ['city'], 'additionalProperties': False,
                                           'properties': {'city': {'type': 'string', 'maxLength': 30}}}}}
    r = client(server).chat.completions.create(
        model=MODEL, max_tokens=48, temperature=0,
        messages=[{'role': 'system', 'content': 'Call a tool. Reply with JSON only.'}, {'role': 'user', 'content': 'Weather in Oslo?'}],
        response_format={'type': 'json_schema', 'json_schema': {'name': 'call', 'schema': schema, 'strict': True}})
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)
    assert r.choices[0].finish_reason == 'stop'

@pytest.mark.parametrize('body, status, words', [
    (b'{"model": "x", "messages": [', 400, 'not valid JSON'),
    (b'{"model": "%s"}' % MODEL.encode(), 400, 'messages'),
    (b'{"model": "%s", "messages": []}' % MODEL.encode(), 400, 'messages'),
    (b'{"model": "%s", "messages": [{"role": "wizard", "content": "x"}]}' % MODEL.encode(), 400, 'role'),
    (b'{"model": "%s", "messages": [{"role": "user", "content": "x"}], "temperature": 7}' % MODEL.encode(), 400, 'temperature'),
    (b'{"model": "%s", "messages": [{"role": "user", "content": "x"}], "n": 3}' % MODEL.encode(), 400, 'n'),
    (b'{"model": "%s", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}' % MODEL.encode(), 400, 'max_tokens'),
    (b'{"model": "%s", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object", "properties": {"a": {"type": "nonsense"}}}}}}' % MODEL.encode(), 400, 'schema'),
    (b'{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}', 404, 'not found'),
])
def test_bad_requests_get_4xx_and_server_keeps_serving(server, body, status, words):
    r = httpx.post(f'{server.base_url}/chat/completions', content=body,
                   headers={'content-type': 'application/json', 'authorization': 'Bearer test-key'}, timeout=60)
    assert r.status_code == status, r.text
    err = r.json()['error']
    assert words in err['message'], err
    assert server.alive()
    assert client(server).chat.completions.create(model=MODEL, messages=ASK, max_tokens=2, temperature=0).choices[0].message.content

def test_typed_client_errors(server):
    with pytest.raises(ModelNotFound, match='agent-slo models'):
        engine(server, model='no-such-model').complete(ChatRequest(ASK, max_tokens=2))
    with pytest.raises(AuthFailed, match='OPENAI_API_KEY'):
        engine(server, key='wrong', model=MODEL).complete(ChatRequest(ASK, max_tokens=2))
    with pytest.raises(BadRequest):
        engine(server).complete(ChatRequest(ASK, max_tokens=2, json_schema={'type': 'object', 'properties': {'a': {'type': 'nonsense'}}}))

def test_429_when_queue_full_then_recovers(tight_server):
    srv, first, done = tight_server, threading.Event(), {}
    def long_request():
        s = client(srv, 'none').chat.completions.create(model=MODEL, messages=[{'role': 'user', 'content': 'Tell a long story about a dragon.'}],
                                                        max_tokens=64, temperature=0, stream=True)
        n = 0
        for ch in s:
            if ch.choices and ch.choices[0].delta.content: n += 1; first.set()
        done['chunks'] = n
    t = threading.Thread(target=long_request); t.start()
    assert first.wait(120), "the first request never started streaming"
    with pytest.raises(openai.RateLimitError) as e:
        client(srv, 'none').chat.completions.create(model=MODEL, messages=ASK, max_tokens=4)
    assert e.value.response.headers.get('retry-after') == '1'
    with pytest.raises(RateLimited, match='429'):
        engine(srv, 'none', max_retries=3).complete(ChatRequest(ASK, max_tokens=4))  # 429 is not retried
    t.join(180)
    assert done['chunks'] > 10 and srv.alive()
    assert client(srv, 'none').chat.completions.create(model=MODEL, messages=ASK, max_tokens=4, temperature=0).choices[0].message.content
    prom = httpx.get(srv.base_url.replace('/v1', '/metrics')).text
    assert 'agent_slo_requests_total{status="429"} 2.0' in prom, prom
    assert 'agent_slo_queue_depth 0.0' in prom

def test_client_disconnect_mid_stream_frees_the_slot(tight_server):
    srv = tight_server
    s = client(srv, 'none').chat.completions.create(model=MODEL, messages=[{'role': 'user', 'content': 'Tell a long story.'}],
                                                    max_tokens=200, temperature=0, stream=True)
    for i, ch in enumerate(s):
        if i >= 3: break
    s.close()
    deadline = time.time() + 30
    while httpx.get(srv.base_url.replace('/v1', '/healthz')).json()['queue_depth'] and time.time() < deadline: time.sleep(0.1)
    assert httpx.get(srv.base_url.replace('/v1', '/healthz')).json()['queue_depth'] == 0, "the cancelled request still holds the slot"
    assert client(srv, 'none').chat.completions.create(model=MODEL, messages=ASK, max_tokens=4, temperature=0).choices[0].message.content

def test_local_server_dies_with_its_parent():
    "A run killed half-way (SIGKILL, no cleanup) never leaves its `agent-slo serve` behind."
    import os, signal, subprocess, sys, textwrap
    code = textwrap.dedent('''
        import time
        from agent_slo.serve.gateway import LocalServer
        s = LocalServer()
        print(s.proc.pid, flush=True)
        time.sleep(600)
    ''')
    p = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    child = int(p.stdout.readline())
    os.kill(p.pid, signal.SIGKILL); p.wait()
    deadline = time.time() + 20
    while time.time() < deadline and psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE: time.sleep(0.2)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE, "the server outlived its parent"

def test_native_tool_calling_bfcl(server, tmp_path):
    "BFCL's FC mode against the real server: the official client sends `tools`, the answer comes back as `tool_calls` (streamed and not), the agent's records say fc and BFCL's checker judges them."
    from agent_slo.tasks.bfcl import load_bfcl
    from agent_slo.agent.toolcall import AgentConfig, tools_for
    from agent_slo.eval.harness import run_suite
    from agent_slo.core.records import read_records
    task = load_bfcl('simple_python')[1]
    r = client(server).chat.completions.create(model=MODEL, messages=task.messages, tools=tools_for(task), tool_choice='required', max_tokens=240, temperature=0)   # room for the array to close (a small model repeats its call up to the 8-call bound)
    call = r.choices[0].message.tool_calls[0]
    assert r.choices[0].finish_reason == 'tool_calls' and call.function.name == task.functions[0]['name']
    assert isinstance(json.loads(call.function.arguments), dict)
    tasks = [task, load_bfcl('irrelevance')[0], load_bfcl('live_simple')[0]]
    out = run_suite(engine(server, max_retries=0), tasks, AgentConfig(call_mode='fc', max_tokens=80), tmp_path/'fc.jsonl', progress=False)
    recs = read_records(out)
    assert [x['call_mode'] for x in recs] == ['fc']*3 and all(x['error_source'] != 'engine' for x in recs)
    assert all(x['config']['call_mode'] == 'fc' and x['calls'] is not None for x in recs)   # BFCL's 'auto': calls, or an answer in words
    names = {f['name'] for t in tasks for f in t.functions}
    assert all(c['name'] in names for x in recs for c in x['calls']) and all(x['calls'] or x['text'] for x in recs)
    assert all(x['success'] or x['error_type'] for x in recs)    # each judged: a verdict, or BFCL's reason it failed
    # a malformed tool is a 400 that names the problem, and the server keeps serving
    bad = httpx.post(f'{server.base_url}/chat/completions', headers={'authorization': 'Bearer test-key'},
                     json={'model': MODEL, 'messages': ASK, 'tools': [{'type': 'function', 'function': {'description': 'no name'}}]})
    assert bad.status_code == 400 and 'a tool must be' in bad.json()['error']['message']
    assert client(server).chat.completions.create(model=MODEL, messages=ASK, max_tokens=4).choices[0].message.content is not None
