"The agent-slo command: wires commands to the bands below it."
