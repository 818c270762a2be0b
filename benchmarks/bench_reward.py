"""Reward rescoring benchmark: a 400-point λ/μ/γ grid over 10,000 records.

Baseline, measured in the same run: the direct way, recomputing every record's reward vector and the per-config
means at each grid point. Against it: `rescore_grid`, which uses that R is linear in the weights and rescores
from the per-configuration mean vectors. Both answers are checked equal before timing is reported.

    .venv/bin/python benchmarks/bench_reward.py [--records 10000] [--configs 20]
"""
import argparse, time
import numpy as np, pandas as pd
from tqdm import tqdm
from agent_slo.eval.reward import RewardConfig, config_scores, rescore_grid

def records(n, k, seed=0):
    "Synthetic records with the columns the reward reads (speed does not depend on where they came from)."
    rng = np.random.default_rng(seed)
    cfg = rng.integers(0, k, n)
    return pd.DataFrame({'config_hash': [f'c{c:02d}' for c in cfg], 'stage': 'stability', 'load_level': None,
                         'task_id': [f't{t}' for t in rng.integers(0, n//5, n)], 'schema_valid': rng.random(n) < 0.8,
                         'success': rng.random(n) < 0.3, 'error_source': np.where(rng.random(n) < 0.01, 'engine', None),
                         'e2e_s': rng.gamma(2, 4, n), 'ttft_s': rng.gamma(2, 0.5, n), 'completion_tokens': rng.integers(10, 128, n),
                         'calls_norm': [f'a{x}' for x in rng.integers(0, 3, n)]})

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--records', type=int, default=10_000)
    ap.add_argument('--configs', type=int, default=20)
    a = ap.parse_args()
    df = records(a.records, a.configs)
    lams, mus, gammas = np.linspace(0, 1, 10), np.linspace(0, 0.5, 8), np.linspace(0, 1, 5)   # 400 points
    t0 = time.perf_counter()
    sc = config_scores(df)
    grid = rescore_grid(sc, lams, mus, gammas)
    fast = time.perf_counter() - t0
    t0 = time.perf_counter(); direct = []
    for l in tqdm(lams, desc='direct rescoring'):
        for m in mus:
            for g in gammas: direct.append(config_scores(df, RewardConfig(lam=l, mu=m, gamma=g))['R'].to_numpy())
    slow = time.perf_counter() - t0
    np.testing.assert_allclose(np.concatenate(direct), grid['R'].to_numpy(), rtol=1e-9, atol=1e-12)
    print(f"\nreward rescoring: {len(lams)*len(mus)*len(gammas)} grid points x {a.configs} configs over {a.records:,} records")
    print(f"rescore_grid (linear in the weights)  {fast:8.3f} s")
    print(f"baseline: recompute per grid point    {slow:8.3f} s")
    print(f"speed-up                              {slow/fast:8.1f}x   (answers equal to 1e-9)")

if __name__ == '__main__': main()
