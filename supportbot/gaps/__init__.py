"""Knowledge gaps: what customers ask that the documents do not answer, and agents' answers.

* :mod:`~supportbot.gaps.collect` reads back the questions the bot handed over for want of
  knowledge, the answers customers rated down and the questions agents answered;
* :mod:`~supportbot.gaps.cluster` groups them by meaning (the embedder and scikit-learn);
* :mod:`~supportbot.gaps.report` describes each group as a :class:`Gap`, most asked first;
* :mod:`~supportbot.gaps.answers` keeps agents' answers, approved, as a managed FAQ file
  that ``ingest/answers.py`` indexes, so the next customer with that question gets the
  answer from the bot.

The agent console's Gaps tab, ``supportbot gaps`` and ``docs/knowledge-gaps.md`` use it.
"""

from supportbot.gaps.answers import AgentAnswer, AgentAnswers, Redacted, redact_shown
from supportbot.gaps.collect import AskedQuestion, collect_questions
from supportbot.gaps.report import Gap, GapFinder, GapReport

__all__ = [
    "AgentAnswer",
    "AgentAnswers",
    "AskedQuestion",
    "Gap",
    "GapFinder",
    "GapReport",
    "Redacted",
    "collect_questions",
    "redact_shown",
]
