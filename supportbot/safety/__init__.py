"""Safety: what keeps untrusted text (customers' messages, documents, model output) harmless.

``hygiene`` cleans questions and neutralises instructions in passages, ``guard`` keeps
the prompt's instructions and configuration out of answers, ``redact`` finds and masks
personal data, ``render`` turns any text into Markdown that cannot run or load anything,
and ``ratelimit`` bounds how fast one conversation may send messages.
"""
