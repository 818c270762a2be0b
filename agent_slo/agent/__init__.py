"The agent: prompts, the tool-call contract, constrained or free decoding, parsing and repair, votes and stopping rules."
