"The gateway: an OpenAI-compatible API over the engines, with backpressure, metrics and adapters; no model or training logic."
