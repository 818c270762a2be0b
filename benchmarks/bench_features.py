"""Token-feature overhead benchmark (P3 controller): the cost per token of computing the controller's features, in one run.

Paired requests on the embedded engine, alternating features off and on (same prompt, same greedy tokens), one at a time,
with and without a JSON-Schema constraint. Printed: ms/token with features against without (the ratio), and the difference.
Then the controller's segment decoding on BFCL tasks: the same greedy answer decoded by `generate` in one pass, by segments
from one prefilled prompt (`prompt_cache`, as the controller runs), and by segments that each prefill the prompt again.
Printed: wall time per answer, and each segment mode's ratio to `generate`.
The features are entropy, varentropy, the top-2 gap, DeepConf's conf, z-entropy, hidden-state drift (a forward hook on the
final norm), the chosen token's log-prob, and the mean hidden state.

    .venv/bin/python benchmarks/bench_features.py [--reps 6] [--tokens 64] [--tasks 6]
"""
import argparse, json, statistics, time
import pandas as pd
from agent_slo.core.config import project_path
from agent_slo.engine.hf import HFEngine, decode_segment, prompt_cache
from agent_slo.agent.toolcall import AgentConfig, request_for
from agent_slo.tasks.bfcl import subset
from agent_slo.engine.base import ChatRequest

PROMPT = [{'role': 'user', 'content': 'Write a long, detailed paragraph about the history of the bicycle.'}]
SCHEMA = {'type': 'object', 'properties': {'text': {'type': 'string'}}, 'required': ['text']}

def ms_per_token(c) -> float:
    "Decode time per token after the first (the prefill is the same with and without features)."
    return 1000*(c.t_end - c.t_first_token)/max(c.completion_tokens - 1, 1)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reps', type=int, default=6)
    ap.add_argument('--tokens', type=int, default=64)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--tasks', type=int, default=6, help="BFCL tasks for the segment-decoding comparison (0: skip it)")
    a = ap.parse_args()
    eng = HFEngine(threads=a.threads)
    eng.complete(ChatRequest(PROMPT, max_tokens=4))
    rows = []
    for name, schema in (('free', None), ('constrained', SCHEMA)):
        off, on = [], []
        for i in range(a.reps):
            pair = [False, True] if i % 2 == 0 else [True, False]          # alternate the order: drift in machine speed cancels
            for f in pair:
                c = eng.complete(ChatRequest(PROMPT, max_tokens=a.tokens, json_schema=schema, features=f))
                (on if f else off).append((ms_per_token(c), c.completion_tokens))
        m_off, m_on = statistics.median(x for x, _ in off), statistics.median(x for x, _ in on)
        rows.append({'decoding': name, 'tokens': statistics.median(n for _, n in on), 'off_ms_per_token': m_off, 'on_ms_per_token': m_on,
                     'ratio': m_on/m_off, 'overhead_ms_per_token': m_on - m_off})
    print(f"\nagent-slo token-feature benchmark (SmolLM2-135M, {a.threads} threads, up to {a.tokens} tokens, median of {a.reps} paired requests)")
    print(f"{'decoding':12s} {'tokens':>6s} {'off ms/tok':>10s} {'on ms/tok':>9s} {'ratio':>6s} {'Δ ms/tok':>8s}")
    for r in rows:
        print(f"{r['decoding']:12s} {r['tokens']:6.0f} {r['off_ms_per_token']:10.2f} {r['on_ms_per_token']:9.2f} {r['ratio']:6.3f} {r['overhead_ms_per_token']:+8.2f}")
    out = project_path('out', 'bench'); out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out/'features.csv', index=False)
    (out/'features.json').write_text(json.dumps(rows, indent=1, default=float))
    if a.tasks: segments(eng, a.tasks, out)

def by_segments(eng, req, cached:bool) -> tuple[list[int], float]:
    "The greedy answer decoded segment by segment (continue at every decision point), and its wall time."
    t0 = time.time()
    src, toks = (prompt_cache(eng, req) if cached else req), []
    while True:
        seg = decode_segment(eng, src, toks)
        toks += seg.tokens
        if seg.finish in ('stop', 'length'): return toks, time.time() - t0

def segments(eng, n:int, out):
    "Wall time per answer: generate in one pass, segments from one prefilled prompt, segments that each prefill again."
    rows = []
    for t in subset(['simple_python', 'live_simple'], n, split='test'):
        req = request_for(t, AgentConfig())
        t0 = time.time(); c = eng.generate([req])[0]; g = time.time() - t0
        toks_c, w_c = by_segments(eng, req, True)
        toks_u, w_u = by_segments(eng, req, False)
        same = eng.tok.decode(toks_c, skip_special_tokens=True) == eng.tok.decode(toks_u, skip_special_tokens=True) == c.text
        rows.append({'task_id': t.id, 'tokens': c.completion_tokens, 'generate_s': g, 'cached_s': w_c, 'uncached_s': w_u, 'same_answer': same})
    d = pd.DataFrame(rows)
    d.to_csv(out/'segments.csv', index=False)
    print(f"\nsegment decoding on {len(d)} BFCL tasks (greedy, constrained, continue at every decision point; median per answer)")
    print(f"{'mode':36s} {'s/answer':>8s} {'ratio to generate':>17s}")
    for k, lab in (('generate_s', 'generate (one pass)'), ('cached_s', 'segments, one prefilled prompt'), ('uncached_s', 'segments, a prefill per segment')):
        print(f"{lab:36s} {d[k].median():8.2f} {(d[k]/d['generate_s']).median():17.2f}")
    print(f"the same answer in all three modes: {int(d['same_answer'].sum())} of {len(d)}")

if __name__ == '__main__': main()
