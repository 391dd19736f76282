"""Offline evaluation: labelled question sets, runs through the real bot, and reports.

``questions`` reads question files (kb/eval, the dev sets, your own), ``run`` sends
each question through :class:`supportbot.SupportBot` and scores retrieval, answers,
escalation and latency, and ``cli`` adds ``supportbot eval``. Like ``ingest``, this
package imports ``supportbot``, never the reverse.
"""
