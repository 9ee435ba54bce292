"""The cue phrases of a chat turn: what each intent sounds like, and how shoppers point at items.

Regular expressions over the normalised message (:func:`agents.prices.normalize`) and the
reading of references to the list shown last: "the first two", "#2", "items 1 and 3", "the
last one", "both", "the black one", "the cheapest one", "it". Lexicons, not grammar: each cue
is a phrase people type, so adding one is adding a phrase.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from agents.lexicon import BOUNDARY, STOPWORDS, tokenize, words, wordset
from agents.prices import mask

if TYPE_CHECKING:
    from agents.shopping_state import SessionState
    from agents.vocabulary import CatalogVocabulary


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


GREETING_WORDS = wordset(
    "hi hello hey hiya howdy heya yo hallo hola greetings morning afternoon evening good "
    "thanks thank thx cheers ok okay cool great nice there bye goodbye everyone all team "
    "folks bot again doing today lovely perfect awesome brilliant excellent fantastic"
)
RESET = _rx(
    r"\b(?:start(?:ing)? (?:over|again|afresh|from scratch)|new search|from scratch|"
    r"reset|clear (?:everything|all)|forget (?:everything|all (?:of )?(?:that|this))|"
    r"begin again|something (?:completely |totally |entirely )?different)\b"
)
GUIDANCE = _rx(
    r"\b(?:what (?:should|do|must) i (?:look|watch) (?:for|out for)|what to look for|"
    r"what (?:should|do|must) i (?:consider|know|think about|keep in mind)|"
    r"(?:know|knows) (?:nothing|very little|little|next to nothing) about|new to|"
    r"never (?:bought|owned|used) (?:a|an|one)|first time (?:buying|getting)|"
    r"how (?:do i |to |should i |can i |would i )?(?:choose|pick|select|decide)|"
    r"buying guide|guide (?:to|for)|what matters|what (?:is|'s) important|"
    r"what (?:are the (?:things|factors)|to) (?:consider|know)|things to consider|"
    r"tips (?:for|on)|advice (?:on|for|about)|what do i need to know|explain|"
    r"how do i know (?:which|what)|what (?:features|specs) (?:matter|should)|"
    r"help (?:me )?(?:choos|pick|decid)\w*)\b"
)
COMPARE = _rx(
    r"\b(?:compare|comparing|comparison|vs|versus|differences?(?: between)?|differ|"
    r"stacks? up|measures? up|holds? up against|"
    r"which (?:one|of (?:these|them|those|the \w+))|better value|pros and cons|side by side|"
    r"head to head|best one|best of (?:these|them|those|the \w+)|"
    r"how do (?:they|these|those|the two) compare|or the (?:first|second|third|other|"
    r"last)|between the)\b|(?:^|[,.;?!])\W*(?:so |ok |and |but )?which (?:is|are|would|should|"
    r"do|'s|has|will)\b"  # "which is better?", not "a jacket which is waterproof"
)
MORE_LIKE = _rx(
    r"\b(?:more (?:like|of) (?:this|that|these|those|it|them|the)|(?:something|"
    r"anything|others?|ones?|items?|stuff|products?|more) (?:just |a bit |kind of |"
    r"sort of )?(?:like|similar to) (?:this|that|these|those|it|them|the|#|item|"
    r"number)|similar|alternatives?|same (?:style|kind|type|vibe|but)|"
    r"like (?:this|that) one|along (?:those|the same) lines)\b"
)
RECOMMEND = _rx(
    r"\b(?:recommend\w*|suggest\w*|surprise me|based on (?:my|what i)|"
    r"my (?:history|taste|style|past orders|purchases)|what (?:would|do|should|can) "
    r"you (?:suggest|recommend|pick|think i)|(?:what|anything|something|stuff|things) "
    r"(?:you think )?(?:i'?d|"
    r"i would|i might|i'll) (?:like|love|enjoy)|pick (?:something )?for me|"
    r"personali[sz]ed|popular|best ?sellers?|bestselling|trending|top picks|ideas?)\b"
)
FOR_ME = _rx(r"\bfor me\b")
QUESTION = _rx(
    r"^\W*(?:does|do|is|are|can|could|will|would|has|have|what|what's|whats|how|"
    r"which|when|where|who|why|tell me|any (?:info|details)|more (?:info|details)|"
    r"details)\b|\?\s*$|\b(?:come in|comes in|available in|made (?:of|from|in)|"
    r"in stock|waterproof|washable|warranty|reviews?|rating|dimensions|weigh\w*|"
    r"true to size|tell me (?:more )?about)\b"
)
REFINE_LEAD = _rx(
    r"^\W*(?:(?:ok(?:ay)?|hmm+|well|actually|and|but|also|now|then|so|no|yes|"
    r"yeah|please|maybe|perhaps)\W+)*(?:what about|how about|only|just|in|with|"
    r"without|make (?:it|them|that)|let'?s (?:do|go|try)|try|any(?:thing)? in|"
    r"do you have (?:it|them|these|those|any|one|this|that) in|(?:show|give) me "
    r"(?:only|just|the ones|ones)|i'?d (?:prefer|rather)|i prefer|prefer(?:ably)?|"
    r"ideally|rather|not|no|instead|change|switch|but|also|and|or)\b"
)
ADDITIVE = _rx(r"^\W*(?:or|and|also|plus)\b|\b(?:as well|also|either|in addition)\b|\btoo\W*$")
SMALLER = _rx(
    r"\b(?:smaller(?: size)?|(?:a |one )?size (?:down|smaller)|too (?:big|large|loose))\b"
)
LARGER = _rx(
    r"\b(?:bigger(?: size)?|larger(?: size)?|(?:a |one )?size (?:up|bigger|larger)|"
    r"too (?:small|tight))\b"
)
SIZE = _rx(
    r"\b(?:in )?(?:an? )?sizes?\s*(?:of\s+|:\s*)?(?:(?:eu|uk|us)\s*)?"
    r"(?!up\b|down\b|bigger|smaller|larger)([a-z0-9.]+(?: large| small)?)\b"
)
CLEAR = _rx(
    r"\b(?:any|whatever|forget(?: about)?|ignore|drop|remove|clear|no|don'?t care about|"
    r"never ?mind|scrap|lose|skip)\s+(?:the |my |that |a )?([a-z]+(?: [a-z]+)?)|"
    r"\b([a-z]+)s? (?:doesn'?t|does not|don'?t|won'?t) matter\b"
)
GENERIC_WANTS = wordset(
    "gift gifts present presents idea ideas something anything stuff thing things help"
)
FILLER = wordset(
    "want wanted wants need needs needed looking look find show see get buy buying purchase "
    "order please thanks thank one ones good nice great best new like love help let lets "
    "give kind sort maybe really actually ok okay yes yeah well hmm sure options option "
    "item items product products shop store available sell sells got gonna wanna gimme pick "
    "choose instead prefer preferably ideally rather make try tell bit little lot much many "
    "different another else etc hi hello hey could would something anything stuff thing "
    "things price prices cost costs budget cheap expensive money spend pay dollars bucks "
    "euros pounds quid there come comes coming between available made stock info details "
    "tell nothing fine better loves likes enjoys into bye goodbye after decent mostly nah nope "
    "yep yup two three four five six seven eight nine ten brand brands version versions add "
    "cart basket bag checkout"
)
NEGATORS = wordset(
    "not no without except excluding non avoid hate dislike nothing never don't dont"
)
_NTH = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth")  # fmt: skip
ORDINALS = (
    {word: i for i, word in enumerate(_NTH)}
    | {f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n, 'th') }": n - 1 for n in range(1, 11)}
    | {"last": -1, "final": -1, "penultimate": -2}
)
COUNTS = {"two": 2, "three": 3, "four": 4, "five": 5, "2": 2, "3": 3, "4": 4, "5": 5}
_ORD = "|".join(sorted(ORDINALS, key=len, reverse=True))
FIRST_N = _rx(
    r"\b(?:the\s+)?(first|top|last)\s+(two|three|four|five|[2-5])\b(?!\s*(?:dollars|"
    r"bucks|%))"
)
NUMBERED = _rx(
    r"(?:#\s*|\b(?:items?|numbers?|no\.|options?|products?|results?|choices?|picks?)"
    r"\s*#?\s*|\b(?:compare|between)\s+)(\d{1,2}(?:\s*(?:,|and|&|or|vs\.?|versus|"
    r"with|to)\s*#?\s*\d{1,2})*)\b|\b(\d{1,2}\s*(?:vs\.?|versus)\s*#?\s*\d{1,2})\b"
)
ORDINAL = _rx(
    rf"(?:(?<=\s)|^)(second[- ]to[- ]last|second last|next to last|{_ORD})"
    r"(?:\s+(?:one|ones|item|option|product|pair|pick|result))?\b"
    r"(?!\s*(?:time|of all|hand|-hand|year|month|week|night|season|minute|longer))"
)
ORDINAL_OK = _rx(
    r"(?:\b(?:the|and|or|vs|versus|between|compare|like|to|than|with|about|is|from|"
    r"on|in|of)|[,&])\s*$"
)
ORDINAL_PAIR = _rx(rf"\s*(?:or|and|vs\.?|versus|&|,)\s*(?:the\s+)?(?:{_ORD})\b")
DESCRIBED = _rx(r"\bthe\s+((?:[\w'&-]+\s+){0,3}?)(?:one|pair)\b")  # "the black ones": a refine
MORE_RESULTS = _rx(
    r"\b(?:show (?:me )?more|more (?:results|options|please)|any (?:others|more)|"
    r"anything else|what else|other (?:options|ones)|next (?:page|ones|few)|keep going|"
    r"see more|load more|none of (?:these|them|those)|neither|not (?:these|those)|"
    r"(?:don'?t|do not) like (?:any of )?(?:these|them|those))\b"
)
BUY = _rx(
    r"\b(?:add (?:\w+ )?(?:to (?:my |the )?)?(?:cart|basket|bag)|add (?:it|them|both|that|this)|"
    r"buy (?:it|them|both|that|this|the)|i'?ll take (?:it|them|both|that|this|the)|"
    r"order (?:it|them|both|that|this)|check ?out)\b"
)
ASK_PRICE = _rx(r"\b(?:how much|price of|what(?:'s| is) the price|what does it cost|cost of)\b")
ASK_BRAND = _rx(r"\b(?:which|what) brands?\b|\bbrands? (?:is|are|do)\b")
IN_STOCK = _rx(
    r"\b(?:in[- ]stock|available (?:now|today|right now|to buy)|(?:ready|available) to ship|"
    r"ships? (?:now|today|immediately))\b"
)
AGE = _rx(
    r"\b(\d{1,2})[- ]?(?:(years?|yrs?)|(months?))[- ]?olds?\b|\b(\d{1,2}) ?(?:yo|y/o)\b|"
    r"\bage[sd]? (\d{1,2})\b"
)
AGE_RANGE = _rx(r"(\d+)\s*(?:-\s*(\d+)|\+)\s*(?:years?|yrs?|y)\b")
ALONE = _rx(r"\s*(?:#|no\.?|number|option|item)?\s*(\d{1,2})\s*[.!?]?\s*")
NAMED = _rx(r"\bthe\s+((?:[\w'&-]+\s+)?[\w'&-]+)\b(?!\s+(?:one|ones|pair)\b)")
PLURAL_REF = _rx(
    r"\b(?:both(?: of (?:them|these|those))?|all (?:of )?(?:them|these|those|"
    r"three|four|five|[2-5])|them all|(?:these|those|they|them)\b(?! \w+ing))"
)
SINGULAR_REF = _rx(  # "a pan that's not cast iron" points at nothing; "that's too dear" does
    r"\b(?:it|this one|that one|this item|that item|the one)\b|(?:^\W*|\b(?:is|does|do|about|"
    r"like|with|of|for|get|buy|take|want|need|love|prefer|order|compare)\s+)(?:this|that)\b"
)
CHEAP_WORDS = wordset("cheapest cheaper least lowest")
DEAR_WORDS = wordset("priciest pricier dearest expensive highest")


@dataclass
class Refs:
    positions: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    pronoun: Literal["one", "many"] | None = None
    notes: list[str] = field(default_factory=list)


def references(
    text: str,
    state: SessionState | None,
    vocab: CatalogVocabulary,
    by_name: bool = False,
    price_words: Sequence[tuple[int, int]] = (),
) -> Refs:
    """Positions in the list shown last, 0-based; negative ones count from its end until the
    list's length is known. ``by_name`` also reads "the macbook" / "the Dell" as the shown item
    its title or brand names (for comparisons: elsewhere "the black hoodie" is a search).
    ``price_words`` ("lowest price first") are no positions, but "the cheapest one" is."""
    shown = list(state.last_list) if state else []
    refs = Refs()
    found: list[int] = []
    described_text, text = text, mask(text, price_words)
    if shown and (alone := ALONE.fullmatch(text)):  # "2", answering "which one?"
        found.append(int(alone.group(1)) - 1)
        refs.spans.append(alone.span())
    for m in FIRST_N.finditer(text):
        n = COUNTS[m.group(2)]
        found += list(range(-n, 0)) if m.group(1) == "last" else list(range(n))
        refs.spans.append(m.span())
    for m in NUMBERED.finditer(mask(text, refs.spans)):
        found += [int(n) - 1 for n in re.findall(r"\d+", m.group(1) or m.group(2))]
        refs.spans.append(m.span())
    for m in ORDINAL.finditer(mask(text, refs.spans)):
        word = re.sub(r"[- ]+", " ", m.group(1))
        short = len(text.split()) <= 4
        paired = ORDINAL_PAIR.match(text[m.end() :])  # "first or last", "2nd and 3rd"
        if ORDINAL_OK.search(text[: m.start()]) or m.group(0) != m.group(1) or short or paired:
            found.append(
                -2 if word in {"second to last", "second last", "next to last"} else ORDINALS[word]
            )
            refs.spans.append(m.span())
    for m in DESCRIBED.finditer(mask(described_text, refs.spans)):
        picked = described(m.group(1), shown, vocab, state)
        if picked is not None:
            found += picked
            refs.spans.append(m.span())
    for m in NAMED.finditer(mask(text, refs.spans)) if by_name else ():
        picked = described(m.group(1), shown, vocab, state)
        if picked is not None and len(picked) == 1:
            found += picked
            refs.spans.append(m.span())
    rest = mask(text, refs.spans)
    many = None if found else PLURAL_REF.search(rest)
    one = None if found or many else SINGULAR_REF.search(rest)
    if many:
        refs.pronoun = "many"
        found = [0, 1] if many.group(0).startswith("both") else list(range(len(shown)))
        refs.spans.append(many.span())
    elif one:
        refs.pronoun = "one"
        focus = state.focus if state else None
        found = [shown.index(focus) if focus in shown else 0]
        refs.spans.append(one.span())
    for pos in dict.fromkeys(found):
        if shown and not -len(shown) <= pos < len(shown):
            refs.notes.append(f"no item #{pos + 1}: the last list had {len(shown)}")
            continue
        refs.positions.append(pos % len(shown) if shown else pos)
    return refs


def described(
    said: str, shown: list[str], vocab: CatalogVocabulary, state: SessionState | None
) -> list[int] | None:
    """ "the black one", "the Outrun one", "the cheapest one", "the other one": the position of
    the shown item the words pick out, None when they pick out nothing."""
    toks = set(said.split())
    if not shown or not toks or toks & set(ORDINALS):
        return None
    if "other" in toks and len(shown) == 2 and state and state.focus in shown:
        return [1 - shown.index(state.focus)]
    known = [(i, vocab.item(item)) for i, item in enumerate(shown)]
    priced = [(p, i) for i, info in known if info and (p := info[1]) is not None]
    if toks & CHEAP_WORDS and priced:
        return [min(priced)[1]]
    if toks & DEAR_WORDS and priced:
        return [max(priced)[1]]
    picked = set(range(len(shown)))
    matches = vocab.match(tokenize(said))
    if not matches:
        return _by_title(toks, shown, vocab)
    for target in (m.targets[0] for m in matches):
        picked &= {
            i
            for i, info in known
            if info
            and (
                (target.kind == "brand" and info[0] == target.value)
                or (target.kind == "value" and target.value in info[2].get(target.key, ()))
            )
        }
    # every shown item, or none, is "the black one": then it was a colour, not a pick
    return sorted(picked) if 0 < len(picked) < len(shown) else None


def _by_title(said: set[str], shown: list[str], vocab: CatalogVocabulary) -> list[int] | None:
    """The one shown item whose title has all of ``said``'s content words ("the macbook")."""
    titles, index = vocab.catalog.title, vocab.catalog.index
    content = {w for w in said if w not in STOPWORDS}
    if titles is None or not content:
        return None
    rows = [index.get(item) for item in shown]
    hits = [i for i, r in enumerate(rows) if r is not None and content <= set(words(titles[r]))]
    return hits if len(hits) == 1 else None


def negated(tokens: list[str], start: int) -> bool:
    """Is the phrase at ``start`` under a "no", "not", "without" a few words before it?"""
    for i in range(start - 1, max(start - 4, -1), -1):
        word = tokens[i]
        if word in NEGATORS or (word == "but" and i > 0 and tokens[i - 1] == "anything"):
            return True
        if word in BOUNDARY or word in {"but", "in", "with", "only", "just", "and"}:
            return False
    return False
