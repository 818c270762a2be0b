"""Multi-turn episodes against a real process: a run killed in the middle of an episode resumes from its last recorded step,
without asking any recorded step again and without losing one."""
import signal, subprocess, sys, textwrap, time
from collections import Counter

from agent_slo.core.records import read_records, load_records
from agent_slo.agent.toolcall import AgentConfig
from agent_slo.engine.hf import HFEngine
from agent_slo.tasks.multiturn import load_episodes
from agent_slo.eval.episodes import run_episodes

CFG = dict(max_tokens=64, max_steps=2)
RUNNER = textwrap.dedent('''
    import sys
    from agent_slo.engine.hf import HFEngine
    from agent_slo.tasks.multiturn import load_episodes
    from agent_slo.agent.toolcall import AgentConfig
    from agent_slo.eval.episodes import run_episodes
    ep = [e for e in load_episodes('multi_turn_base') if e.id == sys.argv[2]]
    run_episodes(HFEngine(threads=2), ep, AgentConfig(max_tokens=64, max_steps=2), sys.argv[1], progress=False)
''')

def _episode():
    "A three-turn episode: at least three model calls, so a kill after the first lands mid-episode."
    return min((e for e in load_episodes('multi_turn_base') if len(e.turns) == 3), key=lambda e: sum(len(g) for g in e.ground_truth))

def test_episode_resumes_after_kill(tmp_path):
    ep, out = _episode(), tmp_path/'ep.jsonl'
    script = tmp_path/'runner.py'; script.write_text(RUNNER)
    p = subprocess.Popen([sys.executable, str(script), str(out), ep.id])
    deadline = time.time() + 300
    while time.time() < deadline and (not out.exists() or out.read_text().count('\n') < 1): time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    before = read_records(out)
    assert before and all(r['stage'] == 'episode-step' for r in before), "the kill should land after a step, before the episode ends"
    run_episodes(HFEngine(threads=2), [ep], AgentConfig(**CFG), out, progress=False)
    recs = read_records(out)
    steps = [r for r in recs if r['stage'] == 'episode-step']
    keys = Counter((r['turn'], r['step']) for r in steps)
    assert max(keys.values()) == 1, f"a step was asked twice: {keys}"
    assert all(r in recs for r in before), "the steps recorded before the kill are kept as they were"
    (episode,) = [r for r in recs if r['stage'] == 'episode']
    assert episode['steps'] == len(steps) > len(before)
    assert episode['success'] or episode['error_type'].startswith('multi_turn:'), episode['error_type']
    # greedy decoding: the resumed episode called exactly what an uninterrupted run calls
    whole = load_records(run_episodes(HFEngine(threads=2), [ep], AgentConfig(**CFG), tmp_path/'whole.jsonl', progress=False))
    assert whole[whole['stage'] == 'episode']['calls_norm'].item() == episode['calls_norm']
