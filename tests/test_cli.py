"The console script as a user runs it: clear one-line errors with exit status 2, and the main job."
import subprocess, sys
from pathlib import Path
from agent_slo.core.config import clean_env
from conftest import ROOT
from agent_slo.core.procs import free_port

AGENT_SLO = str(Path(sys.executable).parent/'agent-slo')

def run(*args, timeout=300, **env):
    e = clean_env()
    e.update(env)
    return subprocess.run([AGENT_SLO, *args], env=e, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

def test_malformed_setting_names_the_key():
    r = run('models', MAX_THOUGHT_TOKENS='many')
    assert r.returncode == 2 and 'MAX_THOUGHT_TOKENS' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    r = run('models', AGENT_SLO_MAX_QUEU='3')
    assert r.returncode == 2 and 'unknown environment variable AGENT_SLO_MAX_QUEU' in r.stderr, r.stderr

def test_malformed_config_file(tmp_path):
    p = tmp_path/'bad.yaml'; p.write_text('provider: [embedded\n')
    r = run('--config', str(p), 'models')
    assert r.returncode == 2 and 'not valid YAML' in r.stderr, r.stderr

def test_unreachable_endpoint_is_one_clear_line():
    url = f'http://127.0.0.1:{free_port()}/v1'
    r = run('models', AOFW_PROVIDER='lmstudio', OPENAI_API_BASE=url, AGENT_SLO_MAX_RETRIES='0')
    assert r.returncode == 2 and f'cannot reach {url}' in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_models_and_chat_on_embedded():
    r = run('models')
    assert r.returncode == 0 and r.stdout.strip() == 'SmolLM2-135M-Instruct', r.stderr
    r = run('chat', 'Name a fruit as JSON.', '--max-tokens', '24', '--schema',
            '{"type": "object", "properties": {"fruit": {"type": "string", "maxLength": 16}}, "required": ["fruit"]}')
    assert r.returncode == 0 and r.stdout.strip().startswith('{"fruit": "') and 'TTFT' in r.stderr, (r.stdout, r.stderr)

def test_chat_honours_the_adapter_setting(tmp_path):
    r = run('chat', 'hi', '--max-tokens', '4', AGENT_SLO_ARTIFACTS=str(tmp_path), AGENT_SLO_ADAPTER='tool-missing')
    assert r.returncode == 2 and "no adapter named 'tool-missing'" in r.stderr and 'Traceback' not in r.stderr, r.stderr

def test_demo_main_job():
    r = run('demo', timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    for step in ('chat', 'tool call', 'batch 8', 'served, streamed'): assert step in r.stdout, r.stdout
    assert 'Paris' in r.stdout

def test_train_config_errors_are_one_line(tmp_path):
    r = run('train', 'grpo', '-p', 'aggregation="mean"')
    assert r.returncode == 2 and "aggregation: expected" in r.stderr and "got 'mean'" in r.stderr and 'Traceback' not in r.stderr, r.stderr
    r = run('train', 'dpo', '-p', 'betta=0.2')
    assert r.returncode == 2 and "unknown key 'betta'" in r.stderr, r.stderr
    r = run('train', 'dpo', '-p', 'max_steps="ten"')
    assert r.returncode == 2 and "max_steps: expected int, got 'ten'" in r.stderr, r.stderr
    p = tmp_path/'rm.yaml'; p.write_text('train:\n  stage: rm\n  reward_weights: {schema: 1, speed: 2}\n')
    r = run('train', 'rm', '--config', str(p))
    assert r.returncode == 2 and "unknown GRPO reward(s) ['speed']" in r.stderr and str(p) in r.stderr, r.stderr
    r = run('train', 'dpo', '--config', str(ROOT/'configs'/'rl'/'sft.yaml'))
    assert r.returncode == 2 and 'is a sft config, not dpo' in r.stderr, r.stderr
    r = run('train', 'dpo', '-p', 'parent="no-such-adapter"', AGENT_SLO_ARTIFACTS=str(tmp_path/'art'))
    assert r.returncode == 2 and "no adapter named 'no-such-adapter'" in r.stderr, r.stderr

def test_reward_probe_and_compare(tmp_path):
    "`agent-slo reward probe` and `agent-slo compare` on registered (random) reward heads and a registered policy adapter: the scores are the scorer's, the moved dimensions are named."
    import os, subprocess, sys
    from agent_slo.core.artifacts import AdapterRegistry
    from agent_slo.core.config import load_settings
    from agent_slo.engine.hf import random_adapter
    from agent_slo.engine.reward import RewardHead, random_reward_head
    reg = AdapterRegistry(tmp_path/'art')
    reg.register('tool-rm', random_reward_head(tmp_path/'rm1'), {'stage': 'rm'})
    reg.register('tool-rm-vector', random_reward_head(tmp_path/'rm5', 5, seed=1), {'stage': 'rm', 'metrics': {'label_mean': [0.5, 0.3, 2.0, 90.0, 0.1], 'label_std': [0.5, 0.4, 1.0, 40.0, 0.2]}})
    reg.register('noisy', random_adapter(tmp_path/'pol', r=8, alpha=64, targets=('q_proj', 'v_proj'), seed=3), {})
    env = {**os.environ, 'AGENT_SLO_ARTIFACTS': str(tmp_path/'art')}
    exe = [str(Path(sys.executable).parent/'agent-slo')]
    p = subprocess.run(exe + ['reward', 'probe', '--prompt', 'What is the capital of France?', '--response', 'Paris.', '--response', 'I refuse to say.'],
                       capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert 'reward models: tool-rm@v1 (scalar), tool-rm-vector@v1' in p.stdout and '(reference)' in p.stdout and 'r_succ' in p.stdout, p.stdout
    y = RewardHead('tool-rm', load_settings(env={'AGENT_SLO_ARTIFACTS': str(tmp_path/'art')})).score([{'role': 'user', 'content': 'What is the capital of France?'}], ['Paris.'])
    assert f'{y[0, 0]:.3f}' in p.stdout.splitlines()[2], (y, p.stdout)
    p = subprocess.run(exe + ['compare', '--adapter', 'noisy@v1', '--prompt', 'Say hi.', '--max-tokens', '12'], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert 'against SmolLM2-135M-Instruct+noisy@v1' in p.stdout and 'Δscalar' in p.stdout and 'noisy@v1' in p.stdout.splitlines()[1], p.stdout
    p = subprocess.run(exe + ['compare', '--adapter', 'nosuch', '--prompt', 'hi'], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2 and "no adapter named 'nosuch'" in p.stderr, p.stderr
