"""Sessions and their events: browse a leaf, view the best-fitting items of the listing, click,
cart and buy some; come back for complements; refill consumables on schedule.

Sessions are simulated in rounds: round k handles every user's k-th session at once, because the
only dependency between sessions is "what did this user buy last time" (complements). Everything
within a round is vectorised over sessions and listing slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import LEAF_INTERVAL, LEAF_TOP, Catalog
from .config import SynthConfig
from .taxonomy import COMPLEMENTS, LEAF_BY_NOUN, LEAVES
from .users import Users
from .vocab import COLOURS, SEASONS

VIEW, CLICK, CART, PURCHASE = 0, 1, 2, 3
Q_NONE, Q_NOUN, Q_COLOUR, Q_BRAND = 0, 1, 2, 3

# Fit of an item's audience (columns, vocab.AUDIENCES order: unisex men women kids girls boys
# baby) to a shopper profile (rows: man, woman, man with kids, woman with kids).
AUDIENCE_FIT = np.array(
    [
        [0.0, 0.3, -1.0, -1.0, -1.0, -1.0, -1.0],
        [0.0, -1.0, 0.3, -1.0, -1.0, -1.0, -1.0],
        [0.0, 0.3, -1.0, 0.3, 0.3, 0.3, 0.3],
        [0.0, -1.0, 0.3, 0.3, 0.3, 0.3, 0.3],
    ]
)
# +1 favours the item early in the window (January), -1 late (June); index -1 = no season.
SEASON_SIGN = np.zeros(len(SEASONS) + 1)
SEASON_SIGN[SEASONS.index("winter")] = 1.0
SEASON_SIGN[SEASONS.index("summer")] = -1.0
# Bitmask over vocab.COLOURS of the colours each leaf comes in.
LEAF_PALETTE = np.array(
    [sum(1 << COLOURS.index(c) for c in leaf.spec.attrs.get("colour", ())) for leaf in LEAVES],
    dtype=np.int64,
)


@dataclass
class EventLog:
    user: np.ndarray
    item: np.ndarray  # internal catalogue position
    ts: np.ndarray
    event: np.ndarray  # VIEW..PURCHASE
    session: np.ndarray  # index into the session arrays below
    session_query: np.ndarray  # per session: Q_NONE..Q_BRAND
    session_leaf: np.ndarray
    session_colour: np.ndarray  # colour searched for (Q_COLOUR)
    session_brand: np.ndarray  # brand searched for (Q_BRAND)


def _complement_table(catalog: Catalog) -> np.ndarray:
    """(leaves, 3) complement leaves of each leaf, -1 padded, restricted to stocked leaves."""
    table = np.full((len(LEAVES), 3), -1, dtype=np.int64)
    for noun, others in COMPLEMENTS.items():
        ok = [LEAF_BY_NOUN[o].index for o in others if catalog.leaf_size[LEAF_BY_NOUN[o].index]]
        table[LEAF_BY_NOUN[noun].index, : len(ok)] = ok
    return table


def _sibling_table(catalog: Catalog) -> np.ndarray:
    """(leaves, 3) other stocked leaves of the same subcategory, -1 padded."""
    table = np.full((len(LEAVES), 3), -1, dtype=np.int64)
    for leaf in LEAVES:
        ok = [
            o.index
            for o in LEAVES
            if (o.top, o.sub) == (leaf.top, leaf.sub)
            and o.index != leaf.index
            and catalog.leaf_size[o.index]
        ]
        table[leaf.index, : len(ok)] = ok
    return table


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _lognormal_seconds(
    rng: np.random.Generator, median: float, shape: tuple[int, ...], sigma: float = 0.8
) -> np.ndarray:
    return np.maximum(1, np.round(rng.lognormal(np.log(median), sigma, shape))).astype(np.int64)


class _Simulator:
    def __init__(
        self, users: Users, catalog: Catalog, cfg: SynthConfig, rng: np.random.Generator
    ) -> None:
        self.u, self.c, self.cfg, self.rng = users, catalog, cfg, rng
        self.complements = _complement_table(catalog)
        self.n_complements = (self.complements >= 0).sum(axis=1)
        self.siblings = _sibling_table(catalog)
        self.n_siblings = (self.siblings >= 0).sum(axis=1)
        self.window_start = cfg.end_ts - cfg.days * 86_400
        n_sessions = len(users.session_user)
        self.s_query = np.zeros(n_sessions, dtype=np.int64)
        self.s_leaf = np.full(n_sessions, -1, dtype=np.int64)
        self.s_colour = np.full(n_sessions, -1, dtype=np.int64)
        self.s_brand = np.full(n_sessions, -1, dtype=np.int64)
        self.chunks: list[tuple[np.ndarray, ...]] = []
        self.purchases: list[tuple[np.ndarray, ...]] = []

    def run(self) -> EventLog:
        users = self.u
        n_sessions = np.diff(users.first_session)
        by_activity = np.argsort(-n_sessions, kind="stable")
        active_count = np.bincount(n_sessions, minlength=int(n_sessions.max()) + 1)
        active_count = users.n - np.cumsum(active_count)  # users with more than k sessions
        last_buy = np.full(users.n, -1, dtype=np.int64)
        for k in range(int(n_sessions.max())):
            who = by_activity[: active_count[k]]
            last_buy[who] = self._round(who, users.first_session[who] + k, last_buy[who])
        self._refills()
        user, item, ts, event, session = (np.concatenate(p) for p in zip(*self.chunks, strict=True))
        return EventLog(
            user, item, ts, event, session, self.s_query, self.s_leaf, self.s_colour, self.s_brand
        )

    def _taste_leaf(self, who: np.ndarray, t: np.ndarray) -> np.ndarray:
        """A leaf from the user's preference, mixed towards the late one as time goes on."""
        rng, users, m = self.rng, self.u, len(who)
        late = rng.random(m) < users.drift[who] * t
        r = rng.random(m).astype(np.float32)
        leaf = np.empty(m, dtype=np.int64)
        for mask, cum in ((late, users.cum_late), (~late, users.cum_early)):
            leaf[mask] = (cum[who[mask]] <= r[mask, None]).sum(axis=1)
        leaf = np.minimum(leaf, len(LEAVES) - 1)
        # Float round-off can land on an empty leaf; send those users to their favourite.
        empty = self.c.leaf_size[leaf] == 0
        leaf[empty] = users.top_leaf[who[empty]]
        return leaf

    def _related(
        self, leaf: np.ndarray, table: np.ndarray, n: np.ndarray, rate: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """For a ``rate`` share of ``leaf`` with entries in ``table``: (positions, new leaf)."""
        has = np.flatnonzero((leaf >= 0) & (self.rng.random(len(leaf)) < rate))
        has = has[n[leaf[has]] > 0]
        pick = (self.rng.random(len(has)) * n[leaf[has]]).astype(np.int64)
        return has, table[leaf[has], pick]

    def _round(self, who: np.ndarray, sess: np.ndarray, last_buy: np.ndarray) -> np.ndarray:
        """Every user's next session; returns the leaf of each session's last purchase."""
        rng, cfg, users = self.rng, self.cfg, self.u
        m = len(who)
        start = users.session_ts[sess]
        t = (start - self.window_start) / (cfg.days * 86_400)
        leaf = self._taste_leaf(who, t)
        pos, comp = self._related(
            last_buy, self.complements, self.n_complements, cfg.complement_rate
        )
        leaf[pos] = comp

        # Searches: the leaf noun, or the noun with a favourite colour or brand.
        query = np.where(
            rng.random(m) < users.search_rate[who],
            rng.choice([Q_NOUN, Q_COLOUR, Q_BRAND], m, p=[0.6, 0.25, 0.15]),
            Q_NONE,
        )
        colour = users.fav_colours[who, rng.integers(0, 2, m)]
        # Nobody searches for "silver shorts": only colours the product type comes in.
        query[(query == Q_COLOUR) & ((LEAF_PALETTE[leaf] >> colour) & 1 == 0)] = Q_NOUN
        self.s_query[sess], self.s_leaf[sess] = query, leaf
        self.s_colour[sess] = np.where(query == Q_COLOUR, colour, -1)
        self.s_brand[sess] = np.where(query == Q_BRAND, users.fav_brand[who, LEAF_TOP[leaf]], -1)

        # A session wanders: after a listing, some users move on to a sibling product type, a
        # complement, or something else they like, in the same visit.
        bought = np.full(m, -1, dtype=np.int64)
        rows, clock = np.arange(m), start
        for _ in range(3):
            end, got = self._listing(who[rows], sess[rows], leaf, clock, t[rows], query, colour)
            bought[rows] = np.where(got >= 0, got, bought[rows])
            go = rng.random(len(rows)) < cfg.continue_rate
            rows, leaf, colour = rows[go], leaf[go], colour[go]
            clock = end[go] + _lognormal_seconds(rng, 30, (len(rows),))
            if not len(rows):
                break
            query = np.full(len(rows), Q_NONE)
            nxt = self._taste_leaf(who[rows], t[rows])
            pos, sib = self._related(leaf, self.siblings, self.n_siblings, cfg.sibling_rate)
            nxt[pos] = sib
            pos, comp = self._related(leaf, self.complements, self.n_complements, 0.3)
            nxt[pos] = comp
            leaf = nxt
        return bought

    def _listing(
        self,
        who: np.ndarray,
        sess: np.ndarray,
        leaf: np.ndarray,
        start: np.ndarray,
        t: np.ndarray,
        query: np.ndarray,
        colour: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One product listing of ``leaf`` per row: views, clicks, carts, purchases.

        Returns the time of each row's last event and the leaf bought (-1 if nothing)."""
        rng, cfg, c, users = self.rng, self.cfg, self.c, self.u
        m = len(who)
        fav = users.fav_brand[who, LEAF_TOP[leaf]]

        # The listing: candidates drawn by exposure (popular items are shown more often).
        cum = c.exposure_cum
        lo = np.where(c.leaf_start[leaf] > 0, cum[np.maximum(c.leaf_start[leaf] - 1, 0)], 0.0)
        hi = cum[c.leaf_start[leaf + 1] - 1]
        r = lo[:, None] + (hi - lo)[:, None] * rng.random((m, cfg.candidates))
        cand = np.searchsorted(cum, r, side="right")
        cand = np.clip(cand, c.leaf_start[leaf][:, None], c.leaf_start[leaf + 1][:, None] - 1)
        cand.sort(axis=1)
        dup = np.zeros(cand.shape, dtype=bool)
        dup[:, 1:] = cand[:, 1:] == cand[:, :-1]

        aff = self._affinity(who, cand, fav, t, query, colour)
        # Shoppers react to fit relative to what the listing offers, which keeps the funnel
        # rates stable across catalogue sizes.
        aff -= np.where(dup, 0.0, aff).sum(axis=1, keepdims=True) / (~dup).sum(
            axis=1, keepdims=True
        )
        # The shop sorts the listing by popularity and attention decays down the page.
        shown = np.where(dup, -np.inf, c.log_exposure[cand])
        position = np.argsort(np.argsort(-shown, axis=1), axis=1)
        noisy = aff - cfg.w_position * np.log1p(position) + cfg.noise * rng.gumbel(size=aff.shape)
        noisy[dup] = -np.inf
        # Negative binomial: many one-view bounces and a long tail of thorough browsers.
        more = rng.negative_binomial(1.5, 1.5 / (1.5 + cfg.views_mean - 1), m)
        n_views = np.minimum(1 + more, (~dup).sum(axis=1))
        width = int(n_views.max())
        order = np.argsort(-noisy, axis=1)[:, :width]
        items = np.take_along_axis(cand, order, axis=1)
        aff = np.take_along_axis(aff, order, axis=1)

        viewed = np.arange(width)[None, :] < n_views[:, None]
        slope = cfg.funnel_slope
        clicked = viewed & (rng.random(aff.shape) < _sigmoid(cfg.click_bias + slope * aff))
        carted = (
            clicked
            & c.in_stock[items]
            & (rng.random(aff.shape) < _sigmoid(cfg.cart_bias + slope * aff))
        )
        overpriced = np.maximum(0.0, c.rel_price[items] - users.price_z[who][:, None])
        bought = carted & (
            rng.random(aff.shape) < _sigmoid(cfg.purchase_bias + slope * aff - 2.0 * overpriced)
        )

        # Event times: browse gaps between views, then the click, then reading until the cart.
        gaps = np.stack(
            [
                _lognormal_seconds(rng, 25, (m, width)),
                _lognormal_seconds(rng, 6, (m, width)),
                _lognormal_seconds(rng, 45, (m, width)),
            ],
            axis=2,
        )
        gaps[:, 0, 0] = 0
        present = np.stack([viewed, clicked, carted], axis=2)
        flat_gaps = (gaps * present).reshape(m, -1)
        ts = start[:, None] + np.cumsum(flat_gaps, axis=1)
        checkout = ts[:, -1] + _lognormal_seconds(rng, 90, (m,))
        buy_ts = checkout[:, None] + np.cumsum(bought, axis=1)

        flat_present = present.reshape(m, -1)
        row, col = np.nonzero(flat_present)
        self._emit(who[row], items[row, col // 3], ts[row, col], col % 3, sess[row])
        row, col = np.nonzero(bought)
        self._emit(
            who[row], items[row, col], buy_ts[row, col], np.full(len(row), PURCHASE), sess[row]
        )
        self.purchases.append((who[row], items[row, col], buy_ts[row, col]))

        end = np.where(bought.any(axis=1), buy_ts.max(axis=1), ts.max(axis=1))
        return end, np.where(bought.any(axis=1), leaf, -1)

    def _affinity(
        self,
        who: np.ndarray,
        cand: np.ndarray,
        fav: np.ndarray,
        t: np.ndarray,
        query: np.ndarray,
        colour: np.ndarray,
    ) -> np.ndarray:
        cfg, c, users = self.cfg, self.c, self.u
        brand, col = c.brand[cand], c.colour[cand]
        aff = cfg.w_quality * c.quality[cand]
        aff += cfg.w_brand * users.loyalty[who][:, None] * (brand == fav[:, None])
        aff -= cfg.w_price * (c.rel_price[cand] - users.price_z[who][:, None]) ** 2
        likes = (users.colour_mask[who][:, None] >> np.maximum(col, 0)) & 1
        aff += cfg.w_colour * (likes * (col >= 0))
        aff += cfg.w_audience * AUDIENCE_FIT[users.profile[who][:, None], c.audience[cand]]
        aff += cfg.w_season * SEASON_SIGN[c.season[cand]] * np.cos(np.pi * t)[:, None]
        match = ((query == Q_COLOUR)[:, None] & (col == colour[:, None])) | (
            (query == Q_BRAND)[:, None] & (brand == fav[:, None])
        )
        aff += cfg.w_query * match
        return aff

    def _emit(
        self,
        user: np.ndarray,
        item: np.ndarray,
        ts: np.ndarray,
        event: np.ndarray,
        session: np.ndarray,
    ) -> None:
        self.chunks.append((user, item, ts.astype(np.int64), event.astype(np.int8), session))

    def _refills(self) -> None:
        """Consumables come back: each first purchase starts a chain of refill sessions, one per
        refill interval (with some slack), until the user stops or the window ends."""
        user, item, ts = (np.concatenate([p[i] for p in self.purchases]) for i in range(3))
        interval = LEAF_INTERVAL[self.c.leaf[item]]
        keep = interval > 0
        user, item, ts, interval = user[keep], item[keep], ts[keep], interval[keep]
        if not len(user):
            return
        order = np.lexsort((ts, item, user))
        first = np.r_[True, (np.diff(user[order]) != 0) | (np.diff(item[order]) != 0)]
        sel = order[first]
        user, item, ts, interval = user[sel], item[sel], ts[sel], interval[sel]
        rng, cfg = self.rng, self.cfg
        steps = int(np.ceil(cfg.days / max(int(LEAF_INTERVAL[LEAF_INTERVAL > 0].min()), 1)))
        days = interval[:, None] * rng.lognormal(0.0, 0.2, (len(user), steps))
        when = ts[:, None] + np.cumsum(np.round(days * 86_400).astype(np.int64), axis=1)
        alive = np.cumprod(rng.random(when.shape) < cfg.rebuy_rate, axis=1).astype(bool)
        row, col = np.nonzero(alive & (when < cfg.end_ts - 3600))
        n = len(row)
        if n == 0:
            return
        sess = len(self.s_query) + np.arange(n)
        self.s_query = np.r_[self.s_query, np.zeros(n, dtype=np.int64)]
        self.s_leaf = np.r_[self.s_leaf, self.c.leaf[item[row]]]
        self.s_colour = np.r_[self.s_colour, np.full(n, -1)]
        self.s_brand = np.r_[self.s_brand, np.full(n, -1)]
        # A refill is a short, decided visit: straight to the product, into the cart, bought.
        steps_ts = (
            np.cumsum(
                np.stack(
                    [
                        np.zeros(n, dtype=np.int64),
                        _lognormal_seconds(rng, 5, (n,)),
                        _lognormal_seconds(rng, 20, (n,)),
                        _lognormal_seconds(rng, 60, (n,)),
                    ],
                    axis=1,
                ),
                axis=1,
            )
            + when[row, col][:, None]
        )
        for event in (VIEW, CLICK, CART, PURCHASE):
            self._emit(user[row], item[row], steps_ts[:, event], np.full(n, event), sess)


def simulate(
    users: Users, catalog: Catalog, cfg: SynthConfig, rng: np.random.Generator
) -> EventLog:
    return _Simulator(users, catalog, cfg, rng).run()
