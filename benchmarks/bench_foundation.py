"""Foundation benchmark: the embedded engine's throughput, constrained-decoding overhead and server TTFT on loopback.

Each figure is printed next to a baseline measured in the same run, with the ratio:
  - decode throughput at batch 8 against batch 1;
  - per-token decode time with an xgrammar JSON-Schema constraint against free decoding (harness.decode_overhead), and the grammar mask
    cost per token against the model's forward pass;
  - TTFT through `agent-slo serve` + the official openai client against the engine called directly.
With --setup it also times a fresh clone's `make install` and `make test` (minutes).

    .venv/bin/python benchmarks/bench_foundation.py [--reps 3] [--tokens 64] [--setup]
"""
import argparse, json, statistics as st, subprocess, tempfile, time
from tqdm import tqdm

from agent_slo.core.config import load_settings, project_path
from agent_slo.engine.hf import HFEngine
from agent_slo.engine.client import OpenAIEngine
from agent_slo.engine.base import ChatRequest
from agent_slo.eval.harness import decode_overhead, overhead_summary

PROMPTS = [f"Write a detailed paragraph about {t}." for t in
           ('the ocean', 'volcanoes', 'the moon', 'bees', 'glaciers', 'deserts', 'rainforests', 'comets')]

def user(p): return [{'role': 'user', 'content': p}]

def decode_tps(comps):
    "Tokens per second over the decode phase (after the first token), summed over a batch."
    toks = sum(c.completion_tokens - 1 for c in comps)
    span = max(c.t_end for c in comps) - min(c.t_first_token for c in comps)
    return toks / span


def bench_batch(eng, reps, tokens):
    b1, b8 = [], []
    for _ in tqdm(range(reps), desc='batch 1 vs 8', leave=False):
        b1.append(decode_tps([eng.complete(ChatRequest(user(PROMPTS[0]), max_tokens=tokens))]))
        b8.append(decode_tps(eng.generate([ChatRequest(user(p), max_tokens=tokens) for p in PROMPTS])))
    return st.median(b1), st.median(b8)

def bench_constrained(eng, reps, tokens):
    "Per-token time free and constrained, and the mask alone: the harness's paired measurement (P3 uses the same)."
    s = overhead_summary(decode_overhead(eng, reps, tokens, progress=False))
    return s['free_ms_per_token'], s['constrained_ms_per_token'], s['mask_ms_per_token']

def bench_server_ttft(eng, reps):
    from agent_slo.serve.gateway import ServerThread
    q = lambda: ChatRequest(user('What is the capital of France?'), max_tokens=8)
    direct = [eng.complete(q()).ttft_s for _ in range(reps)]
    with ServerThread(eng, load_settings(env={})) as srv:
        client = OpenAIEngine(srv.base_url, 'none', model=eng.model_id, settings=load_settings(env={'AOFW_PROVIDER': 'vllm'}))
        client.complete(q())  # warm the connection
        served = [client.complete(q()).ttft_s for _ in tqdm(range(reps), desc='server TTFT', leave=False)]
    return 1000*st.median(direct), 1000*st.median(served)

def bench_setup():
    "Time a fresh clone's `make install` and `make test` (pip's cache is warm on a used machine)."
    root = project_path()
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(['git', 'clone', '-q', str(root), d], check=True)
        t0 = time.time(); subprocess.run(['make', 'install'], cwd=d, check=True, capture_output=True); t1 = time.time()
        r = subprocess.run(['make', 'test'], cwd=d, capture_output=True, text=True); t2 = time.time()
        last = [l for l in r.stdout.splitlines() if ' passed' in l or ' failed' in l][-1:]
    return t1 - t0, t2 - t1, (last[0] if last else r.stdout[-300:])

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--tokens', type=int, default=64)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--setup', action='store_true', help='also time make install and make test in a fresh clone')
    a = ap.parse_args()
    eng = HFEngine(threads=a.threads)
    eng.complete(ChatRequest(user('warm up'), max_tokens=4))
    res = {'threads': a.threads, 'tokens': a.tokens, 'reps': a.reps}
    res['tps_b1'], res['tps_b8'] = bench_batch(eng, a.reps, a.tokens)
    res['free_ms_tok'], res['cons_ms_tok'], res['mask_ms_tok'] = bench_constrained(eng, a.reps, a.tokens)
    res['ttft_direct_ms'], res['ttft_served_ms'] = bench_server_ttft(eng, max(5, 3*a.reps))
    rows = [
        ('decode tok/s, batch 8 (total)', res['tps_b8'], 'batch 1', res['tps_b1'], res['tps_b8']/res['tps_b1']),
        ('ms/token, xgrammar-constrained', res['cons_ms_tok'], 'free decoding', res['free_ms_tok'], res['cons_ms_tok']/res['free_ms_tok']),
        ('grammar mask ms/token', res['mask_ms_tok'], 'free ms/token', res['free_ms_tok'], res['mask_ms_tok']/res['free_ms_tok']),
        ('TTFT ms via serve + openai SDK', res['ttft_served_ms'], 'engine direct', res['ttft_direct_ms'], res['ttft_served_ms']/res['ttft_direct_ms']),
    ]
    if a.setup:
        res['install_s'], res['test_s'], res['test_line'] = bench_setup()
    print(f"\nagent-slo foundation benchmark ({eng.model_id}, {a.threads} threads, {a.tokens} tokens, median of {a.reps})")
    print(f"{'measure':34s} {'value':>9s}   {'baseline':16s} {'value':>9s}  {'ratio':>6s}")
    for name, v, bname, bv, r in rows: print(f"{name:34s} {v:9.2f}   {bname:16s} {bv:9.2f}  {r:6.3f}")
    if a.setup: print(f"fresh clone: make install {res['install_s']:.0f} s, make test {res['test_s']:.0f} s ({res['test_line'].strip()})")
    out = project_path('out', 'bench'); out.mkdir(parents=True, exist_ok=True)
    (out/'foundation.json').write_text(json.dumps(res, indent=1))

if __name__ == '__main__': main()
