"One Engine interface: the in-process transformers engine and the OpenAI-compatible client; nothing about tasks or tools."
