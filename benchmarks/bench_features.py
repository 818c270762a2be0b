"""Token-feature overhead benchmark (P3 controller): the cost per token of computing the controller's features, in one run.

Paired requests on the embedded engine, alternating features off and on (same prompt, same greedy tokens), one at a time,
with and without a JSON-Schema constraint. Printed: ms/token with features against without (the ratio), and the difference.
The features are entropy, varentropy, the top-2 gap, DeepConf's conf, z-entropy, hidden-state drift (a forward hook on the
final norm), the chosen token's log-prob, and the mean hidden state.

    .venv/bin/python benchmarks/bench_features.py [--reps 6] [--tokens 64]
"""
import argparse, json, statistics
import pandas as pd
from agent_slo.core.config import project_path
from agent_slo.engine.hf import HFEngine
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

if __name__ == '__main__': main()
