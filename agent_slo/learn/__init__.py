"RL: training data, SFT, preference pairs, reward models, DPO, GRPO and the evaluation of trained models."
