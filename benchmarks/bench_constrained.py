"""Constrained-decoding overhead benchmark (P3): the cost of a JSON-Schema constraint per token, in one run.

Paired requests (same prompt, free and under a schema that admits free text, alternating, one at a time) on two paths:
  - the embedded engine, xgrammar's mask in the logits processor; also the mask alone, replayed on the output;
  - the OpenAI-compatible path: `agent-slo serve` on loopback (a subprocess) with `response_format`, via the openai client.
Printed: ms/token constrained against free (the ratio), and the mask's share of a token, next to the published anchors
(llguidance about 1-3% of inter-token time; xgrammar's mask about 0.3 ms/token).

    .venv/bin/python benchmarks/bench_constrained.py [--reps 6] [--tokens 64]
"""
import argparse, json
import pandas as pd
from agent_slo.core.config import project_path
from agent_slo.engine.hf import HFEngine
from agent_slo.engine.base import ChatRequest
from agent_slo.eval.harness import decode_overhead, overhead_summary
from agent_slo.serve.gateway import LocalServer

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--reps', type=int, default=6)
    ap.add_argument('--tokens', type=int, default=64)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    eng = HFEngine(threads=a.threads)
    eng.complete(ChatRequest([{'role': 'user', 'content': 'warm up'}], max_tokens=4))
    rows = [{'path': 'embedded (xgrammar)', **overhead_summary(decode_overhead(eng, a.reps, a.tokens))}]
    del eng   # one engine at a time on a small machine
    with LocalServer({'AGENT_SLO_THREADS': a.threads, 'AGENT_SLO_MAX_BATCH': 1}) as srv:
        client = srv.engine()
        client.complete(ChatRequest([{'role': 'user', 'content': 'warm up'}], max_tokens=4))
        rows.append({'path': 'OpenAI API (response_format)', **overhead_summary(decode_overhead(client, a.reps, a.tokens))})
    print(f"\nagent-slo constrained-decoding benchmark (SmolLM2-135M, {a.threads} threads, {a.tokens} tokens, median of {a.reps} paired requests)")
    print(f"{'path':30s} {'free ms/tok':>11s} {'constr ms/tok':>13s} {'ratio':>6s} {'Δ ms/tok':>8s} {'mask ms/tok':>11s} {'mask share':>10s}")
    for r in rows:
        mask = f"{r['mask_ms_per_token']:11.3f} {100*r['mask_share_of_token']:9.2f}%" if 'mask_ms_per_token' in r else f"{'n/a':>11s} {'n/a':>10s}"
        print(f"{r['path']:30s} {r['free_ms_per_token']:11.2f} {r['constrained_ms_per_token']:13.2f} {r['overhead_ratio']:6.3f} {r['overhead_ms_per_token']:+8.2f} {mask}")
    print("anchors: llguidance ~1-3% of inter-token time; xgrammar mask ~0.3 ms/token")
    out = project_path('out', 'bench'); out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out/'constrained.csv', index=False)
    (out/'constrained.json').write_text(json.dumps(rows, indent=1, default=float))

if __name__ == '__main__': main()
