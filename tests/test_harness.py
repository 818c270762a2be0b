"""The harness against real processes and servers: a run killed half-way resumes without loss or duplicates,
engine failures become error records (and are retried on resume), and the open-loop generator keeps its schedule."""
import json, signal, subprocess, sys, textwrap, time
from collections import Counter
import numpy as np

from agent_slo.agent.toolcall import AgentConfig
from agent_slo.eval.harness import run_suite, run_load, arrival_times, config_id, find_max_rate, requests_left
from agent_slo.core.records import read_records, load_records
from agent_slo.tasks.bfcl import subset
from agent_slo.core.procs import free_port
from test_client_errors import Scripted

CFG = AgentConfig(max_tokens=48, max_calls=1)
MODEL = 'SmolLM2-135M-Instruct'

RUNNER = textwrap.dedent('''
    import sys
    from agent_slo.engine.hf import HFEngine
    from agent_slo.tasks.bfcl import subset
    from agent_slo.agent.toolcall import AgentConfig
    from agent_slo.eval.harness import run_suite
    run_suite(HFEngine(threads=2), subset('simple_python', 8, seed=5), AgentConfig(max_tokens=48, max_calls=1),
              sys.argv[1], batch_size=2, progress=False)
''')

def test_resume_after_kill(tmp_path):
    out = tmp_path/'run.jsonl'
    script = tmp_path/'runner.py'; script.write_text(RUNNER)
    p = subprocess.Popen([sys.executable, str(script), str(out)])
    deadline = time.time() + 300
    while time.time() < deadline and (not out.exists() or out.read_text().count('\n') < 2): time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    n_before = len(read_records(out))
    assert 2 <= n_before < 8, f"the kill should land mid-run, after {n_before} records"
    subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=600)
    recs = read_records(out)
    keys = Counter((r['task_id'], r['repeat']) for r in recs)
    assert len(keys) == 8, "every task has a record"
    assert max(keys.values()) == 1, f"no task was recorded twice: {keys}"
    assert out.read_text().endswith('\n') and all(json.loads(l) for l in out.read_text().splitlines())

def test_engine_errors_become_records_and_are_retried(tmp_path, load_server):
    tasks = subset('live_simple', 3, seed=1)
    out = tmp_path/'err.jsonl'
    from agent_slo.engine.client import OpenAIEngine
    from agent_slo.core.config import load_settings
    dead = OpenAIEngine(f'http://127.0.0.1:{free_port()}/v1', 'none', model=MODEL,   # same config, nobody listening
                        settings=load_settings(env={'AOFW_PROVIDER': 'vllm'}), max_retries=0)
    dead.engine_id = 'serve:embedded'   # the same agent-slo serve set-up as `live` below (the gateway on its in-process backend), while its server is down
    run_suite(dead, tasks, CFG, out, progress=False)
    recs = read_records(out)
    assert [r['error_type'] for r in recs] == ['unreachable']*3 and all(r['error_source'] == 'engine' for r in recs)
    assert all('cannot reach' in r['error_message'] for r in recs)
    live = load_server.engine(model=MODEL)
    assert config_id(CFG, live) == config_id(CFG, dead)
    run_suite(live, tasks, CFG, out, progress=False)   # resume: the failed keys are tried again
    df = load_records(out)
    assert len(read_records(out)) == 6 and len(df) == 3
    assert df['error_source'].ne('engine').all() and (df['ttft_s'] > 0).all()

def test_timeouts_and_5xx_become_records(tmp_path):
    tasks = subset('simple_python', 2, seed=2)
    from agent_slo.engine.client import OpenAIEngine
    from agent_slo.core.config import load_settings
    with Scripted(['sleep']) as slow, Scripted([500]) as broken:
        for srv, etype in ((slow, 'timeout'), (broken, 'server_error')):
            eng = OpenAIEngine(srv.url, 'k', model='m', settings=load_settings(env={'AOFW_PROVIDER': 'vllm'}), timeout=1, max_retries=1)
            out = tmp_path/f'{etype}.jsonl'
            run_suite(eng, tasks, CFG, out, progress=False)
            assert [r['error_type'] for r in read_records(out)] == [etype]*2

def test_garbage_output_is_a_checker_error(tmp_path):
    "A server that answers prose: recorded as BFCL's wrong-format error, not a crash."
    tasks = subset('simple_python', 2, seed=3)
    from agent_slo.engine.client import OpenAIEngine
    from agent_slo.core.config import load_settings
    with Scripted(['ok']) as srv:   # streams 'Hello!' whatever it is asked
        eng = OpenAIEngine(srv.url, 'k', model='m', settings=load_settings(env={'AOFW_PROVIDER': 'vllm'}))
        run_suite(eng, tasks, AgentConfig(constrained=False), tmp_path/'g.jsonl', progress=False)
    recs = read_records(tmp_path/'g.jsonl')
    assert all(r['error_type'] == 'ast_decoder:decoder_wrong_output_format' and r['error_source'] == 'checker'
               and not r['json_valid'] and r['calls_norm'] == '<unparseable>' for r in recs), recs

def test_open_loop_keeps_its_schedule_on_a_real_server(tmp_path, load_server):
    tasks = subset(['simple_python', 'live_simple'], 16, seed=4)
    rate, out = 4.0, tmp_path/'load.jsonl'
    run_load(load_server.engine(), tasks, AgentConfig(max_tokens=8, max_calls=1), out, rate, seed=7, progress=False)
    df = load_records(out)
    assert len(df) == 16 and (df['load_level'] == rate).all() and (df['mode'] == 'open').all()
    offsets = arrival_times(16, rate, seed=7)
    sched = np.sort(df['t_scheduled'].to_numpy())
    np.testing.assert_allclose(sched - sched[0], offsets - offsets[0], atol=1e-6)   # the seeded schedule, rescaled to n/rate
    lag = df['send_lag_s'].to_numpy()
    # sends keep to the schedule while the server is busy: a closed loop would fall behind by whole service times (seconds
    # here); the bounds leave room for a loaded 2-core machine, whose thread wake-ups alone can take a few hundred ms
    assert (lag >= 0).all() and np.median(lag) < 0.1 and np.percentile(lag, 99) < 1.0, lag
    achieved = 15/(df['t_submit'].max() - df['t_submit'].min())
    expected = 15/(offsets[-1] - offsets[0])
    assert abs(achieved/expected - 1) < 0.25, (achieved, expected)
    assert df['error_type'].ne('rate_limited').all() and (df['ttft_s'] > 0).all()

def test_find_max_rate_on_a_real_server(tmp_path, load_server):
    tasks = subset('simple_python', 4, seed=6)
    res = find_max_rate(load_server.engine(), tasks, AgentConfig(max_tokens=4, max_calls=1), tmp_path/'search.jsonl',
                        slo={'e2e_s': 60.0}, target=0.0, rates=(1, 2), bisect_steps=0, progress=False)
    assert res['max_rate'] == 2 and set(res['tried']) == {1, 2}
    res = find_max_rate(load_server.engine(), tasks, AgentConfig(max_tokens=4, max_calls=1), tmp_path/'search.jsonl',
                        slo={'ttft_s': 1e-4}, target=0.5, rates=(1, 2), bisect_steps=0, progress=False)
    assert res['max_rate'] is None and res['tried'][1] == 0.0

LOAD_RUNNER = textwrap.dedent('''
    import sys
    from agent_slo.engine.client import OpenAIEngine
    from agent_slo.core.config import load_settings
    from agent_slo.tasks.bfcl import subset
    from agent_slo.agent.toolcall import AgentConfig
    from agent_slo.eval.harness import run_load
    eng = OpenAIEngine(sys.argv[2], 'k', model='m', settings=load_settings(env={'AOFW_PROVIDER': 'vllm'}))
    run_load(eng, subset('simple_python', 6, seed=8), AgentConfig(constrained=False, max_calls=1), sys.argv[1], 0.5, seed=3, progress=False)
''')

def test_open_loop_killed_while_sending_keeps_what_finished(tmp_path):
    "Answers are written as they land, not after the last send: a run killed mid-schedule keeps them. The resumed run is sent again whole (its remainder alone would be a lighter load), the interrupted records set aside, never counted."
    out = tmp_path/'load.jsonl'
    with Scripted(['ok']) as srv:   # answers at once: every request but the unsent ones finishes before the kill
        p = subprocess.Popen([sys.executable, '-c', LOAD_RUNNER, str(out), srv.url])
        t0 = time.time()
        while time.time() - t0 < 60 and not (out.exists() and len(read_records(out)) >= 2): time.sleep(0.05)
        p.send_signal(signal.SIGKILL); p.wait()
        kept = read_records(out)
        # 6 requests at 0.5 req/s take about 12 s to send; the kill came when two had answered
        assert 2 <= len(kept) < 6, len(kept)
        assert srv.hits < 6   # killed while still sending
        tasks = subset('simple_python', 6, seed=8)
        assert requests_left(out, tasks, 'load', 0.5) == 6 - len(kept)                 # what the resume will find missing
        assert requests_left(out, tasks, 'load', 0.5, config_hash='other') == 6          # another configuration's run has none of them
        assert requests_left(out, tasks, 'load', 1.0) == 6 and requests_left(out, tasks, 'load', 0.5, repeats=2) == 12 - len(kept)
        from agent_slo.engine.client import OpenAIEngine
        from agent_slo.core.config import load_settings
        eng = OpenAIEngine(srv.url, 'k', model='m', settings=load_settings(env={'AOFW_PROVIDER': 'vllm'}))
        run_load(eng, subset('simple_python', 6, seed=8), AgentConfig(constrained=False, max_calls=1), out, 0.5, seed=3, progress=False)
    recs = read_records(out)
    ids = Counter(r['task_id'] for r in recs)
    assert len(recs) == 6 and set(ids.values()) == {1}, ids   # each task once: nothing lost, nothing twice
    assert len({r['run_id'] for r in recs}) == 1 and not {r['run_id'] for r in recs} & {r['run_id'] for r in kept}   # one whole new run
    aside = read_records(tmp_path/'load.jsonl.interrupted')
    assert sorted(r['task_id'] for r in aside) == sorted(r['task_id'] for r in kept)   # the interrupted part is kept beside it
    assert len(read_records(tmp_path)) == 6   # and never read as results from the folder
    n = srv.hits
    run_load(eng, subset('simple_python', 6, seed=8), AgentConfig(constrained=False, max_calls=1), out, 0.5, seed=3, progress=False)
    assert srv.hits == n and len(read_records(out)) == 6   # a recorded run is not sent again
    assert requests_left(out, subset('simple_python', 6, seed=8), 'load', 0.5) == 0
