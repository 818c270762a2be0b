"""Build one arXiv source bundle per rendered paper: `python tools/build_arxiv_sources.py [--papers out/papers] [--out out/arxiv]`.

Each bundle holds the paper's .tex, its figures as PDF, refs.bib and the .bbl (arXiv does not run BibTeX); it is compiled
with latexmk and XeLaTeX to check it, and zipped. `agent-slo papers` renders the papers first (`make papers`)."""
import sys
from agent_slo.cli.main import main

if __name__ == '__main__': sys.exit(main(['arxiv', *sys.argv[1:]]))
