"""A short summary, the customer's main issue, and whether someone must follow up.

Offline by default: TextRank (sumy) over the transcript's sentences with a regex tokenizer
(sumy's own tokenizer needs NLTK data, which is not installed). When an OpenAI-compatible
endpoint is configured, it writes the summary instead; any failure falls back to TextRank.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# (pattern, weight): what is wrong counts more than how the customer frames the call
PROBLEM_CUES = (
    (r"\b(down|broken|not working|doesn'?t work|stopped|problem|issue|fault|error|fix(ed)?)\b", 2),
    (r"\b(wrong|late|missing|never arrived|charged|overcharged|refund|bill(ing)?|cancel)\b", 2),
    (r"\b(can'?t|cannot|unable)\b", 2),
    (r"\bi (only |just |really )?(need|want|would like|'d like)\b", 1),
    (r"\b(i('m| am) calling|can i|how do i)\b", 1),
    (r"\b(third|second) time\b", 1),
)
FOLLOW_UP_CUES = (
    r"call (you|u) back",
    r"get back to you",
    r"\bescalat",
    r"follow(ing)? up",
    r"\b(technician|engineer) (will|to)\b",
    r"open(ed)? a (ticket|case)",
    r"\b(within|in) \d+ (hours|days)\b",
    r"\btomorrow\b",
)
UNRESOLVED_CUES = (r"\bstill (not|no)\b", r"\bcancel\b", r"\bunacceptable\b", r"\bnot resolved\b")


class RegexTokenizer:
    """What sumy needs from a tokenizer, without NLTK."""

    language = "english"

    def to_sentences(self, paragraph: str) -> list[str]:
        return [s for s in SENTENCE_END.split(paragraph.strip()) if s]

    def to_words(self, sentence: str) -> list[str]:
        return re.findall(r"[A-Za-z0-9']+", sentence)


def sentences(text: str) -> list[str]:
    return RegexTokenizer().to_sentences(text)


def extractive_summary(lines: Sequence[tuple[str, str]], count: int = 3) -> str:
    """TextRank's top ``count`` sentences, in call order, each prefixed with its role."""
    from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
    from sumy.summarizers.text_rank import TextRankSummarizer

    tokenizer = RegexTokenizer()
    labelled = [(role, s) for role, text in lines for s in sentences(text) if len(s.split()) > 2]
    if not labelled:
        return ""
    document = ObjectDocumentModel([Paragraph([Sentence(s, tokenizer) for _, s in labelled])])
    chosen = {str(s) for s in TextRankSummarizer()(document, count)}
    return " ".join(f"{role.capitalize()}: {s}" for role, s in labelled if s in chosen)


def customer_issue(customer_lines: Sequence[str]) -> str:
    """The customer sentence with most problem cues (the earliest on a tie)."""
    candidates = [s for line in customer_lines for s in sentences(line) if len(s.split()) > 2]
    if not candidates:
        return ""
    scored = [(_problem_weight(s), -index, s) for index, s in enumerate(candidates)]
    best = max(scored)
    return best[2] if best[0] > 0 else candidates[0]


def follow_up(all_text: str, customer_ending: str) -> tuple[bool, list[str]]:
    """Whether a follow-up is needed, and the phrases that say so."""
    lowered = all_text.lower()
    found = [m.group(0) for cue in FOLLOW_UP_CUES if (m := re.search(cue, lowered))]
    ending = customer_ending.lower()
    found += [m.group(0) for cue in UNRESOLVED_CUES if (m := re.search(cue, ending))]
    return bool(found), found


def _problem_weight(text: str) -> int:
    lowered = text.lower()
    return sum(weight * len(re.findall(cue, lowered)) for cue, weight in PROBLEM_CUES)


def endpoint_summary(url: str, model: str, key: str | None, transcript: str, timeout: float) -> str:
    """A summary from an OpenAI-compatible ``/chat/completions`` endpoint."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = httpx.post(
        url.rstrip("/") + "/chat/completions",
        headers=headers,
        timeout=timeout,
        json={
            "model": model,
            "temperature": 0,
            "messages": [
                {
                    "role": "system",
                    "content": "Summarise this customer-service call in at "
                    "most three sentences: the customer's issue, what was done, what is pending.",
                },
                {"role": "user", "content": transcript[:24000]},
            ],
        },
    )
    response.raise_for_status()
    return response.json()["choices"][0]["message"]["content"].strip()
