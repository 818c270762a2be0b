"""The OpenAI-compatible client against real loopback HTTP servers that fail on purpose:
5xx (retried with backoff, then a typed error), slow answers (timeout), nobody listening (unreachable)."""
import json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pytest
from agent_slo.core.config import load_settings
from agent_slo.engine.base import ChatRequest, ServerError, EngineTimeout, EndpointUnreachable
from agent_slo.engine.client import OpenAIEngine
from agent_slo.core.procs import free_port

ASK = ChatRequest([{'role': 'user', 'content': 'hi'}], max_tokens=8)

def sse_body(words):
    chunks = [{'id': 'c', 'object': 'chat.completion.chunk', 'created': 0, 'model': 'm',
               'choices': [{'index': 0, 'delta': {'content': w}, 'finish_reason': None}]} for w in words]
    chunks.append({'id': 'c', 'object': 'chat.completion.chunk', 'created': 0, 'model': 'm',
                   'choices': [{'index': 0, 'delta': {}, 'finish_reason': 'stop'}]})
    return ''.join(f'data: {json.dumps(c)}\n\n' for c in chunks) + 'data: [DONE]\n\n'

class Scripted:
    "A real HTTP server on loopback answering POSTs from a script: an int is that status, 'sleep' stalls, 'ok' streams."
    def __init__(self, script):
        self.script, self.hits = list(script), 0
        outer = self
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_POST(self):
                self.rfile.read(int(self.headers.get('content-length', 0)))
                step = outer.script[min(outer.hits, len(outer.script) - 1)]; outer.hits += 1
                if step == 'sleep': time.sleep(3); step = 'ok'
                if step == 'ok':
                    body = sse_body(['Hel', 'lo', '!']).encode()
                    self.send_response(200); self.send_header('content-type', 'text/event-stream')
                else:
                    body = json.dumps({'error': {'message': f'scripted {step}', 'type': 'server_error'}}).encode()
                    self.send_response(step); self.send_header('content-type', 'application/json')
                self.send_header('content-length', str(len(body))); self.end_headers(); self.wfile.write(body)
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}/v1'
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
    def __enter__(self): return self
    def __exit__(self, *a): self.httpd.shutdown(); self.httpd.server_close()

def eng(url, **kw): return OpenAIEngine(url, 'k', model='m', settings=load_settings(env={'AOFW_PROVIDER': 'vllm'}), **kw)

def test_5xx_is_retried_then_succeeds():
    with Scripted([503, 502, 'ok']) as srv:
        c = eng(srv.url, max_retries=2).complete(ASK)
        assert (c.text, srv.hits, len(c.t_chunks)) == ('Hello!', 3, 3)

def test_5xx_exhausts_retries_with_typed_error():
    with Scripted([500]) as srv:
        with pytest.raises(ServerError, match='HTTP 500') as e: eng(srv.url, max_retries=2).complete(ASK)
        assert e.value.error_type == 'server_error' and srv.hits == 3

def test_4xx_is_not_retried():
    with Scripted([422]) as srv:
        with pytest.raises(Exception) as e: eng(srv.url, max_retries=3).complete(ASK)
        assert e.value.error_type == 'bad_request' and srv.hits == 1

def test_timeout_is_typed_and_not_retried():
    with Scripted(['sleep']) as srv:
        t0 = time.time()
        with pytest.raises(EngineTimeout, match='within 1 s') as e: eng(srv.url, timeout=1, max_retries=2).complete(ASK)
        assert e.value.error_type == 'timeout' and srv.hits == 1 and time.time() - t0 < 3

def test_unreachable_endpoint_is_clear():
    url = f'http://127.0.0.1:{free_port()}/v1'
    with pytest.raises(EndpointUnreachable, match='is the server running') as e: eng(url, max_retries=1).models()
    assert url in str(e.value) and e.value.error_type == 'unreachable'
