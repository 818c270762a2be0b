"""Harness overhead benchmark: what the P1 harness adds on the client side, measured against a bare `openai` loop
on the same `agent-slo serve`, in the same run.

  1. Closed loop: N requests through `run_suite` (request building, streaming, parsing, BFCL judging, an fsynced
     record per request) against the same N request payloads sent by a bare `openai` streaming loop. Blocks of the
     two alternate, so drift on a noisy machine hits both. Reported: seconds per request each way, the difference
     (the harness's client-side overhead per request) and the ratio.
  2. The same overhead measured without the network: `make_record` (parse + judge + record) per completion.
  3. Open loop: the send lag (actual minus scheduled send time) p50/p99 of `run_load` at each rate, against a bare
     asyncio scheduler that sends the same schedule with the bare client.

    .venv/bin/python benchmarks/bench_harness.py [--n 24] [--rates 2 4 8]
"""
import argparse, asyncio, json, statistics as st, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import numpy as np, openai
from tqdm import tqdm

from agent_slo.agent.toolcall import AgentConfig, request_for
from agent_slo.core.config import project_path
from agent_slo.eval.harness import run_suite, run_load, arrival_times, make_record
from agent_slo.core.records import load_records
from agent_slo.serve.gateway import LocalServer
from agent_slo.tasks.bfcl import subset

MODEL = 'SmolLM2-135M-Instruct'

def payload(req):
    p = dict(model=MODEL, messages=req.messages, max_tokens=req.max_tokens, temperature=req.temperature, stream=True,
             stream_options={'include_usage': True}, seed=req.seed)
    if req.json_schema: p['response_format'] = {'type': 'json_schema', 'json_schema': {'name': 'output', 'schema': req.json_schema, 'strict': True}}
    return p

def bare_call(client, p):
    for _ in client.chat.completions.create(**p): pass

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--n', type=int, default=24, help='requests per arm in the closed-loop comparison')
    ap.add_argument('--block', type=int, default=4, help='requests per alternating block')
    ap.add_argument('--rates', type=float, nargs='+', default=[2, 4, 8], help='open-loop rates (req/s)')
    ap.add_argument('--load-n', type=int, default=32, help='requests per open-loop rate')
    a = ap.parse_args()
    cfg = AgentConfig(max_tokens=4, max_calls=1)
    tasks = subset(['simple_python', 'live_simple'], a.n, seed=11)
    res = {'n': a.n}
    with LocalServer({'AGENT_SLO_MAX_QUEUE': 512, 'AGENT_SLO_MAX_BATCH': 8, 'AGENT_SLO_THREADS': 2}) as srv, tempfile.TemporaryDirectory() as d:
        eng = srv.engine(model=MODEL)
        client = openai.OpenAI(base_url=srv.base_url, api_key='none', max_retries=0)
        for t in tasks[:2]: bare_call(client, payload(request_for(t, cfg)))   # warm: grammar cache, connections
        harness_t, bare_t = [], []
        for i in tqdm(range(0, a.n, a.block), desc='closed loop, alternating blocks'):
            block = tasks[i:i + a.block]
            t0 = time.perf_counter()
            for t in block: bare_call(client, payload(request_for(t, cfg)))
            bare_t.append((time.perf_counter() - t0)/len(block))
            t0 = time.perf_counter()
            run_suite(eng, block, cfg, Path(d)/'closed.jsonl', progress=False)
            harness_t.append((time.perf_counter() - t0)/len(block))
        res['bare_s_per_req'], res['harness_s_per_req'] = st.median(bare_t), st.median(harness_t)
        # the record path alone, on completions already measured
        df = load_records(Path(d)/'closed.jsonl')
        from agent_slo.engine.base import Completion
        comps = [Completion(text=r['text'], finish_reason=r['finish_reason'], prompt_tokens=r['prompt_tokens'], completion_tokens=r['completion_tokens'],
                            t_submit=r['t_submit'], t_first_token=r['t_first_token'], t_chunks=r['t_chunks'], chunk_tokens=r['chunk_tokens'],
                            t_end=r['t_end'], engine_id='serve', model_id=MODEL) for r in df.to_dict('records')]
        by_id = {t.id: t for t in tasks}
        t0 = time.perf_counter()
        for r, c in zip(df.to_dict('records'), comps): make_record('b', by_id[r['task_id']], 'h', 0, 0, eng, cfg, c)
        res['record_ms_per_req'] = 1000*(time.perf_counter() - t0)/len(comps)
        # open loop: send lag, harness against a bare asyncio scheduler on the same schedule
        load_tasks = subset(['simple_python', 'live_simple'], a.load_n, seed=12)
        res['lag'] = {}
        for rate in tqdm(a.rates, desc='open loop'):
            out = Path(d)/f'load{rate}.jsonl'
            run_load(eng, load_tasks, cfg, out, rate, seed=3, progress=False)
            lag_h = load_records(out)['send_lag_s'].to_numpy()
            offsets = arrival_times(len(load_tasks), rate, seed=3)
            async def bare():
                loop = asyncio.get_running_loop(); t0 = time.time() + 0.05; lags = []
                with ThreadPoolExecutor(max_workers=len(load_tasks)) as pool:
                    futs = []
                    for t, off in zip(load_tasks, offsets):
                        delay = t0 + off - time.time()
                        if delay > 0: await asyncio.sleep(delay)
                        def send(t=t, sched=t0 + off):
                            lags.append(time.time() - sched); bare_call(client, payload(request_for(t, cfg)))
                        futs.append(loop.run_in_executor(pool, send))
                    await asyncio.gather(*futs)
                return np.array(lags)
            lag_b = asyncio.run(bare())
            res['lag'][rate] = {'harness_p50_ms': 1000*np.percentile(lag_h, 50), 'harness_p99_ms': 1000*np.percentile(lag_h, 99),
                                'bare_p50_ms': 1000*np.percentile(lag_b, 50), 'bare_p99_ms': 1000*np.percentile(lag_b, 99)}
    h, b = res['harness_s_per_req'], res['bare_s_per_req']
    print(f"\nagent-slo harness overhead (against a bare openai streaming loop on the same agent-slo serve; {a.n} requests per arm, median of blocks)")
    print(f"{'closed loop':28s} harness {1000*h:8.1f} ms/req   bare {1000*b:8.1f} ms/req   overhead {1000*(h-b):+7.1f} ms/req   ratio {h/b:.3f}")
    print(f"{'record path alone':28s} parse + BFCL judge + record: {res['record_ms_per_req']:.2f} ms/req")
    for rate, l in res['lag'].items():
        print(f"{'open loop ' + format(rate, 'g') + ' req/s':28s} send lag p50/p99: harness {l['harness_p50_ms']:.2f}/{l['harness_p99_ms']:.2f} ms"
              f"   bare {l['bare_p50_ms']:.2f}/{l['bare_p99_ms']:.2f} ms")
    out = project_path('out', 'bench'); out.mkdir(parents=True, exist_ok=True)
    (out/'harness.json').write_text(json.dumps(res, indent=1, default=str))

if __name__ == '__main__': main()
