"""Gateway overhead benchmark: bare vLLM against the same vLLM through `agent-slo serve`, and against the in-process engine, in one run.

One managed vLLM (fcfs, bf16, the embedded SmolLM2) is started; a gateway (`agent-slo serve` in its own process) relays to it
as a URL backend, the way it relays to the vLLM it manages. With fixed-length outputs (`ignore_eos`), same prompts:
  - synchronous: paired requests, bare and gateway alternating (order flipped every pair), one at a time;
  - open loop: Poisson arrivals at one rate, bare and gateway runs alternating;
  - the in-process engine behind the old static-batching server, synchronous, for scale (a different engine: fp32 transformers).
Printed: TTFT and TPOT (time per output token after the first) of each path, and the gateway/bare ratios with 95% BCa
intervals of the paired ratio (synchronous) and a Wilcoxon signed-rank test. Goal: both ratios within 1.05.

    .venv/bin/python benchmarks/bench_serve.py [--pairs 30] [--rate 4] [--open-n 40] [--tokens 32]
"""
import argparse, json, threading, time
import numpy as np, pandas as pd
from scipy.stats import wilcoxon
from tqdm.auto import tqdm
import openai

from agent_slo.core.config import project_path
from agent_slo.core.stats import bootstrap_ci
from agent_slo.engine.vllm import VLLMServer
from agent_slo.eval.harness import arrival_times
from agent_slo.serve.gateway import LocalServer

PROMPT = ("You are a travel assistant. A user plans a three-day trip to Lisbon in spring and asks for a short plan with one museum, "
          "one viewpoint and one restaurant each day, keeping walking distances short. Write the plan.")

def one(client, model, tokens, seed):
    "One streamed request: (TTFT s, TPOT s, output tokens), timed by the client."
    t0 = time.perf_counter(); first = None; n = 0
    for ch in client.chat.completions.create(model=model, messages=[{'role': 'user', 'content': PROMPT}], max_tokens=tokens, temperature=0,
                                             seed=seed, stream=True, stream_options={'include_usage': True}, extra_body={'ignore_eos': True}):
        if ch.choices and ch.choices[0].delta.content: first = first or time.perf_counter()
        if ch.usage: n = ch.usage.completion_tokens
    end = time.perf_counter()
    return first - t0, (end - first)/max(n - 1, 1), n

def open_loop(client, model, tokens, rate, n, seed):
    "n requests at `rate`/s, Poisson arrivals: their (TTFT, TPOT, tokens)."
    out, t0, ts = [None]*n, time.perf_counter() + 0.05, []
    def run(i): out[i] = one(client, model, tokens, seed + i)
    for i, off in enumerate(arrival_times(n, rate, seed=seed)):
        time.sleep(max(0, t0 + off - time.perf_counter()))
        t = threading.Thread(target=run, args=(i,)); t.start(); ts.append(t)
    for t in ts: t.join()
    return out

def ratio_row(name, bare, gw, paired):
    b, g = np.asarray(bare, float), np.asarray(gw, float)
    row = {'measure': name, 'bare_ms_p50': 1000*np.median(b), 'gateway_ms_p50': 1000*np.median(g), 'ratio_p50': np.median(g)/np.median(b)}
    if paired:
        est, lo, hi = bootstrap_ci(g/b, np.median)
        row.update(paired_ratio=est, ratio_lo=lo, ratio_hi=hi, wilcoxon_p=float(wilcoxon(g, b).pvalue))
    else: row.update(bare_ms_p95=1000*np.quantile(b, .95), gateway_ms_p95=1000*np.quantile(g, .95), ratio_p95=np.quantile(g, .95)/np.quantile(b, .95))
    return row

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--pairs', type=int, default=30)
    ap.add_argument('--rate', type=float, default=4.0)
    ap.add_argument('--open-n', type=int, default=40)
    ap.add_argument('--tokens', type=int, default=32)
    ap.add_argument('--inprocess', type=int, default=5, help="synchronous requests on the in-process engine (0: skip)")
    a = ap.parse_args()
    rows, t_start = [], time.time()
    with VLLMServer() as vllm:
        print(f"vLLM ready in {vllm.start_s:.0f} s (compile cache {'warm' if vllm.warm else 'cold'})")
        with LocalServer({'AGENT_SLO_BACKENDS': f'vllm={vllm.base_url}', 'AGENT_SLO_MAX_QUEUE': 256}) as gw:
            paths = {'bare': openai.OpenAI(base_url=vllm.base_url, api_key='EMPTY', max_retries=0),
                     'gateway': openai.OpenAI(base_url=gw.base_url, api_key='none', max_retries=0)}
            for c in paths.values():
                for _ in range(3): one(c, vllm.model_id, a.tokens, 0)   # warm both paths
            sync = {'bare': [], 'gateway': []}
            for i in tqdm(range(a.pairs), desc='synchronous pairs'):
                for p in (('bare', 'gateway') if i % 2 == 0 else ('gateway', 'bare')): sync[p].append(one(paths[p], vllm.model_id, a.tokens, i))
            assert all(n == a.tokens for p in sync for _, _, n in sync[p]), "ignore_eos should fix the output length"
            rows += [{'load': 'synchronous', **ratio_row(m, [x[k] for x in sync['bare']], [x[k] for x in sync['gateway']], True)} for k, m in ((0, 'TTFT'), (1, 'TPOT'))]
            ol = {'bare': [], 'gateway': []}
            for rep in tqdm(range(2), desc=f'open loop at {a.rate:g} req/s'):
                for p in (('bare', 'gateway') if rep == 0 else ('gateway', 'bare')): ol[p] += open_loop(paths[p], vllm.model_id, a.tokens, a.rate, a.open_n//2, 100*rep)
            rows += [{'load': f'open loop {a.rate:g} req/s', **ratio_row(m, [x[k] for x in ol['bare']], [x[k] for x in ol['gateway']], False)} for k, m in ((0, 'TTFT'), (1, 'TPOT'))]
    if a.inprocess:
        with LocalServer({'AGENT_SLO_THREADS': 2, 'AGENT_SLO_MAX_BATCH': 1}) as old:
            c = openai.OpenAI(base_url=old.base_url, api_key='none', max_retries=0)
            inproc = [one(c, 'SmolLM2-135M-Instruct', a.tokens, i) for i in tqdm(range(a.inprocess + 1), desc='in-process engine')][1:]
        for k, m in ((0, 'TTFT'), (1, 'TPOT')):
            b = [x[k] for x in sync['bare']]
            rows.append({'load': 'synchronous', 'measure': m, 'bare_ms_p50': 1000*np.median(b), 'inprocess_ms_p50': 1000*np.median([x[k] for x in inproc]),
                         'inprocess_over_vllm': np.median([x[k] for x in inproc])/np.median(b)})
    df = pd.DataFrame(rows)
    print(f"\nagent-slo gateway benchmark (SmolLM2-135M on vLLM-CPU bf16, {a.tokens} output tokens; {a.pairs} synchronous pairs, "
          f"{a.open_n} open-loop requests per path at {a.rate:g} req/s; {time.time() - t_start:.0f} s)")
    for _, r in df[df['gateway_ms_p50'].notna()].iterrows():
        line = f"{r['load']:22s} {r['measure']:5s} bare {r['bare_ms_p50']:7.1f} ms  gateway {r['gateway_ms_p50']:7.1f} ms  ratio(p50) {r['ratio_p50']:.3f}"
        if not pd.isna(r.get('paired_ratio')):
            sig = 'significant' if r['wilcoxon_p'] < 0.05 else 'not significant'
            line += f"  paired ratio {r['paired_ratio']:.3f} [{r['ratio_lo']:.3f}, {r['ratio_hi']:.3f}], Wilcoxon p={r['wilcoxon_p']:.3g} ({sig})"
        else: line += f"  p95 {r['bare_ms_p95']:.1f} vs {r['gateway_ms_p95']:.1f} ms, ratio(p95) {r['ratio_p95']:.3f}"
        print(line)
    for _, r in (df[df['inprocess_ms_p50'].notna()] if 'inprocess_ms_p50' in df else df.iloc[:0]).iterrows():
        print(f"{'in-process vs vLLM':22s} {r['measure']:5s} vLLM {r['bare_ms_p50']:7.1f} ms  in-process {r['inprocess_ms_p50']:7.1f} ms  ratio {r['inprocess_over_vllm']:.2f} (different engines)")
    print("goal: gateway/bare within 1.05 on TTFT and TPOT")
    out = project_path('out', 'bench'); out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out/'serve.csv', index=False)
    (out/'serve.json').write_text(json.dumps(df.to_dict('records'), indent=1, default=float))

if __name__ == '__main__': main()
